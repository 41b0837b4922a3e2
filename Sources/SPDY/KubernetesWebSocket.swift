import NIOCore
import NIOHTTP1
import NIOWebSocket

/// The WebSocket side of the Kubernetes stream protocols (protocols.md §4, §5.2, §5.3).
public enum KubernetesWebSocket {
    /// The port-forward tunnel: binary messages carry a raw SPDY byte stream (§5.3).
    public static let portForwardTunnelProtocol = "SPDY/3.1+portforward.k8s.io"
    /// Remote command over WebSocket, newest first (§4.1). kubectl offers only `v5.channel.k8s.io`.
    public static let remoteCommandProtocols = [
        "v5.channel.k8s.io", "v4.channel.k8s.io", "v4.base64.channel.k8s.io", "channel.k8s.io",
        "base64.channel.k8s.io",
    ]
    /// The largest frame accepted: client-go writes frames of about 33 KiB, well over NIO's 16 KiB default.
    public static let defaultMaxFrameSize = 1 << 20
    /// The largest message reassembled from fragments.
    public static let maxMessageSize = 1 << 20

    /// The first protocol offered in `Sec-WebSocket-Protocol` (several headers or comma lists, client
    /// order) that `supported` contains.
    public static func negotiate(_ headers: HTTPHeaders, supported: [String]) -> String? {
        let offered = headers["Sec-WebSocket-Protocol"].flatMap { $0.split(separator: ",") }.map {
            $0.trimmingWhitespace()
        }
        return offered.first { supported.contains($0) }
    }

    /// A WebSocket upgrader for NIO's `HTTPServerUpgradeHandler` that chooses the subprotocol itself.
    ///
    /// A request offering none of `supportedProtocols(request)` is not upgraded, so the HTTP handler can
    /// answer it (400 or 403); kubectl then falls back to SPDY (§4.6). Remove your HTTP handler in the
    /// upgrade completion handler: NIO adds the WebSocket codec at the end of the pipeline.
    ///
    /// - Parameters:
    ///   - supportedProtocols: what to accept for a request (it depends on the path: exec or portforward).
    ///   - onUpgrade: called on the event loop once the codec is in place, with the chosen subprotocol;
    ///     set up ``WebSocketRemoteCommandServer`` or ``SPDYWebSocketTunnel`` there.
    public static func serverUpgrader(
        maxFrameSize: Int = defaultMaxFrameSize,
        supportedProtocols: @escaping @Sendable (HTTPRequestHead) -> [String],
        onUpgrade:
            @escaping @Sendable (_ channel: any Channel, _ protocolName: String, _ request: HTTPRequestHead) throws
            -> Void
    ) -> NIOWebSocketServerUpgrader {
        NIOWebSocketServerUpgrader(
            maxFrameSize: maxFrameSize,
            automaticErrorHandling: true,
            shouldUpgrade: { channel, request in
                guard let chosen = negotiate(request.headers, supported: supportedProtocols(request)) else {
                    return channel.eventLoop.makeSucceededFuture(nil)
                }
                return channel.eventLoop.makeSucceededFuture(HTTPHeaders([("Sec-WebSocket-Protocol", chosen)]))
            },
            upgradePipelineHandler: { channel, request in
                channel.eventLoop.makeCompletedFuture {
                    guard let chosen = negotiate(request.headers, supported: supportedProtocols(request)) else {
                        throw SPDYError(.noCommonProtocolVersion, "no supported WebSocket subprotocol")
                    }
                    try onUpgrade(channel, chosen, request)
                }
            })
    }
}

extension Substring {
    fileprivate func trimmingWhitespace() -> String {
        var slice = self
        while let first = slice.first, first == " " || first == "\t" { slice.removeFirst() }
        while let last = slice.last, last == " " || last == "\t" { slice.removeLast() }
        return String(slice)
    }
}
