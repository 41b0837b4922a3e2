import Testing

@testable import SPDY

/// Output goes to the event loop without waiting only up to the window, and a failed send fails
/// the writes after it.
@Suite("Output window")
struct OutputWindowTests {
    @Test("chunks go without waiting until the limit; the one reaching it waits, and the count starts again")
    func limit() throws {
        let window = OutputWindow()
        let chunk = 128 << 10
        let free = (OutputWindow.limit - 1) / chunk
        for _ in 0..<free { #expect(try window.admit(chunk)) }
        #expect(try !window.admit(chunk), "the chunk reaching the limit must wait")
        #expect(try window.admit(chunk), "after a wait, the window is open again")
    }

    @Test("a chunk larger than the window waits at once")
    func largeChunk() throws {
        #expect(try !OutputWindow().admit(OutputWindow.limit))
    }

    @Test("after a failed send every write fails")
    func failure() throws {
        let window = OutputWindow()
        #expect(try window.admit(1))
        window.fail()
        #expect(throws: SPDYError.self) { try window.admit(1) }
        #expect(throws: SPDYError.self) { try window.admit(OutputWindow.limit) }
    }
}
