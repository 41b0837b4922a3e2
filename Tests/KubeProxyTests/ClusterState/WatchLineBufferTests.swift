import NIOCore
import Testing

@testable import KubeProxy

@Suite("Watch responses split into events")
struct WatchLineBufferTests {
    private func feed(_ buffer: inout WatchLineBuffer, _ text: String) {
        buffer.append(ByteBuffer(string: text))
    }

    @Test("events cut anywhere by the network come out whole, and blank lines are skipped")
    func splitsAcrossChunks() throws {
        let stream = "{\"type\":\"ADDED\"}\n\n{\"type\":\"MODIFIED\"}\n{\"type\":\"DEL"
        for cut in 0...stream.utf8.count {
            var buffer = WatchLineBuffer()
            let bytes = Array(stream.utf8)
            buffer.append(ByteBuffer(bytes: bytes[..<cut]))
            var lines: [String] = []
            while let line = try buffer.nextLine() { lines.append(String(decoding: line, as: UTF8.self)) }
            buffer.append(ByteBuffer(bytes: bytes[cut...]))
            while let line = try buffer.nextLine() { lines.append(String(decoding: line, as: UTF8.self)) }
            #expect(lines == ["{\"type\":\"ADDED\"}", "{\"type\":\"MODIFIED\"}"], "cut at \(cut)")
            #expect(buffer.hasPartialLine, "the unfinished event is kept")
        }
    }

    @Test("a line of exactly the limit is accepted, one byte more is refused, with or without its newline")
    func limitOnBothSides() throws {
        var atLimit = WatchLineBuffer(limit: 16)
        feed(&atLimit, String(repeating: "a", count: 16) + "\n")
        #expect(try atLimit.nextLine()?.count == 16)
        #expect(!atLimit.hasPartialLine)

        var over = WatchLineBuffer(limit: 16)
        feed(&over, String(repeating: "a", count: 17) + "\n")
        #expect(throws: WatchLineBuffer.LineTooLong.self) { try over.nextLine() }

        var unfinished = WatchLineBuffer(limit: 16)
        feed(&unfinished, String(repeating: "a", count: 16))
        #expect(try unfinished.nextLine() == nil)
        feed(&unfinished, "a")
        #expect(throws: WatchLineBuffer.LineTooLong.self) { try unfinished.nextLine() }
    }

    @Test("a watch event decodes its type, object and resourceVersion; anything else is refused")
    func decodesEvents() throws {
        let event = try KubernetesClient.WatchEvent(
            line: Array(#"{"type":"MODIFIED","object":{"metadata":{"name":"p","resourceVersion":"42"}}}"#.utf8))
        #expect(event.type == "MODIFIED")
        #expect(event.resourceVersion == "42")
        #expect(throws: KubernetesClient.Failure.self) {
            try KubernetesClient.WatchEvent(line: Array(#"{"type":"ADDED"}"#.utf8))
        }
        #expect(throws: (any Error).self) { try KubernetesClient.WatchEvent(line: Array("not json".utf8)) }
    }
}
