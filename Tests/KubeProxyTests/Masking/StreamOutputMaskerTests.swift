import Foundation
import NIOCore
import Policy
import SPDY
import Testing

@testable import KubeProxy

@Suite("Masking exec output")
struct StreamOutputMaskerTests {
    static let card = #"\b(?:\d[ -]?){12,15}\d\b"#
    static let token = #"ghp_[A-Za-z0-9]{36}"#

    static func masker(
        _ patterns: [String] = [card, token], replacement: String = "****"
    ) throws
        -> StreamOutputMasker
    {
        StreamOutputMasker(
            rules: try patterns.map { .init(pattern: try OutputPattern($0), replacement: Array(replacement.utf8)) })
    }

    /// Feeds `text` cut into frames of `size` bytes and returns everything written, flushed.
    static func run(_ masker: inout StreamOutputMasker, _ bytes: [UInt8], frames size: Int) -> [UInt8] {
        var output: [UInt8] = []
        var offset = 0
        while offset < bytes.count {
            let end = min(offset + size, bytes.count)
            output += masker.consume(bytes[offset..<end])
            offset = end
        }
        return output + masker.flush()
    }

    @Test("matches are masked however the output is cut into frames, and nothing else changes")
    func splitAcrossFrames() throws {
        let secret = "ghp_" + String(repeating: "aB3", count: 12)
        let filler = String(repeating: "line of ordinary output 1234\n", count: 200)
        let text = filler + "card 4111 1111 1111 1111 ok\n" + filler + "token=\(secret)\n" + filler
        let expected = filler + "card **** ok\n" + filler + "token=****\n" + filler
        for size in [1, 2, 7, 100, 1023, 1024, 1025, 4096, text.utf8.count] {
            var masker = try Self.masker()
            let output = Self.run(&masker, Array(text.utf8), frames: size)
            #expect(String(decoding: output, as: UTF8.self) == expected, "frames of \(size)")
            #expect(masker.maskedCount == 2, "frames of \(size)")
        }
    }

    @Test("bytes that are not text pass untouched around a match")
    func binary() throws {
        var bytes = (0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 31) }.filter { !(0x30...0x39).contains($0) }
        bytes.insert(contentsOf: Array(" 5500 0000 0000 0004 ".utf8), at: 2000)
        var expected = bytes
        expected.replaceSubrange(2001..<2020, with: Array("XX".utf8))
        var masker = try Self.masker([Self.card], replacement: "XX")
        #expect(Self.run(&masker, bytes, frames: 333) == expected)
    }

    @Test("under two windows are held back, then all but the last window goes out; a flush releases it")
    func holdBack() throws {
        var masker = try Self.masker()
        let window = StreamOutputMasker.window
        #expect(masker.consume(Array(repeating: UInt8(ascii: "x"), count: 2 * window - 1)).isEmpty)
        #expect(masker.consume([UInt8(ascii: "x")]).count == window)
        #expect(masker.flush().count == window)
        let first = Array(String(repeating: "x", count: 3000).utf8)
        #expect(masker.consume(first).count == 3000 - StreamOutputMasker.window)
        #expect(masker.hasPending)
        #expect(masker.flush().count == StreamOutputMasker.window)
        #expect(!masker.hasPending)
        #expect(masker.consume(Array("short".utf8)).isEmpty)
        #expect(masker.flush() == Array("short".utf8))
    }

    @Test("overlapping matches of several rules mask each byte once, the earliest match winning")
    func overlaps() throws {
        var masker = try Self.masker(["abc", "bcdef", "ef"])
        let output = Self.run(&masker, Array("xabcdefg".utf8), frames: 3)
        #expect(String(decoding: output, as: UTF8.self) == "x****d****g")
        #expect(masker.maskedCount == 2)
    }

    @Test("patterns that match empty text or do not compile are refused with the reason")
    func badPatterns() {
        #expect(OutputPattern.validate("a*") == "the pattern matches empty text, so it would mask nothing visible")
        #expect(OutputPattern.validate("") == "the pattern is empty")
        #expect(OutputPattern.validate("(unclosed")?.contains("missing closing )") == true)
        #expect(OutputPattern.validate(#"(a)\1"#) != nil)
        #expect(OutputPattern.validate(Self.card) == nil)
    }

    @Test("a decision's masks with patterns make a masker; field-only masks do not")
    func fromDecision() throws {
        let reference = Decision.RuleReference(policy: "p", rule: "r")
        #expect(
            StreamOutputMasker(masks: [.init(rule: reference, spec: .init(fields: [try FieldPath("data.*")]))]) == nil)
        var masker = try #require(
            StreamOutputMasker(masks: [
                .init(rule: reference, spec: .init(patterns: ["s3cr3t"], replacement: "[hidden]"))
            ]))
        #expect(
            String(decoding: Self.run(&masker, Array("a s3cr3t b".utf8), frames: 4), as: UTF8.self) == "a [hidden] b")
    }
}

@Suite("Masked output through the bridge")
struct MaskedOutputWriterTests {
    @Test("a match split across frames is masked on the client's side and in what the observer records")
    func bridgeMasks() async throws {
        let upstream = FakeUpstream(status: .success(.success))
        let downstream = FakeDownstream(options: RemoteCommandOptions(stdout: true, stderr: true))
        let observer = RecordingObserver()
        upstream.emit("number 4111 1111 ", on: .stdout)
        upstream.emit("1111 1111 end\n", on: .stdout)
        upstream.emit("err 5500-0000-0000-0004\n", on: .stderr)
        upstream.endOutput()
        let summary = await RemoteCommandBridge(
            downstream: downstream, upstream: upstream, observer: observer,
            outputMasker: try StreamOutputMaskerTests.masker()
        ).run()
        #expect(downstream.written(.stdout) == "number **** end\n")
        #expect(downstream.written(.stderr) == "err ****\n")
        #expect(summary.maskedMatches == 2)
        #expect(!observer.events.joined().contains("1111"))
        #expect(summary.bytesOut == "number 4111 1111 1111 1111 end\nerr 5500-0000-0000-0004\n".utf8.count)
    }

    @Test("output held back for a possible match goes out once the stream is quiet")
    func idleFlush() async throws {
        let written = WrittenBytes()
        let idleFlush = Duration.milliseconds(500)
        let writer = MaskedOutputWriter(masker: try StreamOutputMaskerTests.masker(), idleFlush: idleFlush) {
            written.append($0)
        }
        let clock = ContinuousClock()
        let consumed = clock.now
        try await writer.consume(ByteBuffer(string: "$ 4111"))
        let heldFor = clock.now - consumed
        // Checkable only when the runner let this task go on before the flush was due.
        if heldFor < idleFlush { #expect(written.text == "", "held for \(heldFor)") }
        // Generous: it only waits this long when the runner starves the task (two shared cores).
        let deadline = ContinuousClock.now + .seconds(60)
        while written.text.isEmpty, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        #expect(written.text == "$ 4111")
        try await writer.consume(ByteBuffer(string: " ok"))
        try await writer.finish()
        #expect(written.text == "$ 4111 ok")
    }

    @Test("a write slower than the idle flush does not flush half of a match split across frames")
    func slowWriteKeepsSplitMatch() async throws {
        let written = WrittenBytes()
        let writer = MaskedOutputWriter(
            masker: try StreamOutputMaskerTests.masker(), idleFlush: .milliseconds(20)
        ) { bytes in
            // A client or recording that takes ten idle periods to take each frame.
            try await Task.sleep(for: .milliseconds(200))
            written.append(bytes)
        }
        // Enough filler that the first frame has final bytes to write while the card's start is held.
        let filler = String(repeating: "x", count: 3 * StreamOutputMasker.window)
        try await writer.consume(ByteBuffer(string: filler + "number 4111 1111 "))
        try await writer.consume(ByteBuffer(string: "1111 1111 end\n"))
        try await writer.finish()
        let text = written.text
        #expect(text.hasPrefix(filler))
        #expect(text.dropFirst(filler.count) == "number **** end\n")
    }

    @Test("a client that went away fails the writes that follow")
    func clientGone() async throws {
        let writer = MaskedOutputWriter(masker: try StreamOutputMaskerTests.masker()) { _ in
            throw ChannelError.ioOnClosedChannel
        }
        try await writer.consume(ByteBuffer(string: "short"))
        await #expect(throws: ChannelError.self) { try await writer.finish() }
    }
}

final class WrittenBytes: @unchecked Sendable {
    private let lock = NSLock()
    private var bytes: [UInt8] = []

    func append(_ buffer: ByteBuffer) { lock.withLock { bytes += buffer.readableBytesView } }
    var text: String { lock.withLock { String(decoding: bytes, as: UTF8.self) } }
}
