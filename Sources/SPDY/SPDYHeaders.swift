import NIOCore

/// A SPDY/3 name/value header block (protocols.md §1.3), in wire order.
///
/// Each entry is one wire pair; its `value` is the raw wire value, in which several values are
/// joined by a single NUL. Lookups follow Go peers: names compare in lower case, a NUL-joined value
/// counts as several values, and duplicated names (which Go merges) contribute all their values.
public struct SPDYHeaders: Hashable, Sendable, ExpressibleByDictionaryLiteral, CustomStringConvertible {
    /// One name/value pair as it appears on the wire.
    public struct Pair: Hashable, Sendable {
        public var name: String
        public var value: String

        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    public private(set) var pairs: [Pair]

    public init() { pairs = [] }

    public init(_ pairs: [(String, String)]) {
        self.pairs = pairs.map { Pair(name: $0.0, value: $0.1) }
    }

    public init(dictionaryLiteral elements: (String, String)...) {
        self.init(elements)
    }

    /// Appends a pair; use lower-case names, as Go peers require.
    public mutating func add(name: String, value: String) {
        pairs.append(Pair(name: name, value: value))
    }

    public var isEmpty: Bool { pairs.isEmpty }

    /// Every value of `name`, NUL-joined values split apart, as Go's `http.Header` holds them.
    public func values(forName name: String) -> [String] {
        let wanted = name.lowercased()
        return pairs.filter { $0.name == wanted }.flatMap { pair in
            pair.value.split(separator: "\0", omittingEmptySubsequences: false).map(String.init)
        }
    }

    /// The first value of `name`: what Go's `Header.Get` returns, and what Kubernetes acts on.
    public func first(name: String) -> String? {
        values(forName: name).first
    }

    /// The value of `name` when it has exactly one; `nil` when absent.
    ///
    /// - Throws: ``SPDYError/Kind/invalidHeaderValue`` when the header carries several values, NUL-joined
    ///   or through a repeated name: a peer would act on the first while we might check another, so such
    ///   headers are refused rather than guessed at (protocols.md §7.4 item 12).
    public func singleValue(forName name: String) throws(SPDYError) -> String? {
        let values = values(forName: name)
        guard values.count <= 1 else {
            throw SPDYError(.invalidHeaderValue, "header \(name.lowercased()) carries \(values.count) values")
        }
        return values.first
    }

    public var description: String {
        "[" + pairs.map { "\($0.name): \($0.value.replacingNULs())" }.joined(separator: ", ") + "]"
    }
}

extension String {
    fileprivate func replacingNULs() -> String {
        split(separator: "\0", omittingEmptySubsequences: false).joined(separator: "\\0")
    }
}

// MARK: - The uncompressed block

extension SPDYHeaders {
    /// Names that may not appear in a SYN_STREAM (Go rejects them and the session dies).
    static let forbiddenInSynStream: Set<String> = [
        "connection", "host", "keep-alive", "proxy-connection", "transfer-encoding",
    ]
    /// Names that may not appear in a SYN_REPLY or HEADERS: the same minus `host`.
    static let forbiddenInReply: Set<String> = ["connection", "keep-alive", "proxy-connection", "transfer-encoding"]

    static func forbiddenNames(for type: SPDYFrameType) -> Set<String> {
        type == .synStream ? forbiddenInSynStream : forbiddenInReply
    }

    /// Whether `byte` may appear in a header name: printable ASCII without upper-case letters.
    @inline(__always)
    static func isValidNameByte(_ byte: UInt8) -> Bool {
        byte > 0x20 && byte < 0x7F && !(byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
    }

    /// Parses an inflated block (§1.3), validating it the way Go peers do: exact counts and
    /// lengths with nothing left over, non-empty lower-case names, no connection-specific headers.
    static func parse(
        block: ByteBuffer, frameType: SPDYFrameType, streamID: SPDYStreamID
    ) throws(SPDYError)
        -> SPDYHeaders
    {
        var block = block
        func invalid(_ message: String) -> SPDYError {
            SPDYError(.invalidHeaderBlock, message, streamID: streamID)
        }
        guard let count = block.readInteger(as: UInt32.self) else {
            throw invalid("header block shorter than its 4-byte pair count")
        }
        // Each pair needs at least 9 bytes (two lengths and a one-byte name): bound the count first.
        guard UInt64(count) * 9 <= UInt64(block.readableBytes) else {
            throw invalid("header block announces \(count) pairs but holds \(block.readableBytes) bytes")
        }
        let forbidden = forbiddenNames(for: frameType)
        var headers = SPDYHeaders()
        headers.pairs.reserveCapacity(Int(count))
        for _ in 0..<count {
            guard let nameLength = block.readInteger(as: UInt32.self), nameLength <= block.readableBytes else {
                throw invalid("header name length runs past the block")
            }
            guard nameLength > 0 else {
                throw SPDYError(.invalidHeaderName, "empty header name", streamID: streamID)
            }
            let nameIsValid = block.readableBytesView.prefix(Int(nameLength)).allSatisfy(isValidNameByte)
            guard nameIsValid, let name = block.readString(length: Int(nameLength)) else {
                throw SPDYError(.invalidHeaderName, "header name is not lower-case printable ASCII", streamID: streamID)
            }
            guard !forbidden.contains(name) else {
                throw SPDYError(.forbiddenHeader, "\(name) is not allowed in \(frameType)", streamID: streamID)
            }
            guard let valueLength = block.readInteger(as: UInt32.self), valueLength <= block.readableBytes else {
                throw invalid("header value length runs past the block")
            }
            let value: String?
            do {
                value = try block.readUTF8ValidatedString(length: Int(valueLength))
            } catch {
                throw invalid("header \(name) has a value that is not UTF-8")
            }
            guard let value else { throw invalid("header value runs past the block") }
            headers.pairs.append(Pair(name: name, value: value))
        }
        guard block.readableBytes == 0 else {
            throw invalid("\(block.readableBytes) bytes left over after \(count) header pairs")
        }
        return headers
    }

    /// Checks that the block is fit to send: strict on output (§1.9), whatever peers tolerate.
    func validateForSending(frameType: SPDYFrameType) throws(SPDYError) {
        let forbidden = Self.forbiddenNames(for: frameType)
        var seen = Set<String>()
        for pair in pairs {
            guard !pair.name.isEmpty, pair.name.utf8.allSatisfy(Self.isValidNameByte) else {
                throw SPDYError(.invalidHeaderName, "cannot send header name \(pair.name.debugDescription)")
            }
            guard !forbidden.contains(pair.name) else {
                throw SPDYError(.forbiddenHeader, "cannot send \(pair.name) in \(frameType)")
            }
            guard seen.insert(pair.name).inserted else {
                throw SPDYError(.invalidHeaderValue, "header \(pair.name) appears twice; join its values with NUL")
            }
            let value = pair.value.utf8
            if value.contains(0) {
                let hasEmptyPart =
                    value.first == 0 || value.last == 0
                    || zip(value, value.dropFirst()).contains { $0 == 0 && $1 == 0 }
                guard !hasEmptyPart else {
                    throw SPDYError(.invalidHeaderValue, "header \(pair.name) has an empty NUL-separated value")
                }
            }
            guard pair.name.utf8.count <= UInt32.max, value.count <= UInt32.max else {
                throw SPDYError(.invalidHeaderValue, "header \(pair.name) is too long")
            }
        }
    }

    /// Writes the uncompressed block: 32-bit pair count, then 32-bit lengths and bytes (§1.3).
    func write(to buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt32(pairs.count))
        for pair in pairs {
            buffer.writeInteger(UInt32(pair.name.utf8.count))
            buffer.writeString(pair.name)
            buffer.writeInteger(UInt32(pair.value.utf8.count))
            buffer.writeString(pair.value)
        }
    }

    /// The size of the uncompressed block.
    var encodedLength: Int {
        pairs.reduce(4) { $0 + 8 + $1.name.utf8.count + $1.value.utf8.count }
    }
}
