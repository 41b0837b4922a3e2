import Synchronization

/// How much of a session's output goes to the event loop without waiting.
///
/// Waiting for the event loop on every chunk costs two thread switches per chunk (there and
/// back), which profiles of bulk exec output put at a third of the proxy's CPU. A writer hands
/// chunks over without waiting until ``limit`` bytes have gone that way, then waits once for the
/// connection to take more: the bytes in flight stay bounded. A send that failed (the peer is
/// gone) fails the next write.
final class OutputWindow: Sendable {
    /// Output handed over before a write waits for the connection.
    static let limit = 512 << 10

    private let unconfirmed = Atomic<Int>(0)
    private let failed = Atomic<Bool>(false)

    /// Whether `count` more bytes may go without waiting; if not, the count starts again, since
    /// the caller now waits for everything handed over so far.
    ///
    /// - Throws: `SPDYError` `.sessionClosed` once a send has failed.
    func admit(_ count: Int) throws(SPDYError) -> Bool {
        if failed.load(ordering: .acquiring) { throw SPDYError(.sessionClosed, "the connection ended") }
        if unconfirmed.add(count, ordering: .relaxed).newValue < Self.limit { return true }
        unconfirmed.store(0, ordering: .relaxed)
        return false
    }

    /// Records that a send handed over without waiting failed.
    func fail() {
        failed.store(true, ordering: .releasing)
    }
}
