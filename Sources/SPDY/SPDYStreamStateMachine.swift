import NIOCore

/// The life of one SPDY stream, from this endpoint's point of view (protocols.md §1.5, §8).
///
/// ```
///               send/recv SYN_STREAM
///   (created) ──────────────────────▶ open ──(we send FIN)──▶ halfClosedLocal ──(recv FIN)──▶ closed
///                                      │ └──(recv FIN)──▶ halfClosedRemote ──(we send FIN)──▶ closed
///                                      └──(RST_STREAM either way, or connection teardown)──▶ closed
/// ```
/// Each live state carries the stream's ``Info``: who created it, whether the SYN_REPLY has gone
/// by, and, for a stream the peer created, the inbound DATA held back until our SYN_REPLY is
/// written (Go peers drop DATA that overtakes a reply, so nothing overtakes ours).
struct SPDYStreamStateMachine {
    /// What a live stream knows besides its half-closed state.
    struct Info {
        let createdLocally: Bool
        /// SYN_REPLY sent (peer-created stream) or received (ours).
        var replied: Bool
        /// DATA received before our SYN_REPLY; `nil` once replied or for our own streams.
        var pending: PendingInbound?
    }

    /// Inbound DATA held for a peer-created stream until we reply.
    struct PendingInbound {
        var frames: [SPDYDataFrame] = []
        var bytes = 0
    }

    private enum State {
        case open(Info)
        case halfClosedLocal(Info)
        case halfClosedRemote(Info)
        case closed
    }

    /// What to do with an inbound DATA frame (or the FIN of another frame).
    enum InboundAction: Equatable {
        /// Hand the frame to the layer above.
        case forward
        /// Held until our SYN_REPLY is written.
        case buffered
        /// Drop it silently: the stream is already gone on our side (§1.5: never answer an RST with an RST).
        case ignore
        /// A stream error: reset the stream with this error.
        case reset(SPDYError)
    }

    private var state: State
    let streamID: SPDYStreamID

    /// A stream the peer opened with SYN_STREAM, FIN set if the peer will send nothing.
    static func openedByPeer(_ streamID: SPDYStreamID, isFin: Bool) -> SPDYStreamStateMachine {
        var info = Info(createdLocally: false, replied: false, pending: PendingInbound())
        if isFin {
            info.pending = PendingInbound(frames: [SPDYDataFrame(streamID: streamID, data: ByteBuffer(), isFin: true)])
        }
        return SPDYStreamStateMachine(streamID: streamID, state: isFin ? .halfClosedRemote(info) : .open(info))
    }

    /// A stream we opened with SYN_STREAM.
    static func openedLocally(_ streamID: SPDYStreamID, isFin: Bool) -> SPDYStreamStateMachine {
        let info = Info(createdLocally: true, replied: false, pending: nil)
        return SPDYStreamStateMachine(streamID: streamID, state: isFin ? .halfClosedLocal(info) : .open(info))
    }

    private init(streamID: SPDYStreamID, state: State) {
        self.streamID = streamID
        self.state = state
    }

    var isClosed: Bool {
        if case .closed = state { return true }
        return false
    }

    var createdLocally: Bool {
        switch state {
        case .open(let info), .halfClosedLocal(let info), .halfClosedRemote(let info): info.createdLocally
        case .closed: false
        }
    }

    /// Whether we have sent our FIN (or the stream is gone): §1.8 resets only the others at shutdown.
    var hasSentFin: Bool {
        switch state {
        case .halfClosedLocal, .closed: true
        case .open, .halfClosedRemote: false
        }
    }

    // MARK: Inbound events

    /// DATA arrived. `maxBufferedBeforeReply` bounds what is held for a stream we have not replied to.
    mutating func receivedData(_ frame: SPDYDataFrame, maxBufferedBeforeReply: Int) -> InboundAction {
        switch state {
        case .closed:
            return .ignore
        case .halfClosedRemote:
            state = .closed
            return .reset(SPDYError(.streamAlreadyClosed, "DATA after the peer's FIN", streamID: streamID))
        case .open(var info), .halfClosedLocal(var info):
            let wasOpen = if case .open = state { true } else { false }
            if var pending = info.pending {
                // Only an open stream can hold pending DATA: replying (the only way out) clears it.
                pending.bytes += frame.data.readableBytes
                guard pending.bytes <= maxBufferedBeforeReply else {
                    state = .closed
                    return .reset(
                        SPDYError(
                            .tooMuchDataBeforeReply, "more than \(maxBufferedBeforeReply) bytes before our SYN_REPLY",
                            streamID: streamID))
                }
                pending.frames.append(frame)
                info.pending = pending
                state = frame.isFin ? .halfClosedRemote(info) : .open(info)
                return .buffered
            }
            if frame.isFin { state = wasOpen ? .halfClosedRemote(info) : .closed }
            return .forward
        }
    }

    /// The peer's SYN_REPLY arrived.
    mutating func receivedReply(isFin: Bool) -> InboundAction {
        switch state {
        case .closed:
            return .ignore
        case .open(var info), .halfClosedLocal(var info), .halfClosedRemote(var info):
            guard info.createdLocally else {
                state = .closed
                return .reset(SPDYError(.unexpectedReply, "SYN_REPLY for a stream the peer opened", streamID: streamID))
            }
            guard !info.replied else {
                state = .closed
                return .reset(SPDYError(.duplicateReply, "second SYN_REPLY", streamID: streamID))
            }
            info.replied = true
            return applyRemoteFin(isFin, info: info)
        }
    }

    /// HEADERS arrived: only its FIN matters here.
    mutating func receivedHeaders(isFin: Bool) -> InboundAction {
        guard isFin else { return isClosed ? .ignore : .forward }
        return receivedData(
            SPDYDataFrame(streamID: streamID, data: ByteBuffer(), isFin: true), maxBufferedBeforeReply: .max)
    }

    private mutating func applyRemoteFin(_ isFin: Bool, info: Info) -> InboundAction {
        switch state {
        case .open: state = isFin ? .halfClosedRemote(info) : .open(info)
        case .halfClosedLocal: state = isFin ? .closed : .halfClosedLocal(info)
        case .halfClosedRemote:
            state = .closed
            return .reset(SPDYError(.streamAlreadyClosed, "FIN after the peer's FIN", streamID: streamID))
        case .closed: return .ignore
        }
        return .forward
    }

    /// The peer reset the stream. Returns whether the stream was live (so the layer above must hear of it).
    mutating func receivedReset() -> Bool {
        defer { state = .closed }
        return !isClosed
    }

    // MARK: Outbound events

    /// We write SYN_REPLY. Returns the DATA held back, to hand to the layer above right after the reply.
    mutating func sendReply(isFin: Bool) throws(SPDYError) -> [SPDYDataFrame] {
        switch state {
        case .closed:
            throw SPDYError(.streamClosed, "cannot reply to a closed stream", streamID: streamID)
        case .open(var info), .halfClosedLocal(var info), .halfClosedRemote(var info):
            guard !info.createdLocally, !info.replied else {
                throw SPDYError(
                    .invalidState, "only one SYN_REPLY, and only for the peer's streams", streamID: streamID)
            }
            info.replied = true
            let pending = info.pending?.frames ?? []
            info.pending = nil
            switch state {
            case .open: state = isFin ? .halfClosedLocal(info) : .open(info)
            case .halfClosedRemote: state = isFin ? .closed : .halfClosedRemote(info)
            case .halfClosedLocal, .closed: break
            }
            return pending
        }
    }

    /// We write DATA (or a FIN).
    mutating func sendData(isFin: Bool) throws(SPDYError) {
        switch state {
        case .closed, .halfClosedLocal:
            throw SPDYError(.streamClosed, "this side already closed the stream", streamID: streamID)
        case .open(let info), .halfClosedRemote(let info):
            guard info.createdLocally || info.replied else {
                throw SPDYError(.invalidState, "reply to a stream before writing to it", streamID: streamID)
            }
            guard isFin else { return }
            if case .open = state { state = .halfClosedLocal(info) } else { state = .closed }
        }
    }

    /// We reset the stream. Returns whether an RST_STREAM should go out (not for a stream already gone).
    mutating func sendReset() -> Bool {
        defer { state = .closed }
        return !isClosed
    }
}
