import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOExtras
import NIOHTTP1
import NIOPosix
import NIOSSL
import Policy

/// The proxy's front door: TLS, HTTP/1.1 with keep-alive, and the ``ProxyConnectionHandler`` per
/// connection. kubectl offers h2 on ordinary requests and falls back to HTTP/1.1; upgrades
/// (exec, attach, port-forward) need HTTP/1.1 anyway, so only `http/1.1` is negotiated.
public final class ProxyServer: Sendable {
    public struct Configuration: Sendable {
        public var host: String
        /// 0 picks a free port; see ``start()``'s result.
        public var port: Int
        public var certificateChainFile: String
        public var privateKeyFile: String
        /// CA of client certificates to accept; nil: no client-certificate authentication.
        public var clientCAFile: String?
        /// How long a client connection may sit without a request in flight (see
        /// ``ProxyConfiguration/Listen/idleTimeoutSeconds``).
        public var idleTimeout: Duration
        /// How long a connection waiting for its next request may sit (see
        /// ``ProxyConfiguration/Listen/keepAliveTimeoutSeconds``).
        public var keepAliveTimeout: Duration
        /// Shares the port with other processes that set it too (SO_REUSEPORT).
        public var reusePort: Bool

        public init(
            host: String, port: Int, certificateChainFile: String, privateKeyFile: String, clientCAFile: String? = nil,
            idleTimeout: Duration = .seconds(90), keepAliveTimeout: Duration = .seconds(15), reusePort: Bool = false
        ) {
            self.reusePort = reusePort
            self.host = host
            self.port = port
            self.certificateChainFile = certificateChainFile
            self.privateKeyFile = privateKeyFile
            self.clientCAFile = clientCAFile
            self.idleTimeout = idleTimeout
            self.keepAliveTimeout = keepAliveTimeout
        }
    }

    /// Names of the HTTP handlers, removed when a connection becomes an upgrade splice or a
    /// stream session; the idle timeout goes with them (an idle shell is not an idle connection).
    static let httpHandlerNames = [
        "idle", "last-read", "http-decoder", "http-cut-off", "http-encoder", "http-pipelining", "http-errors", "proxy",
    ]

    private let configuration: Configuration
    private let gate: ProxyGate
    private let pool: UpstreamConnectionPool
    private let services: ProxyServices
    private let group: any EventLoopGroup
    private let logger: Logger
    private let state = NIOLockedValueBox<ServerQuiescingHelper?>(nil)

    /// `approvals`: where Review decisions wait (``ClusterApprovals`` or ``LocalApprovals``); nil:
    /// Review answers 403 without filing a request.
    public init(
        configuration: Configuration, upstream: UpstreamConfiguration, policies: PolicyStore,
        authenticate: CallerAuthenticator, approvals: (any ApprovalStore)?, audit: AuditLog,
        recordings: SessionRecordingSettings? = nil, lineChecks: LineCheckSettings = LineCheckSettings(),
        metrics: ProxyMetrics = ProxyMetrics(), group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "portcullis.proxy")
    ) throws {
        self.configuration = configuration
        self.pool = try UpstreamConnectionPool(configuration: upstream, metrics: metrics)
        self.gate = ProxyGate(
            policies: policies, authenticate: authenticate,
            upstreamHost: upstream.port == 443 ? upstream.host : "\(upstream.host):\(upstream.port)",
            authorization: pool.authorization, approvals: approvals)
        self.services = ProxyServices(audit: audit, metrics: metrics, recordings: recordings, lineChecks: lineChecks)
        self.group = group
        self.logger = logger
    }

    /// With AccessRequests in the cluster, in `approvalsNamespace`.
    public convenience init(
        configuration: Configuration, upstream: UpstreamConfiguration, policies: PolicyStore,
        authenticate: CallerAuthenticator, approvalsNamespace: String? = nil, audit: AuditLog,
        recordings: SessionRecordingSettings? = nil, lineChecks: LineCheckSettings = LineCheckSettings(),
        metrics: ProxyMetrics = ProxyMetrics(), group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "portcullis.proxy")
    ) throws {
        try self.init(
            configuration: configuration, upstream: upstream, policies: policies, authenticate: authenticate,
            approvals: try approvalsNamespace.map {
                ClusterApprovals(client: try KubernetesClient(configuration: upstream, group: group), namespace: $0)
            }, audit: audit, recordings: recordings, lineChecks: lineChecks, metrics: metrics, group: group,
            logger: logger)
    }

    /// Binds and starts serving; returns the bound port.
    @discardableResult
    public func start() async throws -> Int {
        let tls = try makeTLSContext()
        let quiesce = ServerQuiescingHelper(group: group)
        let gate = self.gate
        let pool = self.pool
        let services = self.services
        let timeouts = ProxyConnectionHandler.Timeouts(
            idle: TimeAmount(configuration.idleTimeout), keepAlive: TimeAmount(configuration.keepAliveTimeout))
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(
                .socketOption(NIOBSDSocket.Option(rawValue: SO_REUSEPORT)), value: configuration.reusePort ? 1 : 0
            )
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(quiesce.makeServerChannelHandler(channel: channel))
                }
            }
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    // First, so that TLS bytes count: a client mid-handshake is not idle.
                    try sync.addHandler(IdleStateHandler(readTimeout: timeouts.checkInterval), name: "idle")
                    let lastRead = LastReadRecorder()
                    try sync.addHandler(lastRead, name: "last-read")
                    try sync.addHandler(NIOSSLServerHandler(context: tls))
                    try sync.addHandler(
                        ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes)),
                        name: "http-decoder")
                    try sync.addHandler(CutOffRequestErrorFilter(), name: "http-cut-off")
                    try sync.addHandler(HTTPResponseEncoder(), name: "http-encoder")
                    try sync.addHandler(HTTPServerPipelineHandler(), name: "http-pipelining")
                    try sync.addHandler(HTTPServerProtocolErrorHandler(), name: "http-errors")
                    try sync.addHandler(
                        ProxyConnectionHandler(
                            gate: gate, pool: pool, services: services, timeouts: timeouts, lastRead: lastRead),
                        name: "proxy")
                }
            }
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            // Idle sessions keep their TLS buffers without their untouched pages (ConnectionBufferPool).
            .childChannelOption(.allocator, value: .connectionBuffers)
            .bind(host: configuration.host, port: configuration.port)
            .get()
        state.withLockedValue { $0 = quiesce }
        let port = channel.localAddress?.port ?? configuration.port
        logger.info("proxy serving", metadata: ["address": "https://\(configuration.host):\(port)"])
        return port
    }

    /// What a client whose session outlived the shutdown's grace period is told.
    public static let shutdownMessage = "the Portcullis proxy is shutting down; the session was ended"

    /// Stops accepting and closes idle connections; requests and sessions in flight get
    /// `gracePeriod` to finish. Sessions still open then are ended (a failure status naming the
    /// shutdown, recordings closed, audit written), and connections still open a few seconds
    /// later (a watch) are left to the process's exit.
    public func shutdown(gracePeriod: Duration = .seconds(20)) async throws {
        guard let quiesce = state.withLockedValue({ $0 }) else { return }
        let promise = group.next().makePromise(of: Void.self)
        quiesce.initiateShutdown(promise: promise)
        let closed = NIOLockedValueBox(false)
        promise.futureResult.whenComplete { _ in closed.withLockedValue { $0 = true } }
        // Done when every connection is closed and every session has written its recording and
        // audit record (a session's connection closes before those are written).
        let sessions = services.sessions
        let done = { closed.withLockedValue { $0 } && sessions.count == 0 }
        if await !Self.wait(upTo: gracePeriod, until: done) {
            let open = sessions.count
            if open > 0 {
                logger.warning("ending sessions still open after the grace period", metadata: ["sessions": "\(open)"])
                await sessions.endAll(reason: Self.shutdownMessage)
            }
            if await !Self.wait(upTo: .seconds(5), until: done) {
                logger.warning("connections still open after the grace period are dropped")
            }
        }
        state.withLockedValue { $0 = nil }
    }

    /// Polls `done` until it holds or `limit` passes: a shutdown is rare and not in a hurry.
    private static func wait(upTo limit: Duration, until done: () -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while !done() {
            guard ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return true
    }

    private func makeTLSContext() throws -> NIOSSLContext {
        let chain = try NIOSSLCertificate.fromPEMFile(configuration.certificateChainFile).map {
            NIOSSLCertificateSource.certificate($0)
        }
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain,
            privateKey: .privateKey(try NIOSSLPrivateKey(file: configuration.privateKeyFile, format: .pem)))
        tls.minimumTLSVersion = .tlsv12
        tls.applicationProtocols = ["http/1.1"]
        if let clientCAFile = configuration.clientCAFile {
            // Ask for a client certificate, but do not require one: tokens are fine too.
            tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(clientCAFile))
            tls.certificateVerification = .optionalVerification
            tls.sendCANameList = true
        }
        return try NIOSSLContext(configuration: tls)
    }
}
