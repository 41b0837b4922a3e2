import NIOCore

/// The vocabulary of `portforward.k8s.io` (protocols.md §5.1).
public enum PortForwardProtocol {
    /// The only subprotocol, in `X-Stream-Protocol-Version`.
    public static let version = "portforward.k8s.io"
    /// Header names on each SYN_STREAM (Go lower-cases `requestID` on the wire).
    public static let streamTypeHeader = "streamtype"
    public static let portHeader = "port"
    public static let requestIDHeader = "requestid"
    /// How long the second stream of a pair may take (the kubelet's stream-creation timeout).
    public static let defaultPairTimeout: Duration = .seconds(30)
    /// The most bytes read from an error stream.
    public static let maxErrorLength = 64 << 10
}

/// The `streamtype` of a port-forward stream.
public struct PortForwardStreamType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    /// Carries the forwarded TCP bytes both ways.
    public static let data = PortForwardStreamType(rawValue: "data")
    /// Server→client error text; the client half-closes it at once.
    public static let error = PortForwardStreamType(rawValue: "error")

    public var description: String { rawValue }
}

/// The validated headers of one port-forward stream (protocols.md §5.1, §7.4 item 12).
public struct PortForwardStreamHeaders: Hashable, Sendable {
    public var streamType: PortForwardStreamType
    public var port: UInt16
    public var requestID: String

    public init(streamType: PortForwardStreamType, port: UInt16, requestID: String) {
        self.streamType = streamType
        self.port = port
        self.requestID = requestID
    }

    /// Validates a SYN_STREAM's headers: each exactly once, the type `data` or `error`, the port a decimal
    /// in 1…65535, a request id present. Several values (repeated names or NUL-joined) are refused, since
    /// Go would use the first while a check might look at another.
    public init(_ headers: SPDYHeaders) throws(KubernetesStreamError) {
        func single(_ name: String) throws(KubernetesStreamError) -> String? {
            do {
                return try headers.singleValue(forName: name)
            } catch {
                throw KubernetesStreamError(.invalidPort, "header \(name) carries several values")
            }
        }
        guard let type = try single(PortForwardProtocol.streamTypeHeader) else {
            throw KubernetesStreamError(.missingStreamType, "port-forward stream without a stream type")
        }
        let streamType = PortForwardStreamType(rawValue: type)
        guard streamType == .data || streamType == .error else {
            throw KubernetesStreamError(.unknownStreamType, "invalid port-forward stream type \(type.debugDescription)")
        }
        guard let portText = try single(PortForwardProtocol.portHeader),
            portText.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
            let port = UInt16(portText), port > 0
        else {
            throw KubernetesStreamError(.invalidPort, "port-forward stream without a valid port")
        }
        guard let requestID = try single(PortForwardProtocol.requestIDHeader), !requestID.isEmpty else {
            throw KubernetesStreamError(.missingRequestID, "port-forward stream without a request id")
        }
        self.init(streamType: streamType, port: port, requestID: requestID)
    }

    /// The headers to send on a SYN_STREAM.
    public var spdyHeaders: SPDYHeaders {
        [
            PortForwardProtocol.streamTypeHeader: streamType.rawValue, PortForwardProtocol.portHeader: String(port),
            PortForwardProtocol.requestIDHeader: requestID,
        ]
    }
}
