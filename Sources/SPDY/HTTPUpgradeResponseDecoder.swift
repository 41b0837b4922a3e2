import NIOCore
import NIOHTTP1

/// Reads the HTTP/1.1 answer to an upgrade request from raw bytes: the head, then either the bytes of
/// the new protocol (after a 101) or the refusal's body.
///
/// A pure codec, used instead of NIO's HTTP client pipeline because that pipeline removes its decoder
/// one event-loop tick after the 101: when the server's first frames and its close arrive in the same
/// read as the 101, as they do when a kubelet answers a short exec over WebSocket, the frames are lost.
/// Here the bytes after the head stay in ``remainingBytes()`` until the caller takes them.
///
/// ```
/// HEAD ──"\r\n\r\n"──▶ head ──101──▶ (the caller takes the remaining bytes)
///                        └──other──▶ BODY(Content-Length | chunked | until close) ──complete──▶ body
/// ```
struct HTTPUpgradeResponseDecoder {
    /// The longest response head accepted; Go servers send a few hundred bytes.
    static let maxHeadLength = 16 << 10

    /// How much of a non-101 answer's body is still to come (RFC 9112 §6.3).
    private enum Body: Equatable {
        case contentLength(remaining: Int)
        case chunked(ChunkState)
        case untilClose
    }

    private enum ChunkState: Equatable {
        case size
        case data(remaining: Int)
        case dataEnd
        case trailers
        case done
    }

    private enum State: Equatable {
        case head
        case body(Body)
    }

    private var state = State.head
    private var buffer = ByteBuffer()
    private var body = ByteBuffer()
    private let maxBodyLength: Int

    /// - Parameter maxBodyLength: a longer body is cut there and counts as complete.
    init(maxBodyLength: Int) {
        self.maxBodyLength = maxBodyLength
    }

    mutating func receive(_ bytes: ByteBuffer) {
        var bytes = bytes
        buffer.writeBuffer(&bytes)
    }

    /// The head, once it is complete; the bytes after it stay buffered.
    ///
    /// - Throws: ``SPDYError/Kind/upgradeRejected`` for a head that is not HTTP/1.x or too long;
    ///   ``SPDYError/Kind/invalidState`` once the head has been read.
    mutating func nextHead() throws(SPDYError) -> HTTPResponseHead? {
        guard case .head = state else { throw SPDYError(.invalidState, "the response head was already read") }
        let view = buffer.readableBytesView
        guard let end = Self.headEnd(view) else {
            guard view.count <= Self.maxHeadLength else {
                throw SPDYError(.upgradeRejected, "response head longer than \(Self.maxHeadLength) bytes")
            }
            return nil
        }
        let text = String(decoding: view[view.startIndex..<end], as: UTF8.self)
        buffer.moveReaderIndex(forwardBy: end - view.startIndex + 4)
        let head = try Self.parseHead(text)
        state = .body(Self.body(head))
        return head
    }

    /// Takes every byte after the head: after a 101, the first bytes of the new protocol.
    mutating func remainingBytes() -> ByteBuffer {
        defer { buffer.clear() }
        return buffer
    }

    /// The body of a non-101 answer once it is complete (or cut at the maximum), or at the end of the
    /// connection with what came; `nil` while more is expected, or before the head.
    mutating func nextBody(atEndOfInput: Bool) -> ByteBuffer? {
        guard case .body(var remaining) = state else { return nil }
        switch remaining {
        case .contentLength(let count):
            remaining = .contentLength(remaining: count - take(upTo: count))
        case .untilClose:
            _ = take(upTo: Int.max)
        case .chunked(var chunks):
            decodeChunks(&chunks)
            remaining = .chunked(chunks)
        }
        state = .body(remaining)
        let complete = remaining == .contentLength(remaining: 0) || remaining == .chunked(.done)
        return complete || body.readableBytes >= maxBodyLength || atEndOfInput ? body : nil
    }

    /// Moves up to `count` buffered bytes into the body, keeping at most `maxBodyLength`; returns how
    /// many were consumed.
    private mutating func take(upTo count: Int) -> Int {
        let count = min(count, buffer.readableBytes)
        guard count > 0, let slice = buffer.readSlice(length: count) else { return 0 }
        let room = maxBodyLength - body.readableBytes
        if room > 0 { body.writeImmutableBuffer(slice.getSlice(at: slice.readerIndex, length: min(room, count))!) }
        return count
    }

    /// Decodes what is buffered of a chunked body (RFC 9112 §7.1); a malformed size ends the body.
    private mutating func decodeChunks(_ chunkState: inout ChunkState) {
        while chunkState != .done {
            switch chunkState {
            case .size:
                guard let line = readLine() else { return }
                let digits = line.prefix { $0 != ";" }.trimmingCharacters(in: " \t")
                guard let size = Int(digits, radix: 16), size >= 0 else {
                    chunkState = .done
                    return
                }
                chunkState = size == 0 ? .trailers : .data(remaining: size)
            case .data(let remaining):
                let taken = take(upTo: remaining)
                guard taken > 0 else { return }
                chunkState = taken == remaining ? .dataEnd : .data(remaining: remaining - taken)
            case .dataEnd:
                guard readLine() != nil else { return }
                chunkState = .size
            case .trailers:
                guard let line = readLine() else { return }
                if line.isEmpty { chunkState = .done }
            case .done:
                return
            }
        }
    }

    /// Reads one CRLF-terminated line, without the CRLF.
    private mutating func readLine() -> String? {
        let view = buffer.readableBytesView
        guard let lf = view.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        var line = String(decoding: view[view.startIndex..<lf], as: UTF8.self)
        if line.hasSuffix("\r") { line.removeLast() }
        buffer.moveReaderIndex(forwardBy: lf - view.startIndex + 1)
        return line
    }

    private static func headEnd(_ view: ByteBufferView) -> ByteBufferView.Index? {
        let terminator: [UInt8] = [13, 10, 13, 10]
        guard view.count >= 4 else { return nil }
        var index = view.startIndex
        while index <= view.endIndex - 4 {
            if view[index] == 13, view[index..<(index + 4)].elementsEqual(terminator) { return index }
            index += 1
        }
        return nil
    }

    private static func parseHead(_ text: String) throws(SPDYError) -> HTTPResponseHead {
        var lines = text.split(separator: "\r\n", omittingEmptySubsequences: false)[...]
        let statusLine = lines.popFirst() ?? ""
        let fields = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard fields.count >= 2, let version = Self.version(fields[0]), fields[1].count == 3,
            let code = Int(fields[1])
        else {
            throw SPDYError(
                .upgradeRejected, "not an HTTP/1.x response: \(String(statusLine.prefix(100)).debugDescription)")
        }
        var headers = HTTPHeaders()
        for line in lines {
            guard let colon = line.firstIndex(of: ":"), colon != line.startIndex else {
                throw SPDYError(
                    .upgradeRejected, "malformed response header: \(String(line.prefix(100)).debugDescription)")
            }
            headers.add(
                name: String(line[..<colon]),
                value: line[line.index(after: colon)...].trimmingCharacters(in: " \t"))
        }
        let reason = fields.count > 2 ? String(fields[2]) : ""
        return HTTPResponseHead(
            version: version, status: HTTPResponseStatus(statusCode: code, reasonPhrase: reason), headers: headers)
    }

    private static func version(_ text: Substring) -> HTTPVersion? {
        switch text {
        case "HTTP/1.1": .http1_1
        case "HTTP/1.0": .http1_0
        default: nil
        }
    }

    private static func body(_ head: HTTPResponseHead) -> Body {
        if head.headers["Transfer-Encoding"].contains(where: { $0.lowercased().contains("chunked") }) {
            return .chunked(.size)
        }
        if let text = head.headers["Content-Length"].first, let length = Int(text), length >= 0 {
            return .contentLength(remaining: length)
        }
        return .untilClose
    }
}

extension StringProtocol {
    fileprivate func trimmingCharacters(in characters: String) -> String {
        var slice = Substring(self)
        while let first = slice.first, characters.contains(first) { slice.removeFirst() }
        while let last = slice.last, characters.contains(last) { slice.removeLast() }
        return String(slice)
    }
}
