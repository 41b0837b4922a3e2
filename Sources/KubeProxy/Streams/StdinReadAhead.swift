import NIOCore
import Synchronization

/// The client's stdin, read ahead of the line guard into a bounded buffer: while a line waits for
/// approval the connection keeps being read (a client's heartbeats and resizes still get through)
/// and a Ctrl-C typed meanwhile is seen at once (see ``LineWaitInterrupt``). Past
/// ``maximumBytes`` the reader waits, so a client cannot make the proxy buffer without bound.
actor StdinReadAhead {
    static let maximumBytes = 64 * 1024

    private var queue: [ByteBuffer] = []
    private var queuedBytes = 0
    /// Set when the reader is done: nil inside for a normal end, or why it failed.
    private var end: (any Error)??
    private var consumer: CheckedContinuation<Void, Never>?
    private var producer: CheckedContinuation<Void, Never>?

    /// Reads `stdin` to its end into the buffer, noting each Ctrl-C in `interrupt`. Returns when
    /// the input ends or the calling task is cancelled.
    func fill<Input: AsyncSequence<ByteBuffer, any Error> & Sendable>(
        from stdin: Input, interrupt: LineWaitInterrupt?
    ) async {
        do {
            for try await chunk in stdin {
                if let interrupt, chunk.readableBytesView.contains(StdinLineGuard.interrupt) {
                    interrupt.interruptQueued()
                }
                queue.append(chunk)
                queuedBytes += chunk.readableBytes
                wakeConsumer()
                while queuedBytes > Self.maximumBytes, !Task.isCancelled {
                    await withTaskCancellationHandler {
                        await withCheckedContinuation { producer = $0 }
                    } onCancel: {
                        Task { await self.wakeAll() }
                    }
                }
                if Task.isCancelled { break }
            }
            end = .some(nil)
        } catch {
            end = .some(error)
        }
        wakeConsumer()
    }

    /// The next chunk, nil at the end; throws what ended the input abnormally.
    func next(interrupt: LineWaitInterrupt?) async throws -> ByteBuffer? {
        while queue.isEmpty {
            if let end {
                if let error = end { throw error }
                return nil
            }
            if Task.isCancelled { return nil }
            await withTaskCancellationHandler {
                await withCheckedContinuation { consumer = $0 }
            } onCancel: {
                Task { await self.wakeAll() }
            }
        }
        let chunk = queue.removeFirst()
        queuedBytes -= chunk.readableBytes
        if let interrupt, chunk.readableBytesView.contains(StdinLineGuard.interrupt) {
            interrupt.interruptTaken()
        }
        if queuedBytes <= Self.maximumBytes { wakeProducer() }
        return chunk
    }

    private func wakeConsumer() {
        consumer?.resume()
        consumer = nil
    }

    private func wakeProducer() {
        producer?.resume()
        producer = nil
    }

    private func wakeAll() {
        wakeConsumer()
        wakeProducer()
    }
}

/// Lets a Ctrl-C the client typed while a line waits for approval end the wait.
///
/// ```
///  idle ──arm(wait)──▶ waiting ──Ctrl-C queued (or already queued at arm)──▶ interrupted: wait cancelled
///    ▲                    │
///    └──────disarm────────┘
/// ```
final class LineWaitInterrupt: Sendable {
    private struct State {
        /// Chunks holding a Ctrl-C that were read but not yet taken by the guard.
        var queuedInterrupts = 0
        var waiting: Task<LineVerdict, Never>?
        var interrupted = false
    }

    private let state = Mutex(State())

    func interruptQueued() {
        let wait = state.withLock { state -> Task<LineVerdict, Never>? in
            state.queuedInterrupts += 1
            guard let waiting = state.waiting else { return nil }
            state.interrupted = true
            return waiting
        }
        wait?.cancel()
    }

    func interruptTaken() {
        state.withLock { $0.queuedInterrupts = max(0, $0.queuedInterrupts - 1) }
    }

    /// Watches `wait` until ``disarm()``; cancels it at once if a Ctrl-C is already queued.
    func arm(_ wait: Task<LineVerdict, Never>) {
        let cancelNow = state.withLock { state -> Bool in
            state.waiting = wait
            state.interrupted = state.queuedInterrupts > 0
            return state.interrupted
        }
        if cancelNow { wait.cancel() }
    }

    /// Stops watching; returns whether the client interrupted the wait.
    func disarm() -> Bool {
        state.withLock { state in
            state.waiting = nil
            defer { state.interrupted = false }
            return state.interrupted
        }
    }
}
