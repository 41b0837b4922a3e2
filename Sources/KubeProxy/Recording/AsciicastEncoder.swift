import Foundation
import NIOCore

/// asciicast v2 lines (https://docs.asciinema.org/manual/asciicast/v2/): a JSON header object on the
/// first line, then one JSON array per event, `[seconds, code, data]`, newline-terminated, so a file
/// cut short by a crash still parses up to its last complete line. `asciinema play` and
/// `asciinema cat` replay it.
///
/// Pure: it produces lines and keeps no file. Terminal output is bytes, but asciicast data is a
/// JSON string: bytes are decoded as UTF-8 incrementally per stream (a character split across two
/// chunks is kept until its end arrives) and invalid sequences become U+FFFD, as asciinema's own
/// recorder does, so no input can produce an unparsable file.
struct AsciicastEncoder: Sendable {
    /// The asciicast v2 event codes.
    struct EventCode: RawRepresentable, Hashable, Sendable {
        var rawValue: String

        /// Output (stdout and stderr: a terminal shows both).
        static let output = EventCode(rawValue: "o")
        /// Input (keystrokes, piped stdin); recorded only when configured.
        static let input = EventCode(rawValue: "i")
        /// A terminal resize, data `COLSxROWS`.
        static let resize = EventCode(rawValue: "r")
        /// A marker: a named point (policy decisions, the exit status).
        static let marker = EventCode(rawValue: "m")
    }

    /// The header line's fields. `portcullis` holds the session's identity and target under one
    /// key of its own; players ignore keys they do not know.
    struct Header: Sendable {
        var width: Int
        var height: Int
        var timestamp: Date
        var command: String?
        var title: String?
        var environment: [String: String] = [:]
        var portcullis: [String: AsciicastValue] = [:]
    }

    /// Output and input are decoded separately, so that a character split on one stream is not
    /// broken by bytes of another in between.
    enum Source: Hashable, Sendable {
        case stdout, stderr, stdin
    }

    private var decoders: [Source: IncrementalUTF8Decoder] = [:]

    init() {}

    /// The header line, newline included.
    static func headerLine(_ header: Header) -> String {
        var fields: [(String, AsciicastValue)] = [
            ("version", .int(2)), ("width", .int(header.width)), ("height", .int(header.height)),
            ("timestamp", .int(Int(header.timestamp.timeIntervalSince1970))),
        ]
        if let command = header.command { fields.append(("command", .string(command))) }
        if let title = header.title { fields.append(("title", .string(title))) }
        if !header.environment.isEmpty {
            fields.append(("env", .object(header.environment.mapValues { .string($0) })))
        }
        if !header.portcullis.isEmpty { fields.append(("portcullis", .object(header.portcullis))) }
        return "{" + fields.map { AsciicastValue.quote($0.0) + ":" + $0.1.json }.joined(separator: ",") + "}\n"
    }

    /// One event line; `time` is seconds since the session started.
    static func eventLine(time: Double, code: EventCode, data: String) -> String {
        "[" + formatTime(time) + "," + AsciicastValue.quote(code.rawValue) + "," + AsciicastValue.quote(data) + "]\n"
    }

    /// The event line for bytes from `source`, as UTF-8, built in one buffer; empty when the bytes
    /// only started a character. This runs for every chunk a session prints, so ASCII output
    /// (nearly all of it) goes from the frame to the line without a `String` in between.
    mutating func bytesLine(time: Double, code: EventCode, source: Source, bytes: some Collection<UInt8>) -> [UInt8] {
        guard !bytes.isEmpty else { return [] }
        if let line = bytes.withContiguousStorageIfAvailable({ buffer -> [UInt8]? in
            guard let line = asciiLine(time: time, code: code, source: source, bytes: buffer) else { return nil }
            return [UInt8](unsafeUninitializedCapacity: line.count + JSONStringEscaping.slack) { out, count in
                line.write(to: UnsafeMutableRawPointer(out.baseAddress!))
                count = line.count
            }
        }), let line {
            return line
        }
        var decoder = decoders[source, default: IncrementalUTF8Decoder()]
        defer { decoders[source] = decoder }
        var text = decoder.decode(bytes)
        guard !text.isEmpty else { return [] }
        return text.withUTF8 {
            Self.eventLine(time: time, code: code, data: $0, quotedCount: JSONStringEscaping.measure($0).count)
        }
    }

    /// An event line for ASCII bytes, measured and not written yet, so that the caller chooses
    /// where it is built. Valid while `data` is.
    struct ASCIILine {
        let prefix: [UInt8]
        let data: UnsafeBufferPointer<UInt8>
        let quotedCount: Int

        /// The line's length; ``write(to:)`` needs `JSONStringEscaping.slack` bytes of room more.
        var count: Int { prefix.count + quotedCount + 2 }

        func write(to out: UnsafeMutableRawPointer) {
            prefix.withUnsafeBytes { out.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            let end = prefix.count + JSONStringEscaping.write(data, to: out + prefix.count)
            out.storeBytes(of: UInt8(ascii: "]"), toByteOffset: end, as: UInt8.self)
            out.storeBytes(of: UInt8(ascii: "\n"), toByteOffset: end + 1, as: UInt8.self)
        }
    }

    /// The line for `bytes` when they are all ASCII (nearly all output is) and no character is
    /// pending on `source`; otherwise nil, and ``bytesLine(time:code:source:bytes:)`` decodes.
    func asciiLine(time: Double, code: EventCode, source: Source, bytes: UnsafeBufferPointer<UInt8>) -> ASCIILine? {
        guard !bytes.isEmpty, decoders[source]?.isEmpty ?? true else { return nil }
        let (quotedCount, isASCII) = JSONStringEscaping.measure(bytes)
        guard isASCII else { return nil }
        return ASCIILine(prefix: Self.linePrefix(time: time, code: code), data: bytes, quotedCount: quotedCount)
    }

    private static func linePrefix(time: Double, code: EventCode) -> [UInt8] {
        Array(("[" + formatTime(time) + "," + AsciicastValue.quote(code.rawValue) + ",").utf8)
    }

    /// `[time,"code","data"]` and a newline, for `data` that is valid UTF-8 and `quotedCount` long
    /// once quoted.
    private static func eventLine(
        time: Double, code: EventCode, data: UnsafeBufferPointer<UInt8>, quotedCount: Int
    ) -> [UInt8] {
        let line = ASCIILine(prefix: linePrefix(time: time, code: code), data: data, quotedCount: quotedCount)
        return [UInt8](unsafeUninitializedCapacity: line.count + JSONStringEscaping.slack) { out, count in
            line.write(to: UnsafeMutableRawPointer(out.baseAddress!))
            count = line.count
        }
    }

    /// Lines for bytes still held at the end of the session (an unfinished character: U+FFFD).
    mutating func flushLines(time: Double) -> [String] {
        var lines: [String] = []
        for source in [Source.stdout, .stderr, .stdin] {
            guard let rest = decoders[source]?.finish(), !rest.isEmpty else { continue }
            lines.append(Self.eventLine(time: time, code: source == .stdin ? .input : .output, data: rest))
        }
        return lines
    }

    /// Seconds with microsecond precision, as asciinema writes them.
    static func formatTime(_ time: Double) -> String {
        let micros = Int64((max(0, time) * 1_000_000).rounded())
        let fraction = String(micros % 1_000_000)
        return "\(micros / 1_000_000)." + String(repeating: "0", count: 6 - fraction.count) + fraction
    }
}

/// A JSON value for the header: enough for strings, numbers, booleans, lists and objects, encoded
/// with sorted keys so headers are stable.
enum AsciicastValue: Sendable, Hashable {
    case string(String)
    case int(Int)
    case bool(Bool)
    case array([AsciicastValue])
    case object([String: AsciicastValue])

    var json: String {
        switch self {
        case .string(let text): Self.quote(text)
        case .int(let value): String(value)
        case .bool(let value): value ? "true" : "false"
        case .array(let values): "[" + values.map(\.json).joined(separator: ",") + "]"
        case .object(let fields):
            "{"
                + fields.sorted { $0.key < $1.key }.map { Self.quote($0.key) + ":" + $0.value.json }
                .joined(separator: ",") + "}"
        }
    }

    /// A JSON string literal (see ``JSONStringEscaping``).
    static func quote(_ text: String) -> String {
        var text = text
        return text.withUTF8 { bytes in
            let count = JSONStringEscaping.measure(bytes).count
            return String(unsafeUninitializedCapacity: count + JSONStringEscaping.slack) {
                JSONStringEscaping.write(bytes, to: UnsafeMutableRawPointer($0.baseAddress!))
            }
        }
    }
}

/// Decodes a byte stream as UTF-8 chunk by chunk: a sequence cut at the end of a chunk waits for
/// the next one; invalid bytes become U+FFFD.
struct IncrementalUTF8Decoder: Sendable {
    private var pending: [UInt8] = []

    /// Whether no unfinished character is held.
    var isEmpty: Bool { pending.isEmpty }

    mutating func decode(_ bytes: some Sequence<UInt8>) -> String {
        pending.append(contentsOf: bytes)
        let keep = Self.incompleteSuffixLength(pending)
        let ready = pending[..<(pending.count - keep)]
        let text = String(decoding: ready, as: UTF8.self)
        pending.removeFirst(pending.count - keep)
        return text
    }

    /// What is left at the end of the stream: an unfinished sequence, as U+FFFD.
    mutating func finish() -> String {
        defer { pending = [] }
        return String(decoding: pending, as: UTF8.self)
    }

    /// How many bytes at the end form the valid start of a sequence that needs more bytes.
    static func incompleteSuffixLength(_ bytes: [UInt8]) -> Int {
        let limit = min(3, bytes.count)
        for back in 1...max(1, limit) where back <= bytes.count {
            let byte = bytes[bytes.count - back]
            if byte & 0xC0 == 0x80 { continue }  // a continuation byte: look further back
            let length: Int
            switch byte {
            case 0xC2...0xDF: length = 2
            case 0xE0...0xEF: length = 3
            case 0xF0...0xF4: length = 4
            default: return 0  // ASCII or an invalid lead: nothing to wait for
            }
            return length > back ? back : 0
        }
        return 0
    }
}
