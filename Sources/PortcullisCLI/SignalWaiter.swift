import Dispatch

#if canImport(Glibc)
    import Glibc
#endif

/// Turns process signals into an awaitable event. The signals are ignored by default handling
/// from creation on, so they cannot kill the process before it has cleaned up.
final class SignalWaiter: @unchecked Sendable {
    private let sources: [DispatchSourceSignal]
    private let queue = DispatchQueue(label: "portcullis.signals")
    /// Events that arrived while nobody waited: a signal number, or nil for "the task finished".
    private var pending: [Int32?] = []
    private var waiter: CheckedContinuation<Int32?, Never>?

    init(signals: [Int32]) {
        var sources: [DispatchSourceSignal] = []
        for number in signals {
            signal(number, SIG_IGN)
            sources.append(DispatchSource.makeSignalSource(signal: number, queue: queue))
        }
        self.sources = sources
        for (source, number) in zip(sources, signals) {
            source.setEventHandler { [unowned self] in self.deliver(number) }
            source.resume()
        }
    }

    private func deliver(_ value: Int32?) {
        if let waiter {
            self.waiter = nil
            waiter.resume(returning: value)
        } else {
            pending.append(value)
        }
    }

    /// Waits for a signal (returned), or for `task` to finish first (nil).
    func next<T: Sendable>(orUntil task: Task<T, Never>) async -> Int32? {
        Task { [queue] in
            _ = await task.value
            queue.async { self.deliver(nil) }
        }
        return await next()
    }

    /// Waits for the next signal.
    func next() async -> Int32? {
        await withCheckedContinuation { continuation in
            queue.async {
                if !self.pending.isEmpty {
                    continuation.resume(returning: self.pending.removeFirst())
                } else {
                    self.waiter = continuation
                }
            }
        }
    }
}
