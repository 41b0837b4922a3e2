import NIOCore
import NIOWebSocket

/// Serves a remote command over WebSocket: `v5.channel.k8s.io` (kubectl ≥ 1.30), `v4.channel.k8s.io`,
/// their base64 forms and the legacy v1 names (protocols.md §4).
public enum WebSocketRemoteCommandServer {
    /// Channel numbers (§4.2); the same for every version.
    public static let stdinChannel: UInt8 = 0
    public static let stdoutChannel: UInt8 = 1
    public static let stderrChannel: UInt8 = 2
    public static let errorChannel: UInt8 = 3
    public static let resizeChannel: UInt8 = 4

    /// Sets up the channel after the WebSocket upgrade and returns the session. Call on the event loop,
    /// from ``KubernetesWebSocket/serverUpgrader(maxFrameSize:supportedProtocols:onUpgrade:)``.
    ///
    /// Sends the "connected" marker first: an empty message on the lowest channel the client reads
    /// (stdout, else stderr, else error; §4.2). Stdin ends at a v5 CLOSE `[0xFF, 0x00]`, or with the
    /// connection for older protocols, which cannot half-close.
    public static func start(
        channel: any Channel, protocolName: String, options: RemoteCommandOptions
    ) throws
        -> RemoteCommandSession
    {
        let (protocolVersion, framing) = try protocolSemantics(protocolName)
        let handler = WebSocketChannelHandler(framing: framing, eventLoop: channel.eventLoop)
        let stdin = options.stdin ? handler.makeInput(channel: stdinChannel) : nil
        let resize = options.tty ? handler.makeInput(channel: resizeChannel) : nil
        try channel.pipeline.syncOperations.addHandlers([
            NIOWebSocketFrameAggregator(
                minNonFinalFragmentSize: 1, maxAccumulatedFrameCount: 1 << 12,
                maxAccumulatedFrameSize: KubernetesWebSocket.maxMessageSize),
            handler,
        ])
        let marker = options.stdout ? stdoutChannel : (options.stderr && !options.tty ? stderrChannel : errorChannel)
        _ = handler.send(channel: marker, payload: ByteBuffer())
        let transport = WebSocketRemoteCommandTransport(
            handler: NIOLoopBound(handler, eventLoop: channel.eventLoop), eventLoop: channel.eventLoop)
        return RemoteCommandSession(
            protocolVersion: protocolVersion, options: options, stdin: stdin?.endingAtReset(),
            resizes: TerminalSizeStream(bytes: resize?.endingAtReset()), transport: transport)
    }

    /// The status semantics and framing of a WebSocket subprotocol (§4.1).
    static func protocolSemantics(
        _ name: String
    ) throws(KubernetesStreamError) -> (
        RemoteCommandProtocol, WebSocketChannelFraming
    ) {
        switch name {
        case "v5.channel.k8s.io": return (.v5, WebSocketChannelFraming(base64: false, closeSignal: true))
        case "v4.channel.k8s.io": return (.v4, WebSocketChannelFraming(base64: false, closeSignal: false))
        case "v4.base64.channel.k8s.io": return (.v4, WebSocketChannelFraming(base64: true, closeSignal: false))
        case "channel.k8s.io", "": return (.v1, WebSocketChannelFraming(base64: false, closeSignal: false))
        case "base64.channel.k8s.io": return (.v1, WebSocketChannelFraming(base64: true, closeSignal: false))
        default: throw KubernetesStreamError(.unsupportedProtocol, "unknown WebSocket subprotocol \(name)")
        }
    }
}

/// Remote-command output over WebSocket channels, handed to the event loop through an
/// ``OutputWindow``.
struct WebSocketRemoteCommandTransport: RemoteCommandServerTransport {
    let handler: NIOLoopBound<WebSocketChannelHandler>
    let eventLoop: any EventLoop
    private let window = OutputWindow()

    init(handler: NIOLoopBound<WebSocketChannelHandler>, eventLoop: any EventLoop) {
        self.handler = handler
        self.eventLoop = eventLoop
    }

    func write(_ data: ByteBuffer, to streamType: RemoteCommandStreamType) async throws {
        guard data.readableBytes > 0 else { return }
        let channel =
            streamType == .stderr
            ? WebSocketRemoteCommandServer.stderrChannel : WebSocketRemoteCommandServer.stdoutChannel
        let handler = self.handler
        if try window.admit(data.readableBytes) {
            let window = self.window
            eventLoop.execute {
                handler.value.send(channel: channel, payload: data).whenFailure { _ in window.fail() }
            }
            return
        }
        try await eventLoop.flatSubmit { handler.value.send(channel: channel, payload: data) }.get()
    }

    func finish(status: RemoteCommandStatus, protocolVersion: RemoteCommandProtocol) async {
        let payload = status.errorStreamPayload(for: protocolVersion)
        let handler = self.handler
        _ = try? await eventLoop.flatSubmit { () -> EventLoopFuture<Void> in
            if payload.readableBytes > 0 {
                _ = handler.value.send(channel: WebSocketRemoteCommandServer.errorChannel, payload: payload)
            }
            return handler.value.close()
        }.get()
    }
}
