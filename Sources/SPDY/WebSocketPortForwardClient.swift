import NIOCore
import NIOHTTP1
import NIOWebSocket

/// The client end of the legacy WebSocket port-forward (protocols.md §5.2): `GET …/portforward?ports=…`
/// with `v4.channel.k8s.io` or its base64 form. Every apiserver passes it through to the kubelet, which
/// serves it itself, so it is the WebSocket port-forward that works where the tunnel (§5.3,
/// ``PortForwardTunnelClient``) does not.
///
/// Each port requested gets exactly one connection, made by the server when the upgrade completes: data
/// on channel 2i, error text on channel 2i+1, each opened by the port as 2 little-endian bytes, which are
/// checked and stripped. There is no half-close and no per-connection abort; the server closes the
/// WebSocket once every connection is done.
public enum WebSocketPortForwardClient {
    /// Upgrades the connection and returns one forwarded connection per port.
    ///
    /// - Parameters:
    ///   - channel: a connected channel (TLS, if any, already in the pipeline) with nothing else on it.
    ///   - uri: e.g. `/api/v1/namespaces/ns/pods/p/portforward`; `ports=` is appended to its query.
    ///   - headers: must include `Host`, plus any credentials.
    ///   - ports: 1 to 127 ports, none 0.
    ///   - protocols: offered in this order; each one of ``WebSocketPortForwardServer/protocolVersions``.
    /// - Throws: ``WebSocketUpgradeRejection`` when the server refuses the upgrade (fall back to SPDY);
    ///   ``KubernetesStreamError`` for invalid ports or protocols. The channel is closed on failure.
    public static func connect(
        channel: any Channel,
        uri: String,
        headers: HTTPHeaders,
        ports: [UInt16],
        protocols: [String] = WebSocketPortForwardServer.protocolVersions,
        configuration: WebSocketClientConfiguration = WebSocketClientConfiguration()
    ) async throws -> WebSocketPortForwardClientSession {
        do {
            guard (1...127).contains(ports.count), !ports.contains(0) else {
                throw KubernetesStreamError(.invalidPort, "port-forward needs 1 to 127 ports in 1…65535")
            }
            guard !protocols.isEmpty, protocols.allSatisfy(WebSocketPortForwardServer.protocolVersions.contains)
            else {
                throw KubernetesStreamError(.unsupportedProtocol, "unknown port-forward subprotocol in \(protocols)")
            }
        } catch {
            try? await channel.close()
            throw error
        }
        let query = "ports=" + ports.map(String.init).joined(separator: ",")
        return try await WebSocketClientHandshake.upgrade(
            channel: channel, uri: uri + (uri.contains("?") ? "&" : "?") + query, headers: headers,
            protocols: protocols, maxFrameSize: configuration.maxFrameSize
        ) { channel, chosen in
            try configure(channel: channel, protocolName: chosen, ports: ports, configuration: configuration)
        }
    }

    /// Adds the channel handler after the WebSocket codec; on the event loop.
    static func configure(
        channel: any Channel, protocolName: String, ports: [UInt16], configuration: WebSocketClientConfiguration
    ) throws -> WebSocketPortForwardClientSession {
        let framing = WebSocketChannelFraming(base64: protocolName.contains("base64"), closeSignal: false)
        let handler = WebSocketChannelHandler(
            framing: framing, role: .client, eventLoop: channel.eventLoop, pingInterval: configuration.pingInterval,
            pongTimeout: configuration.pongTimeout)
        let bound = NIOLoopBound(handler, eventLoop: channel.eventLoop)
        let connections = ports.enumerated().map { index, port in
            let data = UInt8(index * 2)
            let transport = WebSocketPortForwardClientTransport(
                handler: bound, eventLoop: channel.eventLoop, dataChannel: data,
                errorStream: handler.makeInput(channel: data + 1, portPrefix: port))
            return PortForwardClientConnection(
                requestID: String(port), port: port, inbound: handler.makeInput(channel: data, portPrefix: port),
                transport: transport)
        }
        try channel.pipeline.syncOperations.addHandlers([
            NIOWebSocketFrameAggregator(
                minNonFinalFragmentSize: 1, maxAccumulatedFrameCount: 1 << 12,
                maxAccumulatedFrameSize: KubernetesWebSocket.maxMessageSize),
            handler,
        ])
        return WebSocketPortForwardClientSession(
            protocolName: protocolName, connections: connections,
            close: { _ = try? await channel.eventLoop.flatSubmit { bound.value.close() }.get() })
    }
}

/// A legacy WebSocket port-forward on the client end: one connection per port requested.
public final class WebSocketPortForwardClientSession: Sendable {
    /// The subprotocol the server chose.
    public let protocolName: String
    /// One per port, in the order requested; each ``PortForwardClientConnection/requestID`` is its port.
    public let connections: [PortForwardClientConnection]
    private let closer: @Sendable () async -> Void

    init(protocolName: String, connections: [PortForwardClientConnection], close: @escaping @Sendable () async -> Void)
    {
        self.protocolName = protocolName
        self.connections = connections
        self.closer = close
    }

    /// Closes the WebSocket (Close 1000), ending every connection.
    public func close() async {
        await closer()
    }
}

/// A forwarded connection over a legacy WebSocket channel pair, client end.
struct WebSocketPortForwardClientTransport: PortForwardClientConnectionTransport {
    let handler: NIOLoopBound<WebSocketChannelHandler>
    let eventLoop: any EventLoop
    let dataChannel: UInt8
    let errorStream: InboundByteStream

    func write(_ bytes: ByteBuffer) async throws {
        guard bytes.readableBytes > 0 else { return }
        let handler = self.handler
        let channel = dataChannel
        try await eventLoop.flatSubmit { handler.value.send(channel: channel, payload: bytes) }.get()
    }

    func closeWrite() async throws {
        throw KubernetesStreamError(.unsupportedProtocol, "legacy WebSocket port-forward cannot half-close")
    }

    func errorText(maxBytes: Int) async throws -> ByteBuffer {
        try await errorStream.endingAtReset().collect(upTo: maxBytes)
    }

    func reset() async {
        let handler = self.handler
        _ = try? await eventLoop.flatSubmit { handler.value.close() }.get()
    }
}
