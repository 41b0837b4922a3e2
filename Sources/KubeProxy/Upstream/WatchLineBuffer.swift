import NIOCore

/// Splits a watch response body into its events: one JSON document per line (the apiserver's
/// watch encoding for `application/json`). Pure: bytes in, lines out.
struct WatchLineBuffer {
    /// The largest event accepted. An AccessPolicy or AccessRequest is far smaller; a line this
    /// long means the stream is not what it claims to be.
    static let maximumLineBytes = 4 * 1024 * 1024

    struct LineTooLong: Error, CustomStringConvertible {
        let limit: Int
        var description: String { "a watch event exceeds \(limit) bytes" }
    }

    private var buffer = ByteBuffer()
    private let limit: Int

    init(limit: Int = Self.maximumLineBytes) {
        self.limit = limit
    }

    mutating func append(_ bytes: ByteBuffer) {
        var bytes = bytes
        buffer.writeBuffer(&bytes)
    }

    /// The next complete line without its newline; nil until one has arrived. Empty lines are
    /// skipped.
    mutating func nextLine() throws -> [UInt8]? {
        while let newline = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
            let length = newline - buffer.readerIndex
            guard length <= limit else { throw LineTooLong(limit: limit) }
            let line = buffer.readBytes(length: length) ?? []
            buffer.moveReaderIndex(forwardBy: 1)
            buffer.discardReadBytes()
            if !line.isEmpty { return line }
        }
        guard buffer.readableBytes <= limit else { throw LineTooLong(limit: limit) }
        return nil
    }

    /// Bytes after the last newline: an event cut off when the stream ended.
    var hasPartialLine: Bool { buffer.readableBytes > 0 }
}
