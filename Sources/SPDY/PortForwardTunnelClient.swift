import NIOCore
import NIOHTTP1

/// The client end of the port-forward tunnel, `SPDY/3.1+portforward.k8s.io` (protocols.md §5.3): a
/// SPDY session carried in binary WebSocket messages, served by apiservers from 1.31.
///
/// It returns the same ``PortForwardClientSession`` as a SPDY upgrade, so a caller drives either
/// transport through one API. Try this first and, on a ``WebSocketUpgradeRejection``, rerun the request
/// as a SPDY POST on a new connection, as kubectl does (§0, §4.6).
public enum PortForwardTunnelClient {
    /// Upgrades the connection to the tunnel and starts a client SPDY session inside it.
    ///
    /// - Parameters:
    ///   - channel: a connected channel (TLS, if any, already in the pipeline) with nothing else on it.
    ///   - uri: e.g. `/api/v1/namespaces/ns/pods/p/portforward`.
    ///   - headers: must include `Host`, plus any credentials.
    ///   - maxFrameSize: the largest incoming WebSocket frame; SPDY DATA frames of 32 KiB arrive one per
    ///     message.
    ///   - configuration: the tunnelled SPDY session's; its role is forced to client.
    /// - Throws: ``WebSocketUpgradeRejection`` when the server refuses the upgrade (fall back to SPDY).
    ///   The channel is closed on failure.
    public static func connect(
        channel: any Channel,
        uri: String,
        headers: HTTPHeaders,
        maxFrameSize: Int = KubernetesWebSocket.defaultMaxFrameSize,
        configuration: SPDYSessionConfiguration = SPDYSessionConfiguration(role: .client, pingInterval: .seconds(5))
    ) async throws -> PortForwardClientSession {
        let session = try await WebSocketClientHandshake.upgrade(
            channel: channel, uri: uri, headers: headers, protocols: [KubernetesWebSocket.portForwardTunnelProtocol],
            maxFrameSize: maxFrameSize
        ) { channel, _ in
            try SPDYWebSocketTunnel.configureClient(channel: channel, configuration: configuration)
        }
        return PortForwardClientSession(session: session)
    }
}
