import Synchronization

/// The exec, attach and port-forward sessions open right now, so that a shutdown can end the ones
/// that outlive its grace period the way any session ends: the client gets a failure naming the
/// reason (never a silent exit 0), and the recording and audit record are closed as usual.
///
/// ```
///  open(end:) ──▶ registered ──close()──▶ gone
///                     └──endAll(reason)──▶ end(reason) called once ──close()──▶ gone
///  open(end:) after endAll ──▶ end(reason) called at once (a session racing the shutdown)
/// ```
///
/// A session closes its registration last, after its recording and audit record are written, so
/// ``count`` reaching zero tells a shutdown that nothing it would lose by exiting is left.
final class ActiveSessions: Sendable {
    /// Ends one session with `reason`; returns once the session was told (not once it finished).
    typealias End = @Sendable (_ reason: String) async -> Void

    /// A session's place in the registry, handed back to ``close(_:)``.
    struct Registration: Sendable, Hashable {
        fileprivate let id: UInt64
    }

    private struct State {
        var nextID: UInt64 = 0
        /// Sessions not told to end yet.
        var open: [UInt64: End] = [:]
        /// Sessions not closed yet, told to end or not.
        var running: Set<UInt64> = []
        /// Set by ``endAll(reason:)``: sessions opened later are ended at once.
        var endingReason: String?
    }

    private let state = Mutex(State())

    init() {}

    /// Sessions that have not closed their registration yet.
    var count: Int { state.withLock { $0.running.count } }

    /// Registers a session that `end` can stop.
    func open(end: @escaping End) async -> Registration {
        let (registration, reason) = state.withLock { state -> (Registration, String?) in
            state.nextID += 1
            state.running.insert(state.nextID)
            if state.endingReason == nil { state.open[state.nextID] = end }
            return (Registration(id: state.nextID), state.endingReason)
        }
        if let reason { await end(reason) }
        return registration
    }

    /// The session ended; a later ``endAll(reason:)`` leaves it alone.
    func close(_ registration: Registration) {
        state.withLock { state in
            state.open[registration.id] = nil
            state.running.remove(registration.id)
        }
    }

    /// Tells every open session, and every one opened from now on, to end with `reason`.
    func endAll(reason: String) async {
        let ends = state.withLock { state -> [End] in
            state.endingReason = state.endingReason ?? reason
            defer { state.open = [:] }
            return Array(state.open.values)
        }
        await withTaskGroup(of: Void.self) { group in
            for end in ends { group.addTask { await end(reason) } }
        }
    }
}

/// Why the proxy ended a session itself, kept for the session to read when it writes its final
/// status: set before the session's upstream is closed, so the loss that follows is not mistaken
/// for the apiserver's.
final class SessionEndNotice: Sendable {
    private let value = Mutex<String?>(nil)

    init() {}

    /// The first reason wins.
    func set(_ reason: String) { value.withLock { $0 = $0 ?? reason } }

    var reason: String? { value.withLock { $0 } }
}
