import Synchronization
import Testing

@testable import KubeProxy

/// The registry a shutdown ends sessions through.
@Suite("ActiveSessions")
struct ActiveSessionsTests {
    /// The reasons each session was ended with, by name.
    final class Ends: Sendable {
        private let log = Mutex<[String: [String]]>([:])

        func end(_ name: String) -> ActiveSessions.End {
            { reason in self.log.withLock { $0[name, default: []].append(reason) } }
        }

        var byName: [String: [String]] { log.withLock { $0 } }
    }

    @Test("endAll ends every open session once with the reason, and leaves closed ones alone")
    func endAll() async {
        let sessions = ActiveSessions()
        let ends = Ends()
        let a = await sessions.open(end: ends.end("a"))
        _ = await sessions.open(end: ends.end("b"))
        let c = await sessions.open(end: ends.end("c"))
        sessions.close(c)
        #expect(sessions.count == 2)
        await sessions.endAll(reason: "shutting down")
        await sessions.endAll(reason: "again")
        #expect(ends.byName == ["a": ["shutting down"], "b": ["shutting down"]])
        #expect(sessions.count == 2, "told to end, but still writing their records")
        sessions.close(a)  // a session closing after it was ended is fine
        #expect(sessions.count == 1)
    }

    @Test("a session opened after endAll (racing the shutdown) is ended at once with the first reason")
    func openAfterEndAll() async {
        let sessions = ActiveSessions()
        let ends = Ends()
        await sessions.endAll(reason: "shutting down")
        let late = await sessions.open(end: ends.end("late"))
        #expect(ends.byName == ["late": ["shutting down"]])
        #expect(sessions.count == 1)
        sessions.close(late)
        #expect(sessions.count == 0)
    }
}
