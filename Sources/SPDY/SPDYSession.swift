import NIOCore

/// How one SPDY connection is set up (protocols.md §1, §2).
public struct SPDYSessionConfiguration: Sendable {
    /// Which end of the HTTP upgrade we are.
    public var role: SPDYRole
    public var limits: SPDYLimits
    /// Our outbound header compression.
    public var compression: SPDYHeaderCompressionParameters
    /// Our own PINGs: client-go pings every 5 s; a server leaves this `nil` (§1.7, §2).
    public var pingInterval: TimeAmount?
    /// Writes are cut into DATA frames of at most this size; Go peers write 32 KiB frames.
    public var outboundDataFrameSize: Int

    public init(
        role: SPDYRole,
        limits: SPDYLimits = .default,
        compression: SPDYHeaderCompressionParameters = .compact,
        pingInterval: TimeAmount? = nil,
        outboundDataFrameSize: Int = 32 << 10
    ) {
        self.role = role
        self.limits = limits
        self.compression = compression
        self.pingInterval = pingInterval
        self.outboundDataFrameSize = outboundDataFrameSize
    }
}

/// One SPDY connection seen from async code: the streams the peer opens, the ones we open, and the
/// session's end (protocols.md §1.5, §7.3).
///
/// Create it with ``NIOCore/ChannelPipeline/SynchronousOperations/addSPDYSessionHandlers(configuration:)``
/// or through an upgrader. Every method may be called from any task.
public final class SPDYSession: Sendable {
    public let role: SPDYRole
    /// The connection carrying the session.
    public let channel: any Channel
    /// Streams opened by the peer, not yet replied to: answer each with ``SPDYStream/reply(headers:)``
    /// or ``SPDYStream/reset(status:)`` (a Go client waits 30 s for the reply). Ends when the session does.
    public let inboundStreams: AsyncStream<SPDYStream>
    let multiplexer: NIOLoopBound<SPDYStreamMultiplexer>

    init(
        role: SPDYRole, channel: any Channel, inboundStreams: AsyncStream<SPDYStream>,
        multiplexer: NIOLoopBound<SPDYStreamMultiplexer>
    ) {
        self.role = role
        self.channel = channel
        self.inboundStreams = inboundStreams
        self.multiplexer = multiplexer
    }

    /// Opens a stream and waits for the peer's SYN_REPLY (at most ``SPDYLimits/replyTimeout``).
    ///
    /// Kubernetes clients open every stream of an exec before writing to any (§3.2).
    public func openStream(headers: SPDYHeaders, isFin: Bool = false) async throws -> SPDYStream {
        let multiplexer = self.multiplexer
        return try await channel.eventLoop.flatSubmit {
            multiplexer.value.openStream(headers: headers, isFin: isFin)
        }.get()
    }

    /// Closes the session as Kubernetes does (§1.8): RST_STREAM(CANCEL) for every stream we have not
    /// finished, GOAWAY(OK) last, then the TCP close. Everything written before goes out first.
    public func close() async {
        try? await channel.close()
    }

    /// Completes when the connection has closed.
    public var closeFuture: EventLoopFuture<Void> { channel.closeFuture }

    /// Why the session ended, once it has: the session error, idle timeout or I/O error, if any.
    public func closeReason() async -> (any Error)? {
        let multiplexer = self.multiplexer
        return try? await channel.eventLoop.submit { multiplexer.value.closeReason }.get()
    }
}

/// One SPDY stream (protocols.md §1.5).
///
/// Inbound bytes come from ``inbound``; writes go out as DATA frames in order, each call returning once
/// the connection can take more (TCP backpressure, as Go peers have no flow control, §1.6).
/// ``closeWrite()`` half-closes (empty DATA+FIN), ``reset(status:)`` aborts both directions.
public final class SPDYStream: Sendable, CustomStringConvertible {
    public let id: SPDYStreamID
    /// The SYN_STREAM's headers.
    public let headers: SPDYHeaders
    /// For a stream we opened, the peer's SYN_REPLY headers; `nil` for a stream the peer opened.
    public let replyHeaders: SPDYHeaders?
    /// What the peer sends on the stream, ending at its FIN.
    public let inbound: InboundByteStream
    private let eventLoop: any EventLoop
    private let multiplexer: NIOLoopBound<SPDYStreamMultiplexer>

    init(
        id: SPDYStreamID, headers: SPDYHeaders, replyHeaders: SPDYHeaders?, inbound: InboundByteStream,
        eventLoop: any EventLoop, multiplexer: NIOLoopBound<SPDYStreamMultiplexer>
    ) {
        self.id = id
        self.headers = headers
        self.replyHeaders = replyHeaders
        self.inbound = inbound
        self.eventLoop = eventLoop
        self.multiplexer = multiplexer
    }

    /// Whether we opened the stream.
    public var isLocallyCreated: Bool { replyHeaders != nil }

    public var description: String { "SPDY stream \(id) \(headers)" }

    /// Accepts a stream the peer opened (SYN_REPLY). DATA the peer sent before is delivered after it.
    public func reply(headers: SPDYHeaders = SPDYHeaders()) async throws {
        try await onLoop { $0.reply(id: self.id, headers: headers) }
    }

    /// Sends `data`, cut into DATA frames; returns when the connection is ready for more.
    public func write(_ data: ByteBuffer) async throws {
        guard data.readableBytes > 0 else { return }
        try await onLoop { $0.write(id: self.id, data: data, isFin: false) }
    }

    /// Hands `data` to the event loop without waiting for it; `onFailure` runs there if the
    /// session refuses it. For writers that bound what they hand over (``OutputWindow``).
    func writeWithoutWaiting(_ data: ByteBuffer, onFailure: @escaping @Sendable () -> Void) {
        guard data.readableBytes > 0 else { return }
        let (multiplexer, id) = (self.multiplexer, self.id)
        eventLoop.execute {
            multiplexer.value.write(id: id, data: data, isFin: false).whenFailure { _ in onFailure() }
        }
    }

    /// Half-closes our side: an empty DATA frame with FIN, as Kubernetes' `Close()` does.
    public func closeWrite() async throws {
        try await onLoop { $0.write(id: self.id, data: ByteBuffer(), isFin: true) }
    }

    /// Sends `data` and half-closes in the same frame.
    public func writeAndClose(_ data: ByteBuffer) async throws {
        try await onLoop { $0.write(id: self.id, data: data, isFin: true) }
    }

    /// Drops whatever the peer sends on the stream from now on, as if ``inbound``'s consumer had
    /// gone: for a direction the protocol leaves unused, without a task reading it.
    public func discardInbound() {
        let (multiplexer, id) = (self.multiplexer, self.id)
        eventLoop.execute { multiplexer.value.discardInbound(id) }
    }

    /// Aborts the stream both ways with RST_STREAM (Kubernetes uses CANCEL). Does nothing if it is gone.
    public func reset(status: SPDYStreamStatus = .cancel) async {
        try? await onLoop { $0.reset(id: self.id, status: status) }
    }

    private func onLoop(_ body: @escaping @Sendable (SPDYStreamMultiplexer) -> EventLoopFuture<Void>) async throws {
        let multiplexer = self.multiplexer
        try await eventLoop.flatSubmit { body(multiplexer.value) }.get()
    }
}

extension ChannelPipeline.SynchronousOperations {
    /// Adds the SPDY handlers (decoder, encoder, ``SPDYConnectionHandler``, multiplexer) and returns the
    /// session they serve. Call on the channel's event loop.
    ///
    /// - Parameter position: where the four handlers go, in order; an upgrader puts them right after
    ///   itself, ahead of HTTP handlers that stay in the pipeline.
    public func addSPDYSessionHandlers(
        configuration: SPDYSessionConfiguration, position: ChannelPipeline.SynchronousOperations.Position = .last
    ) throws -> SPDYSession {
        let multiplexer = SPDYStreamMultiplexer(configuration: configuration, eventLoop: eventLoop)
        let handlers: [any ChannelHandler] = [
            ByteToMessageHandler(SPDYFrameDecoderHandler(limits: configuration.limits)),
            MessageToByteHandler(SPDYFrameEncoderHandler(compression: configuration.compression)),
            SPDYConnectionHandler(
                role: configuration.role, limits: configuration.limits, pingInterval: configuration.pingInterval),
            multiplexer,
        ]
        try addHandlers(handlers, position: position)
        guard let session = multiplexer.session else {
            throw SPDYError(.sessionClosed, "the SPDY multiplexer was not added to a channel")
        }
        return session
    }
}
