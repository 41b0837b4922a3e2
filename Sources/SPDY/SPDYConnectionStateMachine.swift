import NIOCore

/// Which end of the HTTP upgrade this endpoint is (protocols.md §1.5).
public struct SPDYRole: Hashable, Sendable, CustomStringConvertible {
    /// The side that sent the upgrade request: creates odd stream ids, sends odd ping ids.
    public static let client = SPDYRole(isClient: true)
    /// The side that answered 101: even ids (Kubernetes servers never create streams).
    public static let server = SPDYRole(isClient: false)

    let isClient: Bool

    /// The first stream id (and ping id) of this role.
    var firstID: UInt32 { isClient ? 1 : 2 }
    /// Whether `id` has this role's parity.
    func owns(_ id: UInt32) -> Bool { (id & 1 == 1) == isClient }

    public var description: String { isClient ? "client" : "server" }
}

/// The SPDY session: stream ids, the stream table, pings, GOAWAY and idleness (protocols.md §1.5,
/// §1.7, §1.8, §8).
///
/// ```
///            GOAWAY received, or we start closing
///   active ──────────────────────────────────────▶ draining ──(stream table empty)──▶ closed
///     │  ▲ streams open and close                   │ no new streams either way
///     └──┴──────────(session error, idle timeout, close, connection lost)───────────▶ closed
/// ```
/// Ids: the peer's SYN_STREAM ids must have the peer's parity and strictly increase, otherwise the
/// stream is reset with PROTOCOL_ERROR and dropped (its header block has already been inflated, §1.4).
/// Our own ids are allocated here. GOAWAY is always the last frame we send (§1.8): closing resets every
/// stream we have not finished, then sends GOAWAY(last good peer id), and nothing after it.
/// PINGs with the peer's parity are echoed; ours are replies. Time comes in as arguments.
struct SPDYConnectionStateMachine {
    /// The streams and counters of a session that is still running.
    struct Session {
        var streams: [SPDYStreamID: SPDYStreamStateMachine] = [:]
        var nextLocalStreamID: UInt32
        /// The highest id the peer opened (accepted or refused); the next must be above it.
        var lastRemoteStreamID: UInt32 = 0
        /// The highest peer id we accepted: GOAWAY's last-good-stream-id.
        var lastAcceptedRemoteStreamID: UInt32 = 0
        var nextPingID: UInt32
        var outstandingPings: Set<UInt32> = []
        var lastActivity: NIODeadline
    }

    /// Why a session drains.
    enum DrainReason: Equatable {
        /// The peer sent GOAWAY: we open nothing new and close once the streams are done.
        case goAwayReceived(lastGoodStreamID: SPDYStreamID)
    }

    private enum State {
        case active(Session)
        case draining(Session, DrainReason)
        case closed
    }

    /// What the connection handler does with an inbound frame.
    enum InboundAction: Equatable {
        /// Hand it to the layer above.
        case forward
        /// Drop it.
        case ignore
        /// Held for the stream until our SYN_REPLY.
        case buffered
        /// Write this frame back (a PING echo).
        case reply(SPDYFrame)
        /// A stream error: send this RST_STREAM; `notify` when the layer above knew the stream and must
        /// hear that it ended.
        case resetStream(SPDYRstStreamFrame, notify: Bool)
        /// The peer's GOAWAY: hand it up, after telling the layer above that these streams of ours, above
        /// the peer's last-good id, were never seen by the peer and are gone.
        case forwardGoAway(abandoned: [SPDYStreamID])
    }

    /// What closing the session writes: RST_STREAM(CANCEL) for every stream we have not finished, then
    /// GOAWAY. Empty when the session was already closed.
    struct Shutdown: Equatable {
        var resets: [SPDYRstStreamFrame]
        var goAway: SPDYGoAwayFrame?
        /// Streams the layer above must hear have ended.
        var endedStreams: [SPDYStreamID]
    }

    let role: SPDYRole
    let limits: SPDYLimits
    private var state: State

    init(role: SPDYRole, limits: SPDYLimits, now: NIODeadline) {
        self.role = role
        self.limits = limits
        state = .active(Session(nextLocalStreamID: role.firstID, nextPingID: role.firstID, lastActivity: now))
    }

    var isClosed: Bool {
        if case .closed = state { return true }
        return false
    }

    /// Whether the session drains and has no stream left: time to close the connection.
    var isDrained: Bool {
        if case .draining(let session, _) = state { return session.streams.isEmpty }
        return false
    }

    /// Streams currently in the table.
    var openStreamCount: Int {
        switch state {
        case .active(let session), .draining(let session, _): session.streams.count
        case .closed: 0
        }
    }

    // MARK: Plumbing

    /// Runs `body` on the live session, without copying the stream table (the state is moved out first).
    private mutating func withSession<Result, Failure: Error>(
        closed: Result, _ body: (inout Session, _ draining: DrainReason?) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        switch state {
        case .active(var session):
            state = .closed
            defer { state = .active(session) }
            return try body(&session, nil)
        case .draining(var session, let reason):
            state = .closed
            defer { state = .draining(session, reason) }
            return try body(&session, reason)
        case .closed:
            return closed
        }
    }

    // MARK: Activity and time

    /// A frame was read or written at `now`.
    mutating func recordActivity(now: NIODeadline) {
        withSession(closed: ()) { session, _ in session.lastActivity = now }
    }

    /// When the session becomes idle if nothing happens before; `nil` once closed.
    var idleDeadline: NIODeadline? {
        switch state {
        case .active(let session), .draining(let session, _): session.lastActivity + limits.idleTimeout
        case .closed: nil
        }
    }

    /// Whether nothing was read or written in the `interval` before `now`.
    func hasBeenQuiet(for interval: TimeAmount, now: NIODeadline) -> Bool {
        switch state {
        case .active(let session), .draining(let session, _): now - session.lastActivity >= interval
        case .closed: false
        }
    }

    /// Whether the idle timeout has expired at `now`.
    func isIdle(now: NIODeadline) -> Bool {
        guard let idleDeadline else { return false }
        return now >= idleDeadline
    }

    // MARK: Inbound frames

    mutating func received(_ frame: SPDYFrame) -> InboundAction {
        let role = self.role
        let limits = self.limits
        let action: InboundAction = withSession(closed: .ignore) { session, draining in
            switch frame {
            case .synStream(let syn):
                return Self.receivedSynStream(
                    syn, session: &session, draining: draining != nil, role: role, limits: limits)
            case .synReply(let reply):
                return Self.streamAction(reply.streamID, session: &session, role: role) {
                    $0.receivedReply(isFin: reply.isFin)
                }
            case .headers(let headers):
                return Self.streamAction(headers.streamID, session: &session, role: role) {
                    $0.receivedHeaders(isFin: headers.isFin)
                }
            case .data(let data):
                return Self.streamAction(data.streamID, session: &session, role: role) {
                    $0.receivedData(data, maxBufferedBeforeReply: limits.maxBufferedBytesBeforeReply)
                }
            case .rstStream(let rst):
                guard var stream = session.streams.removeValue(forKey: rst.streamID) else { return .ignore }
                return stream.receivedReset() ? .forward : .ignore
            case .ping(let ping):
                if role.owns(ping.id) {
                    session.outstandingPings.remove(ping.id)
                    return .ignore
                }
                return .reply(.ping(ping))
            case .goAway(let goAway):
                let abandoned = session.streams.keys.filter {
                    role.owns($0.rawValue) && $0 > goAway.lastGoodStreamID
                }.sorted()
                for id in abandoned { session.streams[id] = nil }
                return .forwardGoAway(abandoned: abandoned)
            case .settings, .windowUpdate:
                // Go peers ignore flow control entirely (§1.6); so do we.
                return .ignore
            }
        }
        if case .goAway(let goAway) = frame, case .active(let session) = state {
            state = .draining(session, .goAwayReceived(lastGoodStreamID: goAway.lastGoodStreamID))
        }
        return action
    }

    private static func receivedSynStream(
        _ syn: SPDYSynStreamFrame, session: inout Session, draining: Bool, role: SPDYRole, limits: SPDYLimits
    ) -> InboundAction {
        let id = syn.streamID
        func refuse(_ error: SPDYError) -> InboundAction {
            guard case .resetStream(let streamID, let status) = error.wireAction else { return .ignore }
            // A refused id that names one of our live streams kills that stream too, as it does in Go.
            let known = session.streams.removeValue(forKey: streamID) != nil
            return .resetStream(SPDYRstStreamFrame(streamID: streamID, status: status), notify: known)
        }
        guard !role.owns(id.rawValue) else {
            return refuse(SPDYError(.wrongStreamIDParity, "SYN_STREAM with our own parity", streamID: id))
        }
        guard id.rawValue > session.lastRemoteStreamID else {
            return refuse(
                SPDYError(.streamIDRegression, "SYN_STREAM after \(session.lastRemoteStreamID)", streamID: id))
        }
        session.lastRemoteStreamID = id.rawValue
        guard !draining else {
            return refuse(SPDYError(.refusedWhileDraining, "SYN_STREAM after GOAWAY", streamID: id))
        }
        guard session.streams.count < limits.maxConcurrentStreams else {
            return refuse(SPDYError(.tooManyStreams, "more than \(limits.maxConcurrentStreams) streams", streamID: id))
        }
        session.lastAcceptedRemoteStreamID = id.rawValue
        session.streams[id] = .openedByPeer(id, isFin: syn.isFin)
        return .forward
    }

    /// Applies a frame to an existing stream; unknown streams are ignored when they may have just closed
    /// (an id already used), and reset with INVALID_STREAM otherwise (§1.5).
    private static func streamAction(
        _ id: SPDYStreamID, session: inout Session, role: SPDYRole,
        _ body: (inout SPDYStreamStateMachine) -> SPDYStreamStateMachine.InboundAction
    ) -> InboundAction {
        guard var stream = session.streams.removeValue(forKey: id) else {
            let alreadyUsed =
                role.owns(id.rawValue)
                ? id.rawValue < session.nextLocalStreamID : id.rawValue <= session.lastRemoteStreamID
            if alreadyUsed { return .ignore }
            return .resetStream(SPDYRstStreamFrame(streamID: id, status: .invalidStream), notify: false)
        }
        let action = body(&stream)
        if !stream.isClosed { session.streams[id] = stream }
        switch action {
        case .forward: return .forward
        case .buffered: return .buffered
        case .ignore: return .ignore
        case .reset(let error):
            guard case .resetStream(let streamID, let status) = error.wireAction else { return .ignore }
            return .resetStream(SPDYRstStreamFrame(streamID: streamID, status: status), notify: true)
        }
    }

    // MARK: Outbound frames

    /// Allocates the id for a new stream of ours.
    mutating func nextStreamID() throws(SPDYError) -> SPDYStreamID {
        switch state {
        case .active(let session):
            guard session.nextLocalStreamID <= SPDYStreamID.maximum.rawValue else {
                throw SPDYError(.streamIDsExhausted, "no stream ids left")
            }
            return SPDYStreamID(session.nextLocalStreamID)
        case .draining:
            throw SPDYError(.goAwayReceived, "the peer sent GOAWAY")
        case .closed:
            throw SPDYError(.sessionClosed, "the session is closed")
        }
    }

    /// Checks an outbound frame against the session and applies it.
    ///
    /// - Returns: for a SYN_REPLY, the DATA held back for that stream, to hand up right after writing it.
    mutating func send(_ frame: SPDYFrame) throws(SPDYError) -> [SPDYDataFrame] {
        let role = self.role
        let limits = self.limits
        let result: [SPDYDataFrame]? = try withSession(closed: nil) { session, draining throws(SPDYError) in
            switch frame {
            case .synStream(let syn):
                guard draining == nil else { throw SPDYError(.goAwayReceived, "the peer sent GOAWAY") }
                guard role.owns(syn.streamID.rawValue), syn.streamID.rawValue >= session.nextLocalStreamID else {
                    throw SPDYError(.invalidState, "stream id \(syn.streamID) is not the next of ours")
                }
                guard session.streams.count < limits.maxConcurrentStreams else {
                    throw SPDYError(.tooManyStreams, "more than \(limits.maxConcurrentStreams) streams")
                }
                session.nextLocalStreamID = syn.streamID.rawValue + 2
                session.streams[syn.streamID] = .openedLocally(syn.streamID, isFin: syn.isFin)
                return []
            case .synReply(let reply):
                return try Self.updateStream(reply.streamID, in: &session) { stream throws(SPDYError) in
                    try stream.sendReply(isFin: reply.isFin)
                }
            case .data(let data):
                return try Self.updateStream(data.streamID, in: &session) { stream throws(SPDYError) in
                    try stream.sendData(isFin: data.isFin)
                    return []
                }
            case .headers(let headers):
                return try Self.updateStream(headers.streamID, in: &session) { stream throws(SPDYError) in
                    if headers.isFin { try stream.sendData(isFin: true) }
                    return []
                }
            case .rstStream(let rst):
                if var stream = session.streams.removeValue(forKey: rst.streamID) { _ = stream.sendReset() }
                return []
            case .ping(let ping):
                if role.owns(ping.id) { session.outstandingPings.insert(ping.id) }
                return []
            case .goAway:
                throw SPDYError(.invalidState, "GOAWAY is sent by closing the session")
            case .settings, .windowUpdate:
                return []
            }
        }
        guard let result else { throw SPDYError(.sessionClosed, "the session is closed") }
        return result
    }

    private static func updateStream(
        _ id: SPDYStreamID, in session: inout Session,
        _ body: (inout SPDYStreamStateMachine) throws(SPDYError) -> [SPDYDataFrame]
    ) throws(SPDYError) -> [SPDYDataFrame] {
        guard var stream = session.streams.removeValue(forKey: id) else {
            throw SPDYError(.streamClosed, "stream \(id) is closed or unknown", streamID: id)
        }
        defer { if !stream.isClosed { session.streams[id] = stream } }
        return try body(&stream)
    }

    /// A PING of ours to send.
    mutating func nextPing() -> SPDYPingFrame? {
        let firstID = role.firstID
        return withSession(closed: nil) { session, _ in
            let id = session.nextPingID
            session.nextPingID = id &+ 2 == 0 ? firstID : id &+ 2
            session.outstandingPings.insert(id)
            return SPDYPingFrame(id: id)
        }
    }

    /// Closes the session the way Kubernetes does (§1.8): RST_STREAM(CANCEL) for every stream we have
    /// not FIN'd, then GOAWAY(last accepted peer id, `status`) as the very last frame.
    mutating func close(status: SPDYGoAwayStatus) -> Shutdown {
        let shutdown: Shutdown? = withSession(closed: nil) { session, _ in
            let ids = session.streams.keys.sorted()
            let resets = ids.filter { !session.streams[$0]!.hasSentFin }.map {
                SPDYRstStreamFrame(streamID: $0, status: .cancel)
            }
            return Shutdown(
                resets: resets,
                goAway: SPDYGoAwayFrame(
                    lastGoodStreamID: SPDYStreamID(session.lastAcceptedRemoteStreamID), status: status),
                endedStreams: ids)
        }
        state = .closed
        return shutdown ?? Shutdown(resets: [], goAway: nil, endedStreams: [])
    }

    /// The connection is gone: every live stream ends.
    mutating func connectionClosed() -> [SPDYStreamID] {
        let ids: [SPDYStreamID] = withSession(closed: []) { session, _ in session.streams.keys.sorted() }
        state = .closed
        return ids
    }
}
