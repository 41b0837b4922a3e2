import NIOCore

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// A terminal size as carried on the resize stream: `{"Width":80,"Height":24}` (protocols.md §3.3).
public struct TerminalSize: Hashable, Sendable, CustomStringConvertible {
    public var width: UInt16
    public var height: UInt16

    public init(width: UInt16, height: UInt16) {
        self.width = width
        self.height = height
    }

    /// The message Go's `json.Encoder` writes, newline included.
    public var json: String { "{\"Width\":\(width),\"Height\":\(height)}\n" }

    public var description: String { "\(width)x\(height)" }
}

/// Splits a resize stream into ``TerminalSize`` values (protocols.md §3.3).
///
/// The stream is a sequence of JSON objects that may be split across frames or share one; keys match
/// case-insensitively and unknown keys are ignored, as with Go's decoder. A malformed object ends the
/// sequence with ``KubernetesStreamError/Kind/invalidResize``.
public struct TerminalSizeDecoder: Sendable {
    /// The longest object accepted; real ones are about 26 bytes.
    public static let maxObjectLength = 4096

    private var pending: [UInt8] = []

    public init() {}

    /// Adds received bytes and returns every size completed by them.
    public mutating func append(_ bytes: ByteBuffer) throws(KubernetesStreamError) -> [TerminalSize] {
        pending.append(contentsOf: bytes.readableBytesView)
        var sizes: [TerminalSize] = []
        while let end = try objectEnd() {
            let object = Array(pending[..<end])
            pending.removeFirst(end)
            sizes.append(try Self.decode(object))
        }
        guard pending.count <= Self.maxObjectLength else {
            throw KubernetesStreamError(.invalidResize, "resize message longer than \(Self.maxObjectLength) bytes")
        }
        return sizes
    }

    /// Whether unconsumed bytes other than whitespace remain (a truncated object at the end of the stream).
    public var hasPartialObject: Bool { pending.contains { !Self.isWhitespace($0) } }

    /// The index just past the first complete top-level object, after dropping leading whitespace.
    private mutating func objectEnd() throws(KubernetesStreamError) -> Int? {
        while let first = pending.first, Self.isWhitespace(first) { pending.removeFirst() }
        guard let first = pending.first else { return nil }
        guard first == UInt8(ascii: "{") else {
            throw KubernetesStreamError(.invalidResize, "resize message does not start with an object")
        }
        var depth = 0
        var inString = false
        var escaped = false
        for (index, byte) in pending.enumerated() {
            if inString {
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1
                if depth == 0 { return index + 1 }
            default: break
            }
        }
        return nil
    }

    private static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09
    }

    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    private struct WireSize: Decodable {
        var width: UInt16 = 0
        var height: UInt16 = 0

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: AnyKey.self)
            for key in container.allKeys {
                switch key.stringValue.lowercased() {
                case "width": width = try container.decode(UInt16.self, forKey: key)
                case "height": height = try container.decode(UInt16.self, forKey: key)
                default: break
                }
            }
        }
    }

    private static func decode(_ object: [UInt8]) throws(KubernetesStreamError) -> TerminalSize {
        do {
            let size = try JSONDecoder().decode(WireSize.self, from: Data(object))
            return TerminalSize(width: size.width, height: size.height)
        } catch {
            throw KubernetesStreamError(
                .invalidResize,
                "resize message is not {\"Width\":…,\"Height\":…}: \(String(decoding: object, as: UTF8.self))")
        }
    }
}

/// The sizes sent on a resize stream or channel, as an async sequence (protocols.md §3.3, §4.2).
public struct TerminalSizeStream: AsyncSequence, Sendable {
    public typealias Element = TerminalSize

    private let bytes: InboundByteStream?

    /// Sizes decoded from `bytes`; `nil` gives an empty sequence (no terminal, or protocol < v3).
    public init(bytes: InboundByteStream?) {
        self.bytes = bytes
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var bytes: InboundByteStream.AsyncIterator?
        var decoder = TerminalSizeDecoder()
        var ready: [TerminalSize] = []

        public mutating func next() async throws -> TerminalSize? {
            while ready.isEmpty {
                guard var iterator = bytes else { return nil }
                let chunk = try await iterator.next()
                bytes = iterator
                guard let chunk else {
                    bytes = nil
                    return nil
                }
                ready = try decoder.append(chunk)
            }
            return ready.removeFirst()
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(bytes: bytes?.makeAsyncIterator())
    }
}
