import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import NIOWebSocket
import SPDY

extension DownstreamConnection {
    /// Answers `101` for the port-forward tunnel (`SPDY/3.1+portforward.k8s.io`, protocols.md §5.3)
    /// and starts a server SPDY session inside the WebSocket.
    func acceptPortForwardTunnel(key: String) async throws -> SPDYSession {
        let context = self.context
        return try await channel.eventLoop.submit {
            try Self.switchProtocols(
                context.value,
                headers: Self.webSocketHeaders(key: key, protocolName: KubernetesWebSocket.portForwardTunnelProtocol)
            ) { sync in
                try Self.addWebSocketCodec(sync)
                return try SPDYWebSocketTunnel.configureServer(channel: context.value.channel)
            }
        }.get()
    }

    /// Answers `101` for legacy WebSocket port-forward (protocols.md §5.2; `protocolName` empty when
    /// the client offered none) and serves `ports` on it, one connection each.
    func acceptLegacyPortForward(
        key: String, protocolName: String, ports: [UInt16]
    ) async throws
        -> PortForwardSession
    {
        let context = self.context
        return try await channel.eventLoop.submit {
            try Self.switchProtocols(
                context.value, headers: Self.webSocketHeaders(key: key, protocolName: protocolName)
            ) { sync in
                try Self.addWebSocketCodec(sync)
            }
            // Only now: the server writes each channel's port prefix, which must not meet HTTP handlers.
            return try WebSocketPortForwardServer.start(
                channel: context.value.channel, protocolName: protocolName, ports: ports)
        }.get()
    }

    private static func webSocketHeaders(key: String, protocolName: String) -> HTTPHeaders {
        var hasher = Insecure.SHA1()
        hasher.update(data: Data((key + webSocketGUID).utf8))
        var headers = HTTPHeaders([
            ("Upgrade", "websocket"), ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", Data(hasher.finalize()).base64EncodedString()),
        ])
        if !protocolName.isEmpty { headers.add(name: "Sec-WebSocket-Protocol", value: protocolName) }
        return headers
    }

    private static func addWebSocketCodec(_ sync: ChannelPipeline.SynchronousOperations) throws {
        try sync.addHandler(WebSocketFrameEncoder(), position: .last)
        try sync.addHandler(
            ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: KubernetesWebSocket.defaultMaxFrameSize)),
            position: .last)
        try sync.addHandler(WebSocketProtocolErrorHandler(), position: .last)
    }
}
