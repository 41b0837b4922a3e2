import NIOCore
import NIOHTTP1

/// A WebSocket upgrade the server did not grant: what client-go calls an upgrade failure
/// (`httpstream.IsUpgradeFailure`). kubectl then reruns the same request as a SPDY POST on a new
/// connection, before any data has flowed (protocols.md §4.6); a proxy re-originating a stream upstream
/// does the same.
///
/// An apiserver older than 1.29 passes the upgrade through to the kubelet, whose WebSocket server knows
/// neither `v5.channel.k8s.io` nor the port-forward tunnel: measured with 1.20, it answers an exec offering
/// only v5 with 403 and an empty body, and a tunnel request with 400 `query parameter "port" is required`
/// (it takes every WebSocket port-forward for the legacy protocol, §5.2).
public struct WebSocketUpgradeRejection: Error, Sendable, CustomStringConvertible {
    /// Why the upgrade failed. Compare with the static members.
    public struct Reason: Hashable, Sendable, CustomStringConvertible {
        enum Code: String, Hashable, Sendable {
            case status, notWebSocket, subprotocolMismatch, invalidAccept
        }

        let code: Code

        /// The server answered something other than 101 (400, 403, …); ``WebSocketUpgradeRejection/body``
        /// often holds a Kubernetes `Status`.
        public static let status = Reason(code: .status)
        /// A 101 whose `Upgrade` header does not name `websocket`.
        public static let notWebSocket = Reason(code: .notWebSocket)
        /// A 101 naming none of the offered subprotocols, or none at all: client-go counts it as an
        /// upgrade failure too (§4.6).
        public static let subprotocolMismatch = Reason(code: .subprotocolMismatch)
        /// A 101 whose `Sec-WebSocket-Accept` does not match the key sent (RFC 6455 §4.1).
        public static let invalidAccept = Reason(code: .invalidAccept)

        public var description: String { code.rawValue }
    }

    /// The most bytes of a refusal's body that are kept.
    public static let maxBody = 64 << 10

    public var reason: Reason
    /// The server's answer.
    public var response: HTTPResponseHead
    /// The answer's body, at most ``maxBody`` bytes.
    public var body: ByteBuffer

    public init(reason: Reason, response: HTTPResponseHead, body: ByteBuffer = ByteBuffer()) {
        self.reason = reason
        self.response = response
        self.body = body
    }

    /// The answer's status, e.g. 403 from a 1.20 kubelet.
    public var status: HTTPResponseStatus { response.status }

    /// The message to show: the `message` of a Kubernetes `Status` body, else the body as text.
    public var message: String {
        if case .failure(let message, _, _)? = try? RemoteCommandStatus.decode(errorStream: body, protocolVersion: .v4)
        {
            return message
        }
        return String(buffer: body)
    }

    public var description: String {
        let detail = message.isEmpty ? "" : ": \(message)"
        return "WebSocket upgrade refused (\(reason), \(status.code) \(status.reasonPhrase))\(detail)"
    }
}
