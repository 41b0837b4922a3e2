import NIOCore
import NIOHTTP1
import NIOPosix
import SPDY

/// A SPDY server on 127.0.0.1 built from the module's upgrader, handing every upgraded session to
/// the test, plus a client that connects and upgrades.
final class LoopbackSPDYServer: Sendable {
    let channel: any Channel
    let sessions: AsyncStream<(SPDYSession, String)>
    let group: MultiThreadedEventLoopGroup

    var port: Int { channel.localAddress!.port! }

    init(
        protocolVersions: [String] = ["v4.channel.k8s.io", "v3.channel.k8s.io"],
        configuration: SPDYSessionConfiguration = SPDYSessionConfiguration(role: .server)
    ) async throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let (sessions, continuation) = AsyncStream<(SPDYSession, String)>.makeStream()
        self.sessions = sessions
        channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let upgrader = SPDYServerUpgrader(protocolVersions: protocolVersions, configuration: configuration)
                    {
                        session, version, _ in continuation.yield((session, version))
                    }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                        withServerUpgrade: (upgraders: [upgrader], completionHandler: { _ in }))
                    try channel.pipeline.syncOperations.addHandler(RefusingHTTPHandler(supported: protocolVersions))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    func shutdown() async throws {
        try await channel.close()
        try await group.shutdownGracefully()
    }

    /// Connects and upgrades.
    func connect(
        uri: String = "/exec", protocolVersions: [String] = ["v5.channel.k8s.io", "v4.channel.k8s.io"],
        configuration: SPDYSessionConfiguration = SPDYSessionConfiguration(role: .client)
    ) async throws -> SPDYClientUpgradeResult {
        let client = try await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: port).get()
        return try await SPDYClientHandshake.upgrade(
            channel: client, uri: uri, headers: ["Host": "127.0.0.1"], protocolVersions: protocolVersions,
            configuration: configuration)
    }
}

/// Answers requests that were not upgraded the way the Go server does.
final class RefusingHTTPHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let supported: [String]

    init(supported: [String]) { self.supported = supported }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let head) = unwrapInboundIn(data) else { return }
        var status = HTTPResponseStatus.badRequest
        var headers = HTTPHeaders()
        do {
            _ = try SPDYHandshake.negotiate(head.headers, supported: supported)
        } catch {
            (status, headers) = SPDYHandshake.rejection(for: error, supported: supported)
        }
        headers.add(name: "Content-Length", value: "7")
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "refused")))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {}
}

extension SPDYClientUpgradeResult {
    var session: SPDYSession? {
        if case .upgraded(let session, _) = self { return session }
        return nil
    }
}

extension AsyncStream {
    /// The next element, or a failure if the stream ended.
    func next() async throws -> Element {
        var iterator = makeAsyncIterator()
        guard let element = await iterator.next() else { throw SPDYError(.sessionClosed, "stream ended") }
        return element
    }
}
