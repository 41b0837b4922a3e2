import NIOCore

/// One SPDY/3 frame, decoded (protocols.md §1.1, §1.2). Header blocks are held uncompressed: the
/// compression context belongs to the connection, not to a frame (§1.4).
public enum SPDYFrame: Hashable, Sendable {
    case data(SPDYDataFrame)
    case synStream(SPDYSynStreamFrame)
    case synReply(SPDYSynReplyFrame)
    case rstStream(SPDYRstStreamFrame)
    case settings(SPDYSettingsFrame)
    case ping(SPDYPingFrame)
    case goAway(SPDYGoAwayFrame)
    case headers(SPDYHeadersFrame)
    case windowUpdate(SPDYWindowUpdateFrame)

    /// The stream a stream-level frame belongs to; `nil` for session-level frames.
    public var streamID: SPDYStreamID? {
        switch self {
        case .data(let frame): frame.streamID
        case .synStream(let frame): frame.streamID
        case .synReply(let frame): frame.streamID
        case .rstStream(let frame): frame.streamID
        case .headers(let frame): frame.streamID
        case .windowUpdate(let frame): frame.streamID.rawValue == 0 ? nil : frame.streamID
        case .settings, .ping, .goAway: nil
        }
    }
}

/// A DATA frame. `data` is a slice of the decoder's input: no bytes are copied.
public struct SPDYDataFrame: Hashable, Sendable {
    public var streamID: SPDYStreamID
    /// FLAG_FIN: Kubernetes half-closes with an empty DATA frame carrying it (§1.5).
    public var isFin: Bool
    public var data: ByteBuffer

    public init(streamID: SPDYStreamID, data: ByteBuffer, isFin: Bool = false) {
        self.streamID = streamID
        self.data = data
        self.isFin = isFin
    }
}

/// SYN_STREAM: opens a stream (§1.2). Kubernetes sends priority 0, slot 0 and no associated stream.
public struct SPDYSynStreamFrame: Hashable, Sendable {
    public var streamID: SPDYStreamID
    public var associatedStreamID: SPDYStreamID
    /// 3 bits, 0 (highest) to 7.
    public var priority: UInt8
    public var slot: UInt8
    public var isFin: Bool
    public var isUnidirectional: Bool
    public var headers: SPDYHeaders

    public init(
        streamID: SPDYStreamID, headers: SPDYHeaders, isFin: Bool = false, isUnidirectional: Bool = false,
        associatedStreamID: SPDYStreamID = .none, priority: UInt8 = 0, slot: UInt8 = 0
    ) {
        self.streamID = streamID
        self.headers = headers
        self.isFin = isFin
        self.isUnidirectional = isUnidirectional
        self.associatedStreamID = associatedStreamID
        self.priority = priority & 0x07
        self.slot = slot
    }
}

/// SYN_REPLY: accepts a stream the peer created (§1.2). Kubernetes replies with an empty block,
/// which is still compressed on the wire.
public struct SPDYSynReplyFrame: Hashable, Sendable {
    public var streamID: SPDYStreamID
    public var isFin: Bool
    public var headers: SPDYHeaders

    public init(streamID: SPDYStreamID, headers: SPDYHeaders = SPDYHeaders(), isFin: Bool = false) {
        self.streamID = streamID
        self.headers = headers
        self.isFin = isFin
    }
}

/// RST_STREAM: aborts a stream in both directions (§1.2, §1.5).
public struct SPDYRstStreamFrame: Hashable, Sendable {
    public var streamID: SPDYStreamID
    public var status: SPDYStreamStatus

    public init(streamID: SPDYStreamID, status: SPDYStreamStatus) {
        self.streamID = streamID
        self.status = status
    }
}

/// SETTINGS (§1.2). Go peers parse and drop them (§1.6).
public struct SPDYSettingsFrame: Hashable, Sendable {
    /// One SETTINGS entry.
    public struct Entry: Hashable, Sendable {
        public var flags: SPDYSettingFlags
        public var id: SPDYSettingID
        public var value: UInt32

        public init(id: SPDYSettingID, value: UInt32, flags: SPDYSettingFlags = []) {
            self.id = id
            self.value = value
            self.flags = flags
        }
    }

    public var clearSettings: Bool
    public var entries: [Entry]

    public init(entries: [Entry], clearSettings: Bool = false) {
        self.entries = entries
        self.clearSettings = clearSettings
    }
}

/// PING (§1.7): a peer's ping is echoed with the identical id.
public struct SPDYPingFrame: Hashable, Sendable {
    public var id: UInt32

    public init(id: UInt32) { self.id = id }
}

/// GOAWAY (§1.8): the last frame a Go peer reads.
public struct SPDYGoAwayFrame: Hashable, Sendable {
    /// The highest stream id received from the peer and accepted; 0 if none.
    public var lastGoodStreamID: SPDYStreamID
    public var status: SPDYGoAwayStatus

    public init(lastGoodStreamID: SPDYStreamID, status: SPDYGoAwayStatus) {
        self.lastGoodStreamID = lastGoodStreamID
        self.status = status
    }
}

/// HEADERS (§1.2). Never sent to Go peers: it stalls them (§1.9).
public struct SPDYHeadersFrame: Hashable, Sendable {
    public var streamID: SPDYStreamID
    public var isFin: Bool
    public var headers: SPDYHeaders

    public init(streamID: SPDYStreamID, headers: SPDYHeaders, isFin: Bool = false) {
        self.streamID = streamID
        self.headers = headers
        self.isFin = isFin
    }
}

/// WINDOW_UPDATE (§1.2, §1.6). Parsed and ignored: Go peers implement no flow control.
public struct SPDYWindowUpdateFrame: Hashable, Sendable {
    /// 0 means the whole connection (SPDY/3.1).
    public var streamID: SPDYStreamID
    /// 1 to 2^31−1.
    public var deltaWindowSize: UInt32

    public init(streamID: SPDYStreamID, deltaWindowSize: UInt32) {
        self.streamID = streamID
        self.deltaWindowSize = deltaWindowSize
    }
}
