import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// `/healthz`, `/readyz` and `/metrics` on a port of their own: the proxy's main port serves the
/// Kubernetes API, where `/healthz` belongs to the apiserver behind it. Plain HTTP, meant for the
/// kubelet's probes and a Prometheus scraper (bind it to a pod-internal address).
public final class ManagementServer: Sendable {
    private let host: String
    private let port: Int
    private let metrics: ProxyMetrics
    private let ready: @Sendable () -> Bool
    private let group: any EventLoopGroup
    private let channel = NIOLockedValueBox<Channel?>(nil)

    public init(
        host: String, port: Int, metrics: ProxyMetrics, ready: @escaping @Sendable () -> Bool,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.host = host
        self.port = port
        self.metrics = metrics
        self.ready = ready
        self.group = group
    }

    @discardableResult
    public func start() async throws -> Int {
        let metrics = self.metrics
        let ready = self.ready
        let bound = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(ManagementHandler(metrics: metrics, ready: ready))
                }
            }
            .bind(host: host, port: port).get()
        channel.withLockedValue { $0 = bound }
        return bound.localAddress?.port ?? port
    }

    public func shutdown() async throws {
        try await channel.withLockedValue { $0 }?.close()
    }
}

private final class ManagementHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let metrics: ProxyMetrics
    private let ready: @Sendable () -> Bool
    private var path = ""

    init(metrics: ProxyMetrics, ready: @escaping @Sendable () -> Bool) {
        self.metrics = metrics
        self.ready = ready
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            path = String(head.uri.prefix { $0 != "?" })
        case .body:
            break
        case .end:
            let (status, body): (HTTPResponseStatus, String) =
                switch path {
                case "/healthz": (.ok, "ok")
                case "/readyz": ready() ? (.ok, "ok") : (.serviceUnavailable, "not ready")
                case "/metrics": (.ok, metrics.render())
                default: (.notFound, "not found")
                }
            let headers = HTTPHeaders([("Content-Type", "text/plain"), ("Content-Length", String(body.utf8.count))])
            context.write(
                wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))),
                promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}
