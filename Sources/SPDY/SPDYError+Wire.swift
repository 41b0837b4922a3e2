/// What an error does to the connection (protocols.md §1.5, §1.8, §8).
public enum SPDYErrorWireAction: Hashable, Sendable {
    /// A stream error: answer RST_STREAM with this status on the error's stream; the session lives on.
    case resetStream(SPDYStreamID, SPDYStreamStatus)
    /// A session error: send GOAWAY with this status as the last frame, then close the connection.
    case goAway(SPDYGoAwayStatus)
    /// Nothing goes on the wire: a local condition reported to the caller.
    case none
}

extension SPDYError {
    /// The single mapping from error kinds to the wire.
    ///
    /// Every framing and header-block error is a session error: after a bad header block the zlib
    /// context is in an unknown state (§1.4), and Go peers also end the session on them. Stream rule
    /// violations reset just the stream, using the status codes of §1.5. Never answer an RST with an RST.
    public var wireAction: SPDYErrorWireAction {
        switch kind.code {
        case .unsupportedVersion, .unknownFrameType, .invalidFrameLength, .invalidFlags, .invalidStreamID,
            .malformedFrame, .controlFrameTooLarge, .dataFrameTooLarge, .headerBlockTooLarge,
            .decompressedHeaderBlockTooLarge, .headerDecompressionFailed, .invalidHeaderBlock, .invalidHeaderName,
            .forbiddenHeader:
            return .goAway(.protocolError)
        case .headerCompressionFailed:
            return .goAway(.internalError)
        case .idleTimeout:
            return .goAway(.ok)
        case .streamIDRegression, .wrongStreamIDParity, .unexpectedReply:
            return stream(.protocolError)
        case .tooManyStreams, .refusedWhileDraining:
            return stream(.refusedStream)
        case .unknownStream:
            return stream(.invalidStream)
        case .streamAlreadyClosed:
            return stream(.streamAlreadyClosed)
        case .duplicateReply:
            return stream(.streamInUse)
        case .tooMuchDataBeforeReply:
            return stream(.flowControlError)
        case .replyTimeout:
            return stream(.cancel)
        case .invalidHeaderValue, .streamClosed, .streamReset, .sessionClosed, .goAwayReceived,
            .streamIDsExhausted, .invalidState, .upgradeRejected, .missingProtocolVersion,
            .noCommonProtocolVersion, .notAnUpgradeRequest:
            return .none
        }
    }

    private func stream(_ status: SPDYStreamStatus) -> SPDYErrorWireAction {
        guard let streamID else { return .none }
        return .resetStream(streamID, status)
    }
}
