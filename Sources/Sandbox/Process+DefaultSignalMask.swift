import Foundation

#if canImport(Glibc)
    import Glibc
#endif

extension Process {
    /// Starts the process with no signals blocked.
    ///
    /// Foundation spawns the child with the calling thread's signal mask, and Dispatch and Swift
    /// concurrency threads block most signals. A child started from one of them inherits SIGTERM
    /// and SIGINT blocked, so `terminate()` and Ctrl-C would never reach it (Go programs such as
    /// kubectl honour an inherited mask for those signals).
    public func runWithDefaultSignalMask() throws {
        var empty = sigset_t()
        var saved = sigset_t()
        sigemptyset(&empty)
        pthread_sigmask(SIG_SETMASK, &empty, &saved)
        defer { pthread_sigmask(SIG_SETMASK, &saved, nil) }
        try run()
    }
}
