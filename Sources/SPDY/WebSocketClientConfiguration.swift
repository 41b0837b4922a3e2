import NIOCore

/// The settings of the client end of a Kubernetes WebSocket (protocols.md §4.5, §4.6, §7.3).
public struct WebSocketClientConfiguration: Sendable {
    /// client-go pings every 5 s.
    public static let defaultPingInterval: TimeAmount = .seconds(5)
    /// client-go gives up 12 ping periods plus 1 s after the last pong: 61 s.
    public static let defaultPongTimeout: TimeAmount = .seconds(61)

    /// The largest incoming frame; a larger one closes the connection (Close 1009). Servers send frames
    /// of about 33 KiB, twice NIO's 16 KiB default.
    public var maxFrameSize: Int
    /// How often to ping the server; `nil` sends no pings and never gives up for want of pongs.
    public var pingInterval: TimeAmount?
    /// How long after the last pong (or the upgrade) the connection is given up while pinging.
    public var pongTimeout: TimeAmount

    public init(
        maxFrameSize: Int = KubernetesWebSocket.defaultMaxFrameSize,
        pingInterval: TimeAmount? = WebSocketClientConfiguration.defaultPingInterval,
        pongTimeout: TimeAmount = WebSocketClientConfiguration.defaultPongTimeout
    ) {
        self.maxFrameSize = maxFrameSize
        self.pingInterval = pingInterval
        self.pongTimeout = pongTimeout
    }
}
