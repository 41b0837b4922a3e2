import Foundation

/// Waits for a child's exit through its termination handler.
///
/// corelibs-Foundation's `Process.waitUntilExit()` spins the current thread's run loop, which
/// busy-loops on threads that have no run-loop sources (every Dispatch and Swift concurrency
/// thread); this waits without burning a core.
public final class ProcessExitMonitor: @unchecked Sendable {
    private let lock = NSLock()
    private var status: Int32?
    private var waiters: [CheckedContinuation<Int32, Never>] = []
    private let exited = DispatchSemaphore(value: 0)

    /// Installs the monitor as `process`'s termination handler; call before `run()`.
    public init(_ process: Process) {
        process.terminationHandler = { [self] process in finish(process.terminationStatus) }
    }

    private func finish(_ status: Int32) {
        let waiters = lock.withLock {
            self.status = status
            defer { self.waiters = [] }
            return self.waiters
        }
        for waiter in waiters { waiter.resume(returning: status) }
        exited.signal()
    }

    /// The exit status, once the process has exited.
    public var exitStatus: Int32? { lock.withLock { status } }

    /// Waits for the exit without blocking a thread.
    public func wait() async -> Int32 {
        await withCheckedContinuation { continuation in
            let finished = lock.withLock {
                if status == nil { waiters.append(continuation) }
                return status
            }
            if let finished { continuation.resume(returning: finished) }
        }
    }

    /// Blocks the calling thread until the exit (for synchronous contexts such as `atexit`).
    public func waitBlocking() -> Int32 {
        if let status = exitStatus { return status }
        exited.wait()
        exited.signal()
        return exitStatus ?? -1
    }

    /// Blocks the calling thread until the exit or until `timeout` has passed (nil then).
    public func waitBlocking(timeout: Duration) -> Int32? {
        if let status = exitStatus { return status }
        let (seconds, attoseconds) = timeout.components
        let nanoseconds = Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000)
        guard exited.wait(timeout: .now() + .nanoseconds(nanoseconds)) == .success else { return nil }
        exited.signal()
        return exitStatus
    }
}
