import Foundation

#if canImport(Glibc)
    import Glibc
#endif

extension Process {
    /// Stops a running child within a bounded time: SIGTERM, then, after `grace`, SIGKILL to its
    /// whole process group. Foundation starts every child as the leader of a new group, and what
    /// a script starts in the background stays in that group, so nothing it started outlives it.
    ///
    /// Returns the exit status, or nil when the child was not reaped even after SIGKILL (a process
    /// stuck in the kernel); the caller then goes on rather than hanging.
    @discardableResult
    public func stop(
        exit monitor: ProcessExitMonitor, grace: Duration, afterKill: Duration = .seconds(10)
    ) -> Int32? {
        if let status = monitor.exitStatus { return status }
        kill(processIdentifier, SIGTERM)
        if let status = monitor.waitBlocking(timeout: grace) { return status }
        kill(-processIdentifier, SIGKILL)
        return monitor.waitBlocking(timeout: afterKill)
    }
}
