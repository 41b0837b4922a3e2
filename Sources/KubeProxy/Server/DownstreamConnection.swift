import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import NIOWebSocket
import SPDY

/// The client connection of an authorized exec or attach, while the upstream side is set up: it
/// is refused with an HTTP response (passing on the apiserver's refusal), or switched to SPDY or
/// WebSocket. Every method hops to the connection's event loop; this is the only NIO wiring the
/// stream interception needs on the client side.
struct DownstreamConnection: Sendable {
    let channel: any Channel
    let context: NIOLoopBound<ChannelHandlerContext>

    /// `context` is the ``ProxyConnectionHandler``'s, which is removed with the HTTP handlers.
    init(context: ChannelHandlerContext) {
        self.channel = context.channel
        self.context = NIOLoopBound(context, eventLoop: context.eventLoop)
    }

    /// Answers with `head` and `body`, then closes the connection.
    func refuse(_ head: HTTPResponseHead, body: ByteBuffer) async {
        let context = self.context
        try? await channel.eventLoop.flatSubmit { () -> EventLoopFuture<Void> in
            var head = head
            head.headers = ForwardedHeaders.downstream(from: head.headers, warnings: [], dropContentLength: true)
            head.headers.replaceOrAdd(name: "Content-Length", value: String(body.readableBytes))
            head.headers.replaceOrAdd(name: "Connection", value: "close")
            let context = context.value
            let channel = context.channel
            context.write(NIOAny(HTTPServerResponsePart.head(head)), promise: nil)
            if body.readableBytes > 0 {
                context.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(body))), promise: nil)
            }
            return context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil))).always { _ in
                channel.close(promise: nil)
            }
        }.get()
    }

    /// Answers with a Kubernetes `Status`, then closes the connection.
    func refuse(_ status: KubernetesStatus) async {
        let body = ByteBuffer(bytes: status.json)
        let head = HTTPResponseHead(
            version: .http1_1, status: .init(statusCode: status.code),
            headers: HTTPHeaders([("Content-Type", "application/json")]))
        await refuse(head, body: body)
    }

    /// Answers `101` for SPDY with the chosen subprotocol and turns the connection into a server
    /// SPDY session (protocols.md §2). Nothing is written after the 101 until the client speaks.
    func acceptSPDY(protocolVersion: String) async throws -> SPDYSession {
        let context = self.context
        return try await channel.eventLoop.submit {
            let headers = HTTPHeaders([
                ("Connection", "Upgrade"), ("Upgrade", SPDYHandshake.upgradeToken),
                (SPDYHandshake.protocolVersionHeader, protocolVersion),
            ])
            return try Self.switchProtocols(context.value, headers: headers) { sync in
                try sync.addSPDYSessionHandlers(configuration: SPDYSessionConfiguration(role: .server), position: .last)
            }
        }.get()
    }

    /// Answers `101` for WebSocket with `protocolName` and starts the remote-command server on it
    /// (protocols.md §4): pings answered, the "connected" marker sent.
    func acceptWebSocket(
        key: String, protocolName: String, options: RemoteCommandOptions
    ) async throws -> RemoteCommandSession {
        let context = self.context
        return try await channel.eventLoop.submit {
            var hasher = Insecure.SHA1()
            hasher.update(data: Data((key + Self.webSocketGUID).utf8))
            let accept = Data(hasher.finalize()).base64EncodedString()
            let headers = HTTPHeaders([
                ("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", accept),
                ("Sec-WebSocket-Protocol", protocolName),
            ])
            try Self.switchProtocols(context.value, headers: headers) { sync in
                try sync.addHandler(WebSocketFrameEncoder(), position: .last)
                try sync.addHandler(
                    ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: KubernetesWebSocket.defaultMaxFrameSize)),
                    position: .last)
                try sync.addHandler(WebSocketProtocolErrorHandler(), position: .last)
            }
            // Only now: the session writes its "connected" marker, which must not meet HTTP handlers.
            return try WebSocketRemoteCommandServer.start(
                channel: context.value.channel, protocolName: protocolName, options: options)
        }.get()
    }

    /// RFC 6455 §1.3.
    static let webSocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    /// Writes the 101, adds the new protocol's handlers after the HTTP ones, then removes those
    /// (the HTTP decoder hands bytes it still holds to the new decoder), all in one event-loop turn.
    /// `install` must not write: the HTTP handlers are still there while it runs.
    static func switchProtocols<Result>(
        _ context: ChannelHandlerContext, headers: HTTPHeaders,
        install: (ChannelPipeline.SynchronousOperations) throws -> Result
    ) throws -> Result {
        let channel = context.channel
        guard channel.isActive else { throw ChannelError.ioOnClosedChannel }
        let head = HTTPResponseHead(version: .http1_1, status: .switchingProtocols, headers: headers)
        context.writeAndFlush(NIOAny(HTTPServerResponsePart.head(head)), promise: nil)
        let sync = channel.pipeline.syncOperations
        let result = try install(sync)
        for name in ProxyServer.httpHandlerNames.reversed() {
            sync.removeHandler(name: name).whenFailure { _ in channel.close(promise: nil) }
        }
        return result
    }
}
