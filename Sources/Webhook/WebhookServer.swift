import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOExtras
import NIOHTTP1
import NIOPosix
import NIOSSL

/// The admission webhook over HTTPS: `/validate`, `/mutate`, `/healthz`, `/readyz`, `/metrics`.
///
/// HTTP/1.1 with keep-alive (the apiserver reuses connections); request bodies are aggregated up to
/// ``AdmissionRequest/maximumBodyBytes`` and anything larger is refused with 413 before it is
/// read. ``shutdown()`` drains: it stops accepting, lets reviews in flight finish and closes idle
/// connections, so a rolling restart does not fail admissions.
public final class WebhookServer: Sendable {
    public struct Configuration: Sendable {
        public var host: String
        /// 0 picks a free port (tests); see ``start()``'s result.
        public var port: Int
        public var certificateChainFile: String
        public var privateKeyFile: String

        public init(host: String = "0.0.0.0", port: Int = 9443, certificateChainFile: String, privateKeyFile: String) {
            self.host = host
            self.port = port
            self.certificateChainFile = certificateChainFile
            self.privateKeyFile = privateKeyFile
        }
    }

    /// Sees the raw body of every review POSTed to `/validate` or `/mutate`, before it is
    /// decoded (malformed ones too), with the endpoint's name. For capturing what a real apiserver
    /// sends (the golden fixtures); it runs on the event loop, so it must be quick.
    public typealias ReviewRecorder = @Sendable (_ endpoint: String, _ body: Data) -> Void

    private let configuration: Configuration
    private let handler: AdmissionHandler
    private let metrics: WebhookMetrics
    private let recorder: ReviewRecorder?
    private let group: any EventLoopGroup
    private let logger: Logger
    private let state = NIOLockedValueBox<(channel: Channel?, quiesce: ServerQuiescingHelper?)>((nil, nil))

    public init(
        configuration: Configuration, handler: AdmissionHandler, metrics: WebhookMetrics = WebhookMetrics(),
        recorder: ReviewRecorder? = nil, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "portcullis.webhook")
    ) {
        self.configuration = configuration
        self.handler = handler
        self.metrics = metrics
        self.recorder = recorder
        self.group = group
        self.logger = logger
    }

    /// Binds and starts serving; returns the bound port.
    @discardableResult
    public func start() async throws -> Int {
        let tls = try makeTLSContext()
        let quiesce = ServerQuiescingHelper(group: group)
        let handler = self.handler
        let metrics = self.metrics
        let recorder = self.recorder
        let logger = self.logger
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(quiesce.makeServerChannelHandler(channel: channel))
                }
            }
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(NIOSSLServerHandler(context: tls))
                    try sync.configureHTTPServerPipeline(withErrorHandling: true)
                    try sync.addHandler(
                        RequestSizeLimitHandler(maximumBodyBytes: AdmissionRequest.maximumBodyBytes, metrics: metrics))
                    // Still needed for chunked bodies, whose size is only known while reading them.
                    try sync.addHandler(
                        NIOHTTPServerRequestAggregator(maxContentLength: AdmissionRequest.maximumBodyBytes))
                    try sync.addHandler(
                        WebhookHTTPHandler(handler: handler, metrics: metrics, recorder: recorder, logger: logger))
                }
            }
            .childChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: configuration.host, port: configuration.port)
            .get()
        state.withLockedValue { $0 = (channel, quiesce) }
        let port = channel.localAddress?.port ?? configuration.port
        logger.info("webhook serving", metadata: ["address": "https://\(configuration.host):\(port)"])
        return port
    }

    /// Stops accepting connections, finishes the reviews in flight and closes the rest.
    public func shutdown() async throws {
        guard let quiesce = state.withLockedValue({ $0.quiesce }) else { return }
        let promise = group.next().makePromise(of: Void.self)
        quiesce.initiateShutdown(promise: promise)
        try await promise.futureResult.get()
        state.withLockedValue { $0 = (nil, nil) }
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
        return try NIOSSLContext(configuration: tls)
    }
}

/// Routes aggregated requests; one per connection.
final class WebhookHTTPHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = NIOHTTPServerRequestFull
    typealias OutboundOut = HTTPServerResponsePart

    private let handler: AdmissionHandler
    private let metrics: WebhookMetrics
    private let recorder: WebhookServer.ReviewRecorder?
    private let logger: Logger

    init(handler: AdmissionHandler, metrics: WebhookMetrics, recorder: WebhookServer.ReviewRecorder?, logger: Logger) {
        self.handler = handler
        self.metrics = metrics
        self.recorder = recorder
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let request = unwrapInboundIn(data)
        let path = request.head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? "/"
        let (status, contentType, body) = respond(to: request, path: path)
        var headers = HTTPHeaders([("content-type", contentType), ("content-length", String(body.count))])
        let keepAlive = request.head.isKeepAlive
        headers.add(name: "connection", value: keepAlive ? "keep-alive" : "close")
        let head = HTTPResponseHead(version: request.head.version, status: .init(statusCode: status), headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil)
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let context = NIOLoopBound(context, eventLoop: context.eventLoop)
            done.whenComplete { _ in context.value.close(promise: nil) }
        }
    }

    private func respond(to request: NIOHTTPServerRequestFull, path: String) -> (Int, String, Data) {
        switch (request.head.method, path) {
        case (.GET, "/healthz"), (.GET, "/readyz"):
            return (200, "text/plain", Data("ok".utf8))
        case (.GET, "/metrics"):
            return (200, "text/plain; version=0.0.4", Data(metrics.render().utf8))
        case (.POST, "/validate"), (.POST, "/mutate"):
            return review(request, endpoint: String(path.dropFirst()))
        case (_, "/validate"), (_, "/mutate"), (_, "/healthz"), (_, "/readyz"), (_, "/metrics"):
            return refuse(WebhookError(.methodNotAllowed, "\(request.head.method) is not allowed on \(path)"))
        default:
            return refuse(WebhookError(.notFound, "no such endpoint: \(path)"))
        }
    }

    private func review(_ request: NIOHTTPServerRequestFull, endpoint: String) -> (Int, String, Data) {
        let started = ContinuousClock.now
        let contentType = request.head.headers.first(name: "content-type") ?? ""
        guard contentType.lowercased().hasPrefix("application/json") else {
            return refuse(
                WebhookError(.unsupportedMediaType, "AdmissionReviews are application/json, not \"\(contentType)\""))
        }
        let body = request.body.map { Data($0.readableBytesView) } ?? Data()
        recorder?(endpoint, body)
        let admission: AdmissionRequest
        do {
            admission = try AdmissionRequest.decode(body)
        } catch {
            logger.warning("refused a malformed AdmissionReview", metadata: ["reason": "\(error.message)"])
            return refuse(error)
        }
        let response = endpoint == "mutate" ? handler.mutate(admission) : handler.validate(admission)
        let outcome = response.allowed ? (response.patch == nil ? "allowed" : "patched") : "denied"
        metrics.recordReview(endpoint: endpoint, outcome: outcome, duration: ContinuousClock.now - started)
        if !response.allowed {
            logger.info(
                "denied",
                metadata: [
                    "uid": "\(admission.uid)", "user": "\(admission.userInfo.username)",
                    "operation": "\(admission.operation)",
                    "resource":
                        "\(admission.resource.resource)\(admission.subResource.isEmpty ? "" : "/" + admission.subResource)",
                    "namespace": "\(admission.namespace)", "name": "\(admission.name)", "reason": "\(response.message)",
                ])
        }
        return (200, "application/json", response.encoded())
    }

    private func refuse(_ error: WebhookError) -> (Int, String, Data) {
        metrics.recordRefusal(status: error.httpStatus)
        return (error.httpStatus, "text/plain", Data((error.message + "\n").utf8))
    }
}
