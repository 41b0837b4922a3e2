import Foundation

/// Runs `work` on a thread of its own and returns its result.
///
/// For tests that block for seconds without suspending (the CEL differential run computes and
/// waits on its Python oracle): on Swift's cooperative pool, two threads on a two-core machine,
/// they would hold one of the two meanwhile, and every other test's timers and I/O would share
/// the other. Check expectations after the await: the thread carries no test context.
public func runOnOwnThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try work() }) }.start()
    }
}
