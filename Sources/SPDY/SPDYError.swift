/// Every error of the SPDY layer: codec, state machines, session and handshake.
///
/// The kind is open so new failure modes can be added without breaking callers; how each kind
/// reaches the wire (RST_STREAM, GOAWAY, nothing) is decided in one place, `SPDYError+Wire.swift`.
public struct SPDYError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What went wrong. Compare with the static members.
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        enum Code: String, Hashable, Sendable {
            // Framing (decoder), all session errors (protocols.md §1.1, §1.2).
            case unsupportedVersion, unknownFrameType, invalidFrameLength, invalidFlags, invalidStreamID
            case malformedFrame, controlFrameTooLarge, dataFrameTooLarge
            // Header blocks and their compression (§1.3, §1.4).
            case headerBlockTooLarge, decompressedHeaderBlockTooLarge, headerDecompressionFailed
            case headerCompressionFailed, invalidHeaderBlock, invalidHeaderName, invalidHeaderValue
            case forbiddenHeader
            // Stream rules (§1.5), answered with RST_STREAM.
            case streamIDRegression, wrongStreamIDParity, tooManyStreams, refusedWhileDraining, unknownStream
            case streamAlreadyClosed, duplicateReply, unexpectedReply, tooMuchDataBeforeReply
            // Local conditions reported to the layer above.
            case streamClosed, streamReset, sessionClosed, goAwayReceived, replyTimeout, idleTimeout
            case streamIDsExhausted, invalidState
            // The HTTP upgrade (§2).
            case upgradeRejected, missingProtocolVersion, noCommonProtocolVersion, notAnUpgradeRequest
        }

        let code: Code

        /// A control frame's version field is not 3.
        public static let unsupportedVersion = Kind(code: .unsupportedVersion)
        /// A control frame type SPDY/3 does not define (Go peers die on these, so we refuse them).
        public static let unknownFrameType = Kind(code: .unknownFrameType)
        /// A fixed-size frame with the wrong length, or a variable frame shorter than its fixed part.
        public static let invalidFrameLength = Kind(code: .invalidFrameLength)
        /// Flag bits the frame type does not define.
        public static let invalidFlags = Kind(code: .invalidFlags)
        /// Stream id 0 on a frame that needs a stream.
        public static let invalidStreamID = Kind(code: .invalidStreamID)
        /// A field with a value the protocol forbids (RST status 0, PING id 0, window delta 0).
        public static let malformedFrame = Kind(code: .malformedFrame)
        /// A control frame longer than ``SPDYLimits/maxControlFramePayload``.
        public static let controlFrameTooLarge = Kind(code: .controlFrameTooLarge)
        /// A DATA frame longer than ``SPDYLimits/maxDataFramePayload``.
        public static let dataFrameTooLarge = Kind(code: .dataFrameTooLarge)
        /// A compressed header block longer than ``SPDYLimits/maxCompressedHeaderBlock``.
        public static let headerBlockTooLarge = Kind(code: .headerBlockTooLarge)
        /// A header block inflating beyond ``SPDYLimits/maxDecompressedHeaderBlock`` (a zlib bomb).
        public static let decompressedHeaderBlockTooLarge = Kind(code: .decompressedHeaderBlockTooLarge)
        /// zlib could not inflate a block, or left compressed bytes unconsumed.
        public static let headerDecompressionFailed = Kind(code: .headerDecompressionFailed)
        /// zlib failed while deflating one of our own blocks.
        public static let headerCompressionFailed = Kind(code: .headerCompressionFailed)
        /// An inflated block whose counts and lengths do not add up.
        public static let invalidHeaderBlock = Kind(code: .invalidHeaderBlock)
        /// An empty header name, or one with upper-case letters or non-printable bytes.
        public static let invalidHeaderName = Kind(code: .invalidHeaderName)
        /// A value we would send with empty NUL-separated parts, or a header with several values where
        /// exactly one is required (protocols.md §7.4 item 12).
        public static let invalidHeaderValue = Kind(code: .invalidHeaderValue)
        /// A connection-specific header (`connection`, `host`, …) in a stream's header block.
        public static let forbiddenHeader = Kind(code: .forbiddenHeader)
        /// A SYN_STREAM whose id is not above the peer's previous one.
        public static let streamIDRegression = Kind(code: .streamIDRegression)
        /// A SYN_STREAM with an id of our own parity.
        public static let wrongStreamIDParity = Kind(code: .wrongStreamIDParity)
        /// A SYN_STREAM beyond ``SPDYLimits/maxConcurrentStreams``.
        public static let tooManyStreams = Kind(code: .tooManyStreams)
        /// A SYN_STREAM after we started draining the session.
        public static let refusedWhileDraining = Kind(code: .refusedWhileDraining)
        /// A frame for a stream that does not exist.
        public static let unknownStream = Kind(code: .unknownStream)
        /// DATA or a FIN after the peer already half-closed the stream.
        public static let streamAlreadyClosed = Kind(code: .streamAlreadyClosed)
        /// A second SYN_REPLY for one stream.
        public static let duplicateReply = Kind(code: .duplicateReply)
        /// A SYN_REPLY for a stream the peer created itself.
        public static let unexpectedReply = Kind(code: .unexpectedReply)
        /// More DATA than ``SPDYLimits/maxBufferedBytesBeforeReply`` before we replied.
        public static let tooMuchDataBeforeReply = Kind(code: .tooMuchDataBeforeReply)
        /// A write on a stream this side already closed.
        public static let streamClosed = Kind(code: .streamClosed)
        /// The peer reset the stream (RST_STREAM); ``SPDYError/resetStatus`` says why.
        public static let streamReset = Kind(code: .streamReset)
        /// The session ended (connection closed, GOAWAY sent, or a session error).
        public static let sessionClosed = Kind(code: .sessionClosed)
        /// The peer sent GOAWAY: no new streams may be opened.
        public static let goAwayReceived = Kind(code: .goAwayReceived)
        /// The peer did not answer our SYN_STREAM in time.
        public static let replyTimeout = Kind(code: .replyTimeout)
        /// Nothing was read or written for ``SPDYLimits/idleTimeout``.
        public static let idleTimeout = Kind(code: .idleTimeout)
        /// All 2^31 stream ids of this side are used.
        public static let streamIDsExhausted = Kind(code: .streamIDsExhausted)
        /// An operation that the stream's or session's state does not allow.
        public static let invalidState = Kind(code: .invalidState)
        /// The server answered the upgrade with something other than a valid 101.
        public static let upgradeRejected = Kind(code: .upgradeRejected)
        /// The upgrade request carried no `X-Stream-Protocol-Version`.
        public static let missingProtocolVersion = Kind(code: .missingProtocolVersion)
        /// No offered `X-Stream-Protocol-Version` is supported.
        public static let noCommonProtocolVersion = Kind(code: .noCommonProtocolVersion)
        /// The request lacks `Connection: upgrade` or `Upgrade: SPDY/3.1`.
        public static let notAnUpgradeRequest = Kind(code: .notAnUpgradeRequest)

        public var description: String { code.rawValue }
    }

    public var kind: Kind
    /// The stream the error concerns, for stream-level errors.
    public var streamID: SPDYStreamID?
    /// The RST_STREAM status, for ``Kind/streamReset``.
    public var resetStatus: SPDYStreamStatus?
    /// Human-readable detail.
    public var message: String

    public init(
        _ kind: Kind, _ message: String, streamID: SPDYStreamID? = nil, resetStatus: SPDYStreamStatus? = nil
    ) {
        self.kind = kind
        self.message = message
        self.streamID = streamID
        self.resetStatus = resetStatus
    }

    public var description: String {
        var text = "SPDY \(kind)"
        if let streamID { text += " (stream \(streamID))" }
        return text + ": " + message
    }
}
