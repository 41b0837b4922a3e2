import NIOCore

/// The client's keep-alive as client-go runs it (protocols.md §4.5): a ping every interval, and the
/// connection given up once no pong has come for the timeout. Only pongs count: data does not push the
/// deadline, exactly as in client-go. The clock is injected: every event carries its time.
///
/// ```
///  (upgrade) ──▶ ALIVE(last pong) ──tick, within timeout──▶ ping, ALIVE
///                    │  ▲
///                    │  └── pong: last pong = now
///                    └──tick, timeout passed──▶ GAVE_UP: close the connection; later events do nothing
/// ```
struct WebSocketHeartbeat: Sendable {
    enum Action: Equatable {
        case sendPing
        case giveUp
        case nothing
    }

    private enum State {
        case alive(lastPong: NIODeadline)
        case gaveUp
    }

    let interval: TimeAmount
    let timeout: TimeAmount
    private var state: State

    /// - Parameter now: when the connection was upgraded; the first deadline counts from it.
    init(interval: TimeAmount, timeout: TimeAmount, now: NIODeadline) {
        self.interval = interval
        self.timeout = timeout
        self.state = .alive(lastPong: now)
    }

    mutating func pongReceived(at now: NIODeadline) {
        guard case .alive = state else { return }
        state = .alive(lastPong: now)
    }

    /// What to do when the ping timer fires.
    mutating func tick(at now: NIODeadline) -> Action {
        guard case .alive(let lastPong) = state else { return .nothing }
        guard now - lastPong <= timeout else {
            state = .gaveUp
            return .giveUp
        }
        return .sendPing
    }
}
