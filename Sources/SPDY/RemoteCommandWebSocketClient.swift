import NIOCore
import NIOHTTP1
import NIOWebSocket

/// Starts a remote command over WebSocket (protocols.md §4): the client end of `v5.channel.k8s.io`,
/// which apiservers from 1.30 translate to SPDY toward the kubelet, and of `v4.channel.k8s.io` and the
/// legacy names, which every apiserver passes through to the kubelet's own WebSocket server.
///
/// It returns the same ``RemoteCommandClientSession`` as ``RemoteCommandSPDYClient``, so a caller
/// drives either transport through one API. Try this first and, on a ``WebSocketUpgradeRejection``,
/// rerun the request as a SPDY POST on a new connection, as client-go's fallback executor does (§4.6).
public enum RemoteCommandWebSocketClient {
    /// What client-go offers: `v5.channel.k8s.io` only, the one version that can close stdin (§4.3).
    public static let defaultProtocols = [RemoteCommandProtocol.v5.rawValue]

    /// Upgrades the connection and sets up the channels the options call for.
    ///
    /// The server's "connected" marker (an empty message, §4.2) is dropped. Stdout and stderr end at the
    /// server's Close; ``RemoteCommandClientSession/status()`` reads channel 3 to that Close (1000 is a
    /// clean end, anything else an abort, §4.4). ``RemoteCommandClientSession/closeStdin()`` sends
    /// `[0xFF, 0x00]` with v5 and throws ``KubernetesStreamError/Kind/unsupportedProtocol`` before v5,
    /// which cannot signal stdin EOF (§4.3). Server pings are answered, and the client pings as the
    /// configuration says (§4.5).
    ///
    /// - Parameters:
    ///   - channel: a connected channel (TLS, if any, already in the pipeline) with nothing else on it.
    ///   - uri: e.g. `/api/v1/namespaces/ns/pods/p/exec?command=sh&stdin=true&stdout=true`; the query's
    ///     flags must match `options`.
    ///   - headers: must include `Host`, plus any credentials.
    ///   - protocols: offered in this order; each must be one of ``KubernetesWebSocket/remoteCommandProtocols``.
    /// - Throws: ``WebSocketUpgradeRejection`` when the server refuses the upgrade (fall back to SPDY);
    ///   ``KubernetesStreamError`` for invalid options or protocols. The channel is closed on failure.
    public static func start(
        channel: any Channel,
        uri: String,
        headers: HTTPHeaders,
        options: RemoteCommandOptions,
        protocols: [String] = defaultProtocols,
        configuration: WebSocketClientConfiguration = WebSocketClientConfiguration()
    ) async throws -> RemoteCommandClientSession {
        do {
            guard options.isValid else {
                throw KubernetesStreamError(.invalidOptions, "you must specify at least 1 of stdin, stdout, stderr")
            }
            guard !protocols.isEmpty else {
                throw KubernetesStreamError(.unsupportedProtocol, "no WebSocket subprotocol to offer")
            }
            for name in protocols { _ = try WebSocketRemoteCommandServer.protocolSemantics(name) }
        } catch {
            try? await channel.close()
            throw error
        }
        return try await WebSocketClientHandshake.upgrade(
            channel: channel, uri: uri, headers: headers, protocols: protocols,
            maxFrameSize: configuration.maxFrameSize
        ) { channel, chosen in
            try configure(channel: channel, protocolName: chosen, options: options, configuration: configuration)
        }
    }

    /// Adds the channel handlers after the WebSocket codec; on the event loop.
    static func configure(
        channel: any Channel, protocolName: String, options: RemoteCommandOptions,
        configuration: WebSocketClientConfiguration
    ) throws -> RemoteCommandClientSession {
        let (protocolVersion, framing) = try WebSocketRemoteCommandServer.protocolSemantics(protocolName)
        let handler = WebSocketChannelHandler(
            framing: framing, role: .client, eventLoop: channel.eventLoop, pingInterval: configuration.pingInterval,
            pongTimeout: configuration.pongTimeout)
        let stdout = options.stdout ? handler.makeInput(channel: WebSocketRemoteCommandServer.stdoutChannel) : nil
        let stderr =
            options.stderr && !options.tty
            ? handler.makeInput(channel: WebSocketRemoteCommandServer.stderrChannel) : nil
        let errorStream = handler.makeInput(channel: WebSocketRemoteCommandServer.errorChannel)
        try channel.pipeline.syncOperations.addHandlers([
            NIOWebSocketFrameAggregator(
                minNonFinalFragmentSize: 1, maxAccumulatedFrameCount: 1 << 12,
                maxAccumulatedFrameSize: KubernetesWebSocket.maxMessageSize),
            handler,
        ])
        let transport = WebSocketRemoteCommandClientTransport(
            handler: NIOLoopBound(handler, eventLoop: channel.eventLoop), eventLoop: channel.eventLoop,
            errorStream: errorStream, protocolVersion: protocolVersion, canCloseStdin: framing.closeSignal)
        return RemoteCommandClientSession(
            protocolVersion: protocolVersion, options: options, stdout: stdout?.endingAtReset(),
            stderr: stderr?.endingAtReset(), transport: transport)
    }
}

/// Client remote-command I/O over WebSocket channels (protocols.md §4.2, §4.3).
struct WebSocketRemoteCommandClientTransport: RemoteCommandClientTransport {
    let handler: NIOLoopBound<WebSocketChannelHandler>
    let eventLoop: any EventLoop
    let errorStream: InboundByteStream
    let protocolVersion: RemoteCommandProtocol
    /// v5: `[0xFF, channel]` half-closes a channel.
    let canCloseStdin: Bool

    func writeStdin(_ data: ByteBuffer) async throws {
        // An empty message would mean nothing to the server; client-go never sends one.
        guard data.readableBytes > 0 else { return }
        try await send(channel: WebSocketRemoteCommandServer.stdinChannel, data)
    }

    func closeStdin() async throws {
        guard canCloseStdin else {
            throw KubernetesStreamError(
                .unsupportedProtocol, "\(protocolVersion) over WebSocket cannot signal stdin EOF; v5 can")
        }
        try await send(
            channel: WebSocketChannelFraming.closeChannel,
            ByteBuffer(bytes: [WebSocketRemoteCommandServer.stdinChannel]))
    }

    func sendResize(_ size: TerminalSize) async throws {
        try await send(channel: WebSocketRemoteCommandServer.resizeChannel, ByteBuffer(string: size.json))
    }

    func readErrorStream(maxBytes: Int) async throws -> (ByteBuffer, endedCleanly: Bool) {
        try await RemoteCommandClientSession.collectErrorStream(errorStream, maxBytes: maxBytes)
    }

    func close() async {
        let handler = self.handler
        _ = try? await eventLoop.flatSubmit { handler.value.close() }.get()
    }

    private func send(channel: UInt8, _ payload: ByteBuffer) async throws {
        let handler = self.handler
        try await eventLoop.flatSubmit { handler.value.send(channel: channel, payload: payload) }.get()
    }
}
