import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

/// CPU time spent by the threads of an event loop group, read on each loop's own thread. On a
/// shared machine wall-clock rates depend on what else runs; CPU time per review does not (much).
func cpuTime(of group: MultiThreadedEventLoopGroup) async throws -> Duration {
    var total = Duration.zero
    for loop in group.makeIterator() {
        total += try await loop.submit {
            var spec = timespec()
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &spec)
            return Duration.seconds(spec.tv_sec) + Duration.nanoseconds(spec.tv_nsec)
        }.get()
    }
    return total
}
