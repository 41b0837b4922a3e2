import NIOCore

/// Every resource bound of a SPDY session, in one place (protocols.md §1.1, §1.4, §1.6).
///
/// Go peers have no caps of their own; these protect the proxy's memory from a hostile or broken
/// peer. The defaults leave wide margins over what Kubernetes sends (≤ 32 KiB DATA frames, header
/// blocks of a few dozen bytes, at most five streams per exec).
public struct SPDYLimits: Hashable, Sendable {
    /// Largest DATA payload accepted. Go writes at most 32 KiB per frame; the SPDY maximum is 16 MiB.
    public var maxDataFramePayload: Int
    /// Largest control-frame payload accepted. SPDY requires accepting at least 8192 bytes.
    public var maxControlFramePayload: Int
    /// Largest compressed header block (in SYN_STREAM, SYN_REPLY or HEADERS) accepted.
    public var maxCompressedHeaderBlock: Int
    /// Largest header block after inflation: the defence against zlib bombs (§1.4).
    public var maxDecompressedHeaderBlock: Int
    /// Streams open at once, in both directions; a SYN_STREAM beyond it is refused (REFUSED_STREAM).
    public var maxConcurrentStreams: Int
    /// DATA bytes buffered for a peer-created stream before we have sent its SYN_REPLY (§1.5).
    public var maxBufferedBytesBeforeReply: Int
    /// DATA frames buffered per stream for a slow consumer before the connection stops reading
    /// (the only backpressure there is, §1.6); reading resumes below a quarter of it.
    public var maxBufferedFramesPerStream: Int
    /// The session closes with GOAWAY(OK) after this long without a frame read or written (§1.7).
    public var idleTimeout: TimeAmount
    /// How long our SYN_STREAM waits for the peer's SYN_REPLY (client-go waits 30 s).
    public var replyTimeout: TimeAmount

    public init(
        maxDataFramePayload: Int = 1 << 20,
        maxControlFramePayload: Int = 64 << 10,
        maxCompressedHeaderBlock: Int = 32 << 10,
        maxDecompressedHeaderBlock: Int = 256 << 10,
        maxConcurrentStreams: Int = 256,
        maxBufferedBytesBeforeReply: Int = 1 << 20,
        maxBufferedFramesPerStream: Int = 16,
        idleTimeout: TimeAmount = .minutes(15),
        replyTimeout: TimeAmount = .seconds(30)
    ) {
        self.maxDataFramePayload = maxDataFramePayload
        self.maxControlFramePayload = maxControlFramePayload
        self.maxCompressedHeaderBlock = maxCompressedHeaderBlock
        self.maxDecompressedHeaderBlock = maxDecompressedHeaderBlock
        self.maxConcurrentStreams = maxConcurrentStreams
        self.maxBufferedBytesBeforeReply = maxBufferedBytesBeforeReply
        self.maxBufferedFramesPerStream = maxBufferedFramesPerStream
        self.idleTimeout = idleTimeout
        self.replyTimeout = replyTimeout
    }

    /// The defaults described on each property.
    public static let `default` = SPDYLimits()

    /// The largest payload the 24-bit length field can express.
    public static let wireMaximumPayload = 0xFF_FFFF
}
