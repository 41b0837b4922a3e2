import Foundation
import NIOCore
import SPDY
import Testing

@testable import KubeProxy

@Suite("asciicast v2 encoding")
struct AsciicastEncoderTests {
    static func parse(_ line: String) throws -> Any {
        #expect(line.hasSuffix("\n"))
        return try JSONSerialization.jsonObject(with: Data(line.utf8), options: [.fragmentsAllowed])
    }

    @Test("the header is one JSON object with version 2, the size, the timestamp and Portcullis's fields")
    func header() throws {
        let line = AsciicastEncoder.headerLine(
            .init(
                width: 101, height: 33, timestamp: Date(timeIntervalSince1970: 1_700_000_000), command: "sh -c ls",
                title: "alice exec dev/web",
                portcullis: ["session": .string("abc"), "groups": .array([.string("dev")]), "tty": .bool(true)]))
        #expect(line.split(separator: "\n").count == 1)
        let header = try #require(try Self.parse(line) as? [String: Any])
        #expect(header["version"] as? Int == 2)
        #expect(header["width"] as? Int == 101)
        #expect(header["height"] as? Int == 33)
        #expect(header["timestamp"] as? Int == 1_700_000_000)
        #expect(header["command"] as? String == "sh -c ls")
        let portcullis = try #require(header["portcullis"] as? [String: Any])
        #expect(portcullis["session"] as? String == "abc")
        #expect(portcullis["groups"] as? [String] == ["dev"])
        #expect(portcullis["tty"] as? Bool == true)
    }

    @Test("events are [time, code, data] with quotes, backslashes and control characters escaped")
    func eventEscaping() throws {
        let data = "a\"b\\c\n\r\t\u{1b}[0m\u{0}\u{7f} é ✓"
        let line = AsciicastEncoder.eventLine(time: 1.5, code: .output, data: data)
        #expect(line.hasPrefix("[1.500000,\"o\",\""))
        #expect(!line.dropLast().contains("\n"))
        let event = try #require(try Self.parse(line) as? [Any])
        #expect(event.count == 3)
        #expect(event[0] as? Double == 1.5)
        #expect(event[1] as? String == "o")
        #expect(event[2] as? String == data)
    }

    @Test("every ASCII character and multi-byte text survive quoting; escapes are the short forms or \\u00xx")
    func quoteRoundTrip() throws {
        let ascii = String(decoding: (0..<128).map { UInt8($0) }, as: UTF8.self)
        for text in [ascii, "é✓😀" + ascii + "\u{2028}", ""] {
            let quoted = AsciicastValue.quote(text)
            let decoded = try JSONSerialization.jsonObject(with: Data("[\(quoted)]".utf8)) as? [String]
            #expect(decoded == [text])
        }
        #expect(AsciicastValue.quote("\u{0}\u{1f}\u{7f}\u{8}\u{c}\"\\") == #""\u0000\u001f\u007f\b\f\"\\""#)
    }

    @Test("the escaper's measured length is what it writes, and it tells ASCII from the rest")
    func escapingMeasure() {
        for text in ["", "plain", "\u{0}\u{1f}\u{7f}\"\\\n", "é✓😀 mixed \t"] {
            var copy = text
            copy.withUTF8 { bytes in
                let (count, isASCII) = JSONStringEscaping.measure(bytes)
                var out = [UInt8](repeating: 0, count: count + JSONStringEscaping.slack)
                let written = out.withUnsafeMutableBytes { JSONStringEscaping.write(bytes, to: $0.baseAddress!) }
                #expect(written == count, "\(text)")
                #expect(isASCII == text.utf8.allSatisfy { $0 < 0x80 }, "\(text)")
                #expect(String(decoding: out[..<written], as: UTF8.self) == AsciicastValue.quote(text))
            }
        }
    }

    /// What the escaper must produce, one byte at a time.
    static func referenceQuote(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [UInt8(ascii: "\"")]
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), byte]
            case 0x0A: out += Array(#"\n"#.utf8)
            case 0x0D: out += Array(#"\r"#.utf8)
            case 0x09: out += Array(#"\t"#.utf8)
            case 0x08: out += Array(#"\b"#.utf8)
            case 0x0C: out += Array(#"\f"#.utf8)
            case 0..<0x20, 0x7F: out += Array(String(format: "\\u%04x", byte).utf8)
            default: out.append(byte)
            }
        }
        return out + [UInt8(ascii: "\"")]
    }

    @Test("words of plain text, runs of one byte and mixed bytes escape as byte by byte, at every offset")
    func escapingWords() {
        var generator = SystemRandomNumberGenerator()
        let alphabets: [[UInt8]] = [
            Array(0x20...0x7E), [0], [0, 0, 0, 0x41], Array(0...0xFF), [0x22, 0x5C, 0x7F, 0x80, 0x1F, 0x20, 0x7E],
            Array("plain text\n".utf8),
        ]
        for round in 0..<3_000 {
            let alphabet = alphabets[round % alphabets.count]
            let count = Int.random(in: 0...80, using: &generator)
            var bytes = (0..<count).map { _ in alphabet.randomElement(using: &generator)! }
            if round % 7 == 0, count > 10 {  // a run of one byte at an odd place
                let start = Int.random(in: 0..<count - 9, using: &generator)
                let byte = UInt8.random(in: 0...0xFF, using: &generator)
                for index in start..<start + 9 { bytes[index] = byte }
            }
            bytes.withUnsafeBufferPointer { buffer in
                let expected = Self.referenceQuote(bytes)
                let (measured, isASCII) = JSONStringEscaping.measure(buffer)
                var out = [UInt8](repeating: 0xAA, count: measured + JSONStringEscaping.slack)
                let written = out.withUnsafeMutableBytes { JSONStringEscaping.write(buffer, to: $0.baseAddress!) }
                #expect(measured == expected.count, "\(bytes)")
                #expect(written == expected.count, "\(bytes)")
                #expect(Array(out[..<written]) == expected, "\(bytes)")
                #expect(isASCII == bytes.allSatisfy { $0 < 0x80 }, "\(bytes)")
            }
        }
    }

    @Test("long runs of one byte, back to back and at odd offsets, escape as byte by byte")
    func escapingRuns() {
        var generator = SystemRandomNumberGenerator()
        // NUL (six bytes each), newline (two), a quote (two), a byte above ASCII and a plain one.
        let runBytes: [UInt8] = [0, 0x0A, 0x22, 0xFF, 0x41]
        for _ in 0..<300 {
            var bytes: [UInt8] = []
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                let byte = runBytes.randomElement(using: &generator)!
                bytes += [UInt8](repeating: byte, count: Int.random(in: 0...3_000, using: &generator))
                bytes += (0..<Int.random(in: 0...9, using: &generator)).map { _ in
                    UInt8.random(in: 0...0xFF, using: &generator)
                }
            }
            bytes.withUnsafeBufferPointer { buffer in
                let expected = Self.referenceQuote(bytes)
                let (measured, _) = JSONStringEscaping.measure(buffer)
                var out = [UInt8](repeating: 0xAA, count: measured + JSONStringEscaping.slack)
                let written = out.withUnsafeMutableBytes { JSONStringEscaping.write(buffer, to: $0.baseAddress!) }
                #expect(measured == expected.count)
                #expect(written == expected.count)
                #expect(Array(out[..<written]) == expected, "\(bytes.count) bytes")
            }
        }
    }

    @Test("the plain-word test is exact for every byte in every position")
    func plainWords() {
        for byte in 0...0xFF {
            let plain = byte >= 0x20 && byte <= 0x7E && byte != 0x22 && byte != 0x5C
            for position in 0..<8 {
                // The byte among plain neighbours, and among neighbours that borrow or carry.
                for filler: UInt64 in [0x41, 0x20, 0x7E] {
                    var word = filler &* 0x0101_0101_0101_0101
                    word &= ~(0xFF << UInt64(position * 8))
                    word |= UInt64(byte) << UInt64(position * 8)
                    #expect(JSONStringEscaping.isPlain(word) == plain, "byte \(byte) at \(position) among \(filler)")
                }
            }
        }
    }

    @Test(
        "times have microsecond precision",
        arguments: [(0.0, "0.000000"), (1.2345678, "1.234568"), (61.05, "61.050000")])
    func times(time: Double, text: String) {
        #expect(AsciicastEncoder.formatTime(time) == text)
    }

    @Test("invalid UTF-8 becomes U+FFFD and the line still parses")
    func invalidUTF8() throws {
        var encoder = AsciicastEncoder()
        let encoded = encoder.textLine(time: 0, code: .output, source: .stdout, bytes: [0x61, 0xFF, 0xC3, 0x28, 0x62])
        let line = try #require(encoded)
        let event = try #require(try Self.parse(line) as? [Any])
        #expect(event[2] as? String == "a\u{FFFD}\u{FFFD}(b")
    }

    @Test("a character split across two chunks is kept whole")
    func splitCharacter() throws {
        var encoder = AsciicastEncoder()
        let check = Array("✓".utf8)  // E2 9C 93
        let first = encoder.textLine(time: 0, code: .output, source: .stdout, bytes: check[0..<2])
        #expect(first == nil)
        // Bytes of another stream in between do not break it.
        let between = encoder.textLine(time: 0, code: .output, source: .stderr, bytes: Array("e".utf8))
        let other = try #require(between)
        #expect((try Self.parse(other) as? [Any])?[2] as? String == "e")
        let last = encoder.textLine(time: 0.1, code: .output, source: .stdout, bytes: Array(check[2...]) + [0x21])
        let line = try #require(last)
        #expect((try Self.parse(line) as? [Any])?[2] as? String == "✓!")
    }

    @Test("an unfinished character at the end of a session is flushed as U+FFFD")
    func unfinishedAtEnd() throws {
        var encoder = AsciicastEncoder()
        let started = encoder.textLine(time: 0, code: .input, source: .stdin, bytes: [0xF0, 0x9F])
        #expect(started == nil)
        let lines = encoder.flushLines(time: 2)
        #expect(lines.count == 1)
        let event = try #require(try Self.parse(lines[0]) as? [Any])
        #expect(event[1] as? String == "i")
        #expect(event[2] as? String == "\u{FFFD}")
    }

    @Test("ASCII chunks, escapes included, give the same line as the text path")
    func asciiFastPath() throws {
        let ascii = (0..<128).map { UInt8($0) }
        var encoder = AsciicastEncoder()
        let line = encoder.bytesLine(
            time: 2.25, code: .output, source: .stdout, bytes: ByteBuffer(bytes: ascii).readableBytesView)
        let expected = AsciicastEncoder.eventLine(
            time: 2.25, code: .output, data: String(decoding: ascii, as: UTF8.self))
        #expect(String(decoding: line, as: UTF8.self) == expected)
    }

    @Test("text cut anywhere, ASCII or not, is recorded whole across its chunks")
    func chunkedText() throws {
        var generator = SystemRandomNumberGenerator()
        let pieces = ["ls -la\r\n", "\u{1b}[01;34mdir\u{1b}[0m", "é", "✓", "😀", "\u{0}", "\"q\"", "\\"]
        let text = (0..<400).map { _ in pieces.randomElement(using: &generator)! }.joined()
        let bytes = Array(text.utf8)
        var encoder = AsciicastEncoder()
        var recorded = ""
        var offset = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + Int.random(in: 1...9, using: &generator))
            let chunk = ByteBuffer(bytes: bytes[offset..<end])
            if let line = encoder.textLine(time: 0, code: .output, source: .stdout, bytes: chunk.readableBytesView) {
                recorded += try #require((try Self.parse(line) as? [Any])?[2] as? String)
            }
            offset = end
        }
        #expect(encoder.flushLines(time: 1).isEmpty)
        #expect(recorded == text)
    }

    @Test("arbitrary bytes in arbitrary chunks always give parsable lines")
    func arbitraryBytes() throws {
        var generator = SystemRandomNumberGenerator()
        var encoder = AsciicastEncoder()
        var lines: [String] = []
        for index in 0..<500 {
            let length = Int.random(in: 0...16, using: &generator)
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if let line = encoder.textLine(time: Double(index), code: .output, source: .stdout, bytes: bytes) {
                lines.append(line)
            }
        }
        lines += encoder.flushLines(time: 500)
        for line in lines {
            let event = try #require(try Self.parse(line) as? [Any], "\(line)")
            #expect(event.count == 3)
        }
    }
}

extension AsciicastEncoder {
    /// ``bytesLine(time:code:source:bytes:)`` as text; nil when the bytes only started a character.
    mutating func textLine(time: Double, code: EventCode, source: Source, bytes: some Collection<UInt8>) -> String? {
        let line = bytesLine(time: time, code: code, source: source, bytes: bytes)
        return line.isEmpty ? nil : String(decoding: line, as: UTF8.self)
    }
}

@Suite("Session recordings on disk")
struct SessionRecorderTests {
    static func header() -> AsciicastEncoder.Header {
        .init(
            width: 80, height: 24, timestamp: Date(), command: "sh", title: "t",
            portcullis: ["session": .string("s")])
    }

    @Test("the first resize sets the header's size; markers before it follow the header; the end is a marker")
    func fileLayout() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rec-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let recorder = try SessionRecorder(
            settings: .init(directory: directory.path, recordInput: true), sessionID: "s1", header: Self.header())
        await recorder.marker("policy: Allow")
        await recorder.resize(TerminalSize(width: 120, height: 40))
        await recorder.output(ByteBuffer(string: "$ "), stream: .stdout)
        await recorder.stdin(ByteBuffer(string: "ls\r"))
        await recorder.resize(TerminalSize(width: 100, height: 30))
        await recorder.output(ByteBuffer(string: "oops"), stream: .stderr)
        await recorder.finish(marker: "exit 3")
        let path = recorder.path
        #expect(path == directory.appendingPathComponent("s1.cast").path)
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(lines.count == 7)
        let header = try #require(
            try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
        #expect(header["width"] as? Int == 120)
        #expect(header["height"] as? Int == 40)
        let events = try lines.dropFirst().map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [Any])
        }
        #expect(events.map { $0[1] as? String } == ["m", "o", "i", "r", "o", "m"])
        #expect(events.map { $0[2] as? String } == ["policy: Allow", "$ ", "ls\r", "100x30", "oops", "exit 3"])
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
    }

    @Test("without a resize the header says 80x24, and input is left out unless configured")
    func defaults() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rec-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let recorder = try SessionRecorder(
            settings: .init(directory: directory.path), sessionID: "s2", header: Self.header())
        await recorder.stdin(ByteBuffer(string: "secret"))
        await recorder.output(ByteBuffer(string: "out"), stream: .stdout)
        await recorder.finish(marker: "exit 0")
        let text = try String(contentsOfFile: recorder.path, encoding: .utf8)
        #expect(!text.contains("secret"))
        let header = try #require(
            try JSONSerialization.jsonObject(with: Data(text.split(separator: "\n")[0].utf8)) as? [String: Any])
        #expect(header["width"] as? Int == 80)
        #expect(header["height"] as? Int == 24)
    }

    @Test("events from several streams at once are written in time order")
    func concurrentStreams() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rec-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let recorder = try SessionRecorder(
            settings: .init(directory: directory.path, recordInput: true), sessionID: "s3", header: Self.header())
        await recorder.marker("policy: Allow")
        await withTaskGroup(of: Void.self) { group in
            for stream in [RemoteCommandStreamType.stdout, .stderr] {
                group.addTask {
                    for index in 0..<200 {
                        await recorder.output(ByteBuffer(string: "\(stream) \(index)\n"), stream: stream)
                    }
                }
            }
            group.addTask {
                for index in 0..<200 { await recorder.stdin(ByteBuffer(string: "in \(index)\n")) }
            }
        }
        await recorder.finish(marker: "exit 0")
        let lines = try String(contentsOfFile: recorder.path, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 603, "header, marker, 600 events, final marker")
        var previous = 0.0
        for line in lines.dropFirst() {
            let event = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [Any])
            let time = try #require((event[0] as? NSNumber)?.doubleValue)
            #expect(time >= previous, "\(line)")
            previous = time
        }
    }

    @Test("a recording that cannot be created is an error, and an existing file is never overwritten")
    func cannotCreate() throws {
        #expect(throws: SessionRecorder.RecordingError.self) {
            _ = try SessionRecorder(
                settings: .init(directory: "/nonexistent/recordings"), sessionID: "x", header: Self.header())
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rec-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        _ = try SessionRecorder(settings: .init(directory: directory.path), sessionID: "same", header: Self.header())
        #expect(throws: SessionRecorder.RecordingError.self) {
            _ = try SessionRecorder(
                settings: .init(directory: directory.path), sessionID: "same", header: Self.header())
        }
    }

    @Test("recordings: in the configuration is strict YAML with defaults")
    func configuration() throws {
        let base = "tls: {certFile: a, keyFile: b}\nupstream: {kubeconfig: k}\n"
        let parsed = try ProxyConfiguration.parse(base + "recordings: {directory: /var/rec}\n", file: "p.yaml")
        #expect(parsed.recordings == .init(directory: "/var/rec", input: false, failClosed: false))
        let full = try ProxyConfiguration.parse(
            base + "recordings: {directory: /r, input: true, failClosed: true}\n", file: "p.yaml")
        #expect(full.recordings?.input == true)
        #expect(full.recordings?.failClosed == true)
        #expect(throws: ProxyConfiguration.Error.self) {
            _ = try ProxyConfiguration.parse(base + "recordings: {directory: /r, inputs: true}\n", file: "p.yaml")
        }
        #expect(throws: ProxyConfiguration.Error.self) {
            _ = try ProxyConfiguration.parse(base + "recordings: {input: true}\n", file: "p.yaml")
        }
    }
}
