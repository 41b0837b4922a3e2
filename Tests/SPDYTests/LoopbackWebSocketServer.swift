import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import SPDY

/// A WebSocket server on 127.0.0.1 built from the module's server side: remote command over the
/// subprotocols in `supported`, legacy port-forward (a `/portforward` path) over those of them it
/// knows, and the port-forward tunnel if listed there. A request it does not
/// upgrade is answered like the Go servers do: `refusal` (by default 403 with an empty body, the 1.20
/// kubelet's answer to an unknown subprotocol).
final class LoopbackWebSocketServer: Sendable {
    enum Upgraded: Sendable {
        case remoteCommand(RemoteCommandSession)
        case portForward(PortForwardSession)
    }

    let channel: any Channel
    let group: MultiThreadedEventLoopGroup
    let sessions: AsyncStream<Upgraded>

    var port: Int { channel.localAddress!.port! }

    init(
        supported: [String],
        refusal: (status: HTTPResponseStatus, body: String) = (.forbidden, "")
    ) async throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let (sessions, continuation) = AsyncStream<Upgraded>.makeStream()
        self.sessions = sessions
        channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let upgrader = KubernetesWebSocket.serverUpgrader(supportedProtocols: { _ in supported }) {
                        channel, chosen, request in
                        if chosen == KubernetesWebSocket.portForwardTunnelProtocol {
                            let session = try SPDYWebSocketTunnel.configureServer(channel: channel)
                            continuation.yield(.portForward(PortForwardSPDYServer.accept(session: session)))
                        } else if request.uri.contains("/portforward") {
                            let ports = WebSocketPortForwardServer.ports(
                                queryItems: LoopbackWebSocketServer.queryItems(request.uri))
                            continuation.yield(
                                .portForward(
                                    try WebSocketPortForwardServer.start(
                                        channel: channel, protocolName: chosen, ports: ports ?? [])))
                        } else {
                            let options = RemoteCommandOptions(
                                queryItems: LoopbackWebSocketServer.queryItems(request.uri))
                            continuation.yield(
                                .remoteCommand(
                                    try WebSocketRemoteCommandServer.start(
                                        channel: channel, protocolName: chosen, options: options)))
                        }
                    }
                    let refusing = RefusingWebSocketHandler(status: refusal.status, body: refusal.body)
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                        withServerUpgrade: (
                            upgraders: [upgrader],
                            completionHandler: { context in
                                context.pipeline.syncOperations.removeHandler(refusing, promise: nil)
                            }
                        ))
                    try channel.pipeline.syncOperations.addHandler(refusing)
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    func shutdown() async throws {
        try await channel.close()
        try await group.shutdownGracefully()
    }

    /// A new connection to the server; `receiveBuffer` sets its SO_RCVBUF (a slow reader's small window).
    func connect(receiveBuffer: Int? = nil) async throws -> any Channel {
        var bootstrap = ClientBootstrap(group: group)
        if let receiveBuffer {
            bootstrap = bootstrap.channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(receiveBuffer))
        }
        return try await bootstrap.connect(host: "127.0.0.1", port: port).get()
    }

    /// Starts a remote command over WebSocket against this server.
    func exec(
        _ options: RemoteCommandOptions, protocols: [String] = RemoteCommandWebSocketClient.defaultProtocols,
        configuration: WebSocketClientConfiguration = WebSocketClientConfiguration(), receiveBuffer: Int? = nil
    ) async throws -> RemoteCommandClientSession {
        let query = options.canonicalQueryItems.map { "\($0.name)=\($0.value)" }.joined(separator: "&")
        return try await RemoteCommandWebSocketClient.start(
            channel: try await connect(receiveBuffer: receiveBuffer), uri: "/exec?command=sh&" + query,
            headers: ["Host": "127.0.0.1"],
            options: options, protocols: protocols, configuration: configuration)
    }

    /// The next upgraded port-forward.
    func nextPortForward() async throws -> PortForwardSession {
        guard case .portForward(let session) = try await sessions.next() else {
            throw SPDYError(.invalidState, "expected a port-forward")
        }
        return session
    }

    /// The next upgraded remote command.
    func nextRemoteCommand() async throws -> RemoteCommandSession {
        guard case .remoteCommand(let session) = try await sessions.next() else {
            throw SPDYError(.invalidState, "expected a remote command")
        }
        return session
    }

    static func queryItems(_ uri: String) -> [(name: String, value: String)] {
        let query = uri.split(separator: "?", maxSplits: 1).dropFirst().first ?? ""
        return query.split(separator: "&").map { pair in
            let fields = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return (name: String(fields[0]), value: fields.count > 1 ? String(fields[1]) : "")
        }
    }
}

/// Answers every request that was not upgraded with a fixed status and body.
final class RefusingWebSocketHandler: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let status: HTTPResponseStatus
    let body: String

    init(status: HTTPResponseStatus, body: String) {
        self.status = status
        self.body = body
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head = unwrapInboundIn(data) else { return }
        let headers = HTTPHeaders([("Content-Length", String(body.utf8.count))])
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {}
}

/// Answers the first request on a connection with fixed bytes, whatever it asked: for 101 answers that
/// a real server would never send. An empty response closes the connection instead.
final class CannedHTTPServer: Sendable {
    let channel: any Channel
    let group: MultiThreadedEventLoopGroup

    var port: Int { channel.localAddress!.port! }

    init(response: String) async throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        channel = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(CannedResponder(response: response))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    func connect() async throws -> any Channel {
        try await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: port).get()
    }

    func shutdown() async throws {
        try await channel.close()
        try await group.shutdownGracefully()
    }

    private final class CannedResponder: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        let response: String
        var request = ""
        var answered = false

        init(response: String) { self.response = response }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            request += String(buffer: unwrapInboundIn(data))
            guard !answered, request.contains("\r\n\r\n") else { return }
            answered = true
            if response.isEmpty {
                context.close(promise: nil)
            } else {
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: response)), promise: nil)
            }
        }
    }
}
