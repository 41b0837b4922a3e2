import Dispatch

#if canImport(Glibc)
    import Glibc
#endif

/// Turns process signals into an awaitable event. From creation on, the signals no longer kill
/// the process, so it can clean up first.
///
/// Dispatch installs its own handler for a signal source, but asynchronously, on its manager
/// thread. Until then the signal is ignored, and a child spawned in that window would inherit
/// "ignored" (only handlers are reset by `exec`): a bash supervisor cannot even trap a signal
/// ignored on entry, so it could never be stopped. `init` therefore returns only once Dispatch's
/// handlers are in place.
public final class SignalWaiter: @unchecked Sendable {
    /// How long `init` waits for Dispatch to install its handlers.
    public static let handlerInstallLimit: Duration = .seconds(5)

    private let sources: [DispatchSourceSignal]
    private let queue = DispatchQueue(label: "portcullis.signals")
    /// Events that arrived while nobody waited: a signal number, or nil for "the task finished".
    private var pending: [Int32?] = []
    private var waiter: CheckedContinuation<Int32?, Never>?

    public init(signals: [Int32]) {
        var sources: [DispatchSourceSignal] = []
        for number in signals {
            // A handler left by an earlier source for this signal stays: ignoring the signal
            // again would discard it, and Dispatch does not install its handler twice.
            if Self.disposition(of: number) == .defaultAction { signal(number, SIG_IGN) }
            sources.append(DispatchSource.makeSignalSource(signal: number, queue: queue))
        }
        self.sources = sources
        for (source, number) in zip(sources, signals) {
            // Weak: an event already queued when the waiter goes away finds nobody to tell.
            source.setEventHandler { [weak self] in self?.deliver(number) }
            source.resume()
        }
        let deadline = ContinuousClock.now + Self.handlerInstallLimit
        while signals.contains(where: { Self.disposition(of: $0) != .handler }), ContinuousClock.now < deadline {
            usleep(1000)
        }
    }

    /// Sources must be cancelled before they are released: Dispatch would otherwise still route
    /// the next such signal to freed memory (it crashed a test run that way).
    deinit {
        for source in sources { source.cancel() }
    }

    /// What the process currently does with a signal.
    public enum Disposition: Sendable, Equatable {
        case defaultAction
        case ignored
        case handler
    }

    public static func disposition(of number: Int32) -> Disposition {
        var action = sigaction()
        sigaction(number, nil, &action)
        let handler = unsafeBitCast(action.__sigaction_handler.sa_handler, to: Int.self)
        switch handler {
        case unsafeBitCast(SIG_DFL, to: Int.self): return .defaultAction
        case unsafeBitCast(SIG_IGN, to: Int.self): return .ignored
        default: return .handler
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
    public func next<T: Sendable>(orUntil task: Task<T, Never>) async -> Int32? {
        Task { [queue] in
            _ = await task.value
            queue.async { self.deliver(nil) }
        }
        return await next()
    }

    /// Waits for the next signal.
    public func next() async -> Int32? {
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
