import NIOCore
import NIOWebSocket

/// Turns a WebSocket into a plain byte stream: the payloads of binary messages in, binary messages out
/// (protocols.md §5.3). Message boundaries mean nothing here: client-go sends each SPDY frame field as
/// its own message.
///
/// It answers pings, echoes the peer's Close and closes, refuses text messages (Close 1003), never sends
/// an empty message, and turns a channel close into a Close 1000 first. On the client end (the side that
/// sent the upgrade request) every frame it sends is masked (RFC 6455 §5.3).
public final class WebSocketByteStreamHandler: ChannelDuplexHandler {
    public typealias InboundIn = WebSocketFrame
    public typealias InboundOut = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = WebSocketFrame

    private let role: SPDYRole
    private var closeSent = false

    /// - Parameter role: ``SPDYRole/client`` on the end that sent the upgrade request.
    public init(role: SPDYRole = .server) {
        self.role = role
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .binary, .continuation:
            let payload = frame.unmaskedData
            if payload.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(payload)) }
        case .ping:
            context.writeAndFlush(wrapOutboundOut(self.frame(.pong, frame.unmaskedData)), promise: nil)
        case .connectionClose:
            sendClose(context: context, code: .normalClosure)
            context.close(promise: nil)
        case .text:
            sendClose(context: context, code: .unacceptableData)
            context.close(promise: nil)
        default:
            break
        }
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let bytes = unwrapOutboundIn(data)
        guard bytes.readableBytes > 0, !closeSent else {
            promise?.succeed()
            return
        }
        context.write(wrapOutboundOut(frame(.binary, bytes)), promise: promise)
    }

    public func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if mode == .all { sendClose(context: context, code: .normalClosure) }
        context.close(mode: mode, promise: promise)
    }

    private func sendClose(context: ChannelHandlerContext, code: WebSocketErrorCode) {
        guard !closeSent, context.channel.isActive else { return }
        closeSent = true
        var payload = context.channel.allocator.buffer(capacity: 2)
        payload.write(webSocketErrorCode: code)
        context.writeAndFlush(wrapOutboundOut(frame(.connectionClose, payload)), promise: nil)
    }

    /// A final frame, masked when we are the client (the encoder applies the key).
    private func frame(_ opcode: WebSocketOpcode, _ data: ByteBuffer) -> WebSocketFrame {
        WebSocketFrame(fin: true, opcode: opcode, maskKey: role == .client ? .random() : nil, data: data)
    }
}

/// Runs a SPDY session inside a WebSocket: the `SPDY/3.1+portforward.k8s.io` tunnel of kubectl ≥ 1.31
/// (protocols.md §5.3). kubectl is the SPDY client; this is the server.
public enum SPDYWebSocketTunnel {
    /// Adds the byte-stream adapter and the SPDY handlers after the WebSocket codec. Call on the event
    /// loop, from ``KubernetesWebSocket/serverUpgrader(maxFrameSize:supportedProtocols:onUpgrade:)``.
    /// Serve the session with ``PortForwardSPDYServer/accept(session:pairTimeout:)``.
    public static func configureServer(
        channel: any Channel, configuration: SPDYSessionConfiguration = SPDYSessionConfiguration(role: .server)
    ) throws -> SPDYSession {
        var configuration = configuration
        configuration.role = .server
        let pipeline = channel.pipeline.syncOperations
        try pipeline.addHandler(WebSocketByteStreamHandler())
        return try pipeline.addSPDYSessionHandlers(configuration: configuration)
    }

    /// The client end: adds the byte-stream adapter (masking every frame) and the client SPDY handlers
    /// after the WebSocket codec. Call on the event loop once the upgrade is done;
    /// ``PortForwardTunnelClient/connect(channel:uri:headers:maxFrameSize:configuration:)``
    /// does the whole exchange.
    public static func configureClient(
        channel: any Channel,
        configuration: SPDYSessionConfiguration = SPDYSessionConfiguration(role: .client, pingInterval: .seconds(5))
    ) throws -> SPDYSession {
        var configuration = configuration
        configuration.role = .client
        let pipeline = channel.pipeline.syncOperations
        try pipeline.addHandler(WebSocketByteStreamHandler(role: .client))
        return try pipeline.addSPDYSessionHandlers(configuration: configuration)
    }
}
