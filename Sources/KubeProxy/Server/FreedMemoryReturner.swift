import CMalloc
import NIOConcurrencyHelpers
import NIOCore

/// Gives memory freed by closed connections back to the system.
///
/// glibc keeps freed heap memory for reuse, and each TLS connection frees ~50 KiB of buffers in
/// chunks too small to be unmapped on their own; so after a burst of connections (kubectl leaves
/// one idle beside every exec until the keep-alive timeout closes it) the proxy's RSS stays at
/// its peak. Every `interval`, if any connection closed since the last time, `malloc_trim` hands
/// the whole free pages inside the heap back. It walks the heap's free lists (a few milliseconds
/// for a large heap), which is why it runs at most once per interval and only after closes.
final class FreedMemoryReturner: Sendable {
    static let interval = TimeAmount.seconds(10)

    private let closedSinceLastReturn = NIOLockedValueBox(false)

    func connectionClosed() {
        closedSinceLastReturn.withLockedValue { $0 = true }
    }

    /// Returns free pages if a connection closed since the last call; whether it tried.
    @discardableResult
    func returnFreedMemoryIfConnectionsClosed() -> Bool {
        let closed = closedSinceLastReturn.withLockedValue { closed in
            defer { closed = false }
            return closed
        }
        if closed { _ = cmalloc_release_free_pages() }
        return closed
    }

    func start(on eventLoop: any EventLoop) -> RepeatedTask {
        eventLoop.scheduleRepeatedTask(initialDelay: Self.interval, delay: Self.interval) { _ in
            self.returnFreedMemoryIfConnectionsClosed()
        }
    }
}
