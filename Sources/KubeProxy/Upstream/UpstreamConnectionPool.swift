import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// Keep-alive HTTP/1.1 connections to the apiserver, kept per event loop: a downstream request
/// is forwarded on a connection of its own event loop, so its bytes never hop threads.
final class UpstreamConnectionPool: Sendable {
    let configuration: UpstreamConfiguration
    let authorization: UpstreamAuthorization
    private let tls: NIOSSLContext
    private let idle = NIOLockedValueBox<[ObjectIdentifier: [Channel]]>([:])
    private let metrics: ProxyMetrics?

    /// Idle connections kept per event loop; more are closed when released.
    static let maximumIdlePerEventLoop = 32
    static let connectTimeout = TimeAmount.seconds(10)
    /// How long the apiserver may take to answer an upgrade (it first reaches the kubelet).
    static let defaultUpgradeTimeout = TimeAmount.seconds(60)

    /// How long an upgrade's answer may take before the connection is closed and the client told.
    let upgradeTimeout: TimeAmount

    init(
        configuration: UpstreamConfiguration, metrics: ProxyMetrics? = nil,
        upgradeTimeout: TimeAmount = defaultUpgradeTimeout
    ) throws {
        self.configuration = configuration
        self.metrics = metrics
        self.upgradeTimeout = upgradeTimeout
        self.authorization = UpstreamAuthorization(configuration.credential)
        self.tls = try configuration.makeTLSContext()
    }

    /// An idle connection of `eventLoop`, or a new one, ready for an HTTP request.
    func lease(on eventLoop: any EventLoop) -> EventLoopFuture<(channel: Channel, reused: Bool)> {
        let key = ObjectIdentifier(eventLoop)
        while let channel = idle.withLockedValue({ $0[key]?.popLast() }) {
            if channel.isActive { return eventLoop.makeSucceededFuture((channel, true)) }
        }
        return connect(on: eventLoop, http: true).map { ($0, false) }
    }

    /// A connection for an upgrade (exec, attach, port-forward, others): an idle pooled one with
    /// its HTTP handlers taken off, or a new raw one. kubectl GETs the pod just before every exec,
    /// which leaves a pooled connection that would otherwise sit idle for the session's life (50 KiB
    /// of TLS buffers); taking it for the upgrade also saves a TLS handshake. `reused`: the caller
    /// retries on a new connection if this one turns out closed before the upgrade's answer.
    /// A session's bytes cross tasks anyway, so a connection of another event loop will do.
    func leaseForUpgrade(on eventLoop: any EventLoop) -> EventLoopFuture<(channel: Channel, reused: Bool)> {
        let key = ObjectIdentifier(eventLoop)
        while let channel = idle.withLockedValue({ pool -> Channel? in
            if let own = pool[key]?.popLast() { return own }
            guard let other = pool.first(where: { !$0.value.isEmpty })?.key else { return nil }
            return pool[other]?.popLast()
        }) {
            guard channel.isActive else { continue }
            metrics?.recordUpstreamUpgrade(pooled: true)
            return channel.eventLoop.submit {
                let pipeline = channel.pipeline.syncOperations
                for name in Self.httpHandlerNames { pipeline.removeHandler(name: name, promise: nil) }
                return (channel, true)
            }
        }
        metrics?.recordUpstreamUpgrade(pooled: false)
        return connect(on: eventLoop, http: false).map { ($0, false) }
    }

    /// The handlers that make a pooled connection an HTTP client, removed for an upgrade.
    private static let httpHandlerNames = [
        "upstream-http-encoder", "upstream-http-decoder", "upstream-header-validator", "upstream-router",
    ]

    /// Puts a connection back after a complete response that allows keep-alive.
    func release(_ channel: Channel, reusable: Bool) {
        guard reusable, channel.isActive else {
            channel.close(promise: nil)
            return
        }
        // A response that outran its client's socket turned reading off (the proxy's
        // backpressure), and its end can arrive in the same read: the next request on this
        // connection would never read its answer, nor the pool see the apiserver close it.
        channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
        let kept = idle.withLockedValue { pool -> Bool in
            let key = ObjectIdentifier(channel.eventLoop)
            guard pool[key, default: []].count < Self.maximumIdlePerEventLoop else { return false }
            pool[key, default: []].append(channel)
            return true
        }
        if !kept { channel.close(promise: nil) }
    }

    /// A new TLS connection. With `http`, it carries HTTP/1.1 client handlers and an
    /// ``UpstreamResponseRouter``; without, it is a raw byte stream (for upgrades).
    func connect(on eventLoop: any EventLoop, http: Bool) -> EventLoopFuture<Channel> {
        metrics?.recordUpstreamConnection(http: http)
        let tls = self.tls
        let serverName = configuration.serverName
        return ClientBootstrap(group: eventLoop)
            .connectTimeout(Self.connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.allocator, value: .connectionBuffers)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    let hostname = serverName.first?.isNumber == true && serverName.contains(".") ? nil : serverName
                    try sync.addHandler(NIOSSLClientHandler(context: tls, serverHostname: hostname))
                    try sync.addHandler(SmallReadCopyHandler())
                    if http {
                        // NIO's addHTTPClientHandlers, with names so that an upgrade can take them off.
                        try sync.addHandler(HTTPRequestEncoder(), name: "upstream-http-encoder")
                        try sync.addHandler(
                            ByteToMessageHandler(HTTPResponseDecoder(leftOverBytesStrategy: .dropBytes)),
                            name: "upstream-http-decoder")
                        try sync.addHandler(NIOHTTPRequestHeadersValidator(), name: "upstream-header-validator")
                        try sync.addHandler(UpstreamResponseRouter(), name: "upstream-router")
                    }
                }
            }
            .connect(host: configuration.host, port: configuration.port)
    }
}

/// Hands each response part of an upstream connection to whoever is waiting for it.
final class UpstreamResponseRouter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart

    enum Event {
        case part(HTTPClientResponsePart)
        /// The end of one read burst: the moment to flush what the parts produced, so that a small
        /// response goes out in one write rather than one per part.
        case readComplete
        case failed(any Error)
    }

    /// Set by the request being forwarded; nil while the connection is idle in the pool.
    var sink: ((Event) -> Void)?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if let sink {
            sink(.part(part))
        } else {
            context.close(promise: nil)  // bytes on an idle connection: the stream is out of step
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        sink?(.readComplete)
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        sink?(.failed(ChannelError.eof))
        sink = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        sink?(.failed(error))
        sink = nil
        context.close(promise: nil)
    }
}
