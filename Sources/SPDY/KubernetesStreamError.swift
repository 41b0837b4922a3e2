/// An error of the Kubernetes stream protocols carried on SPDY or WebSocket: remote command
/// (protocols.md §3, §4) and port-forward (§5).
///
/// The kind is open; ``KubernetesStreamError/status`` (in `KubernetesStreamError+Status.swift`) is the
/// one place that turns each kind into what the client is told.
public struct KubernetesStreamError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What went wrong. Compare with the static members.
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        enum Code: String, Hashable, Sendable {
            case unknownStreamType, unexpectedStream, duplicateStream, streamCreationTimeout, missingStreamType
            case invalidResize, invalidStatus, invalidPort, missingRequestID, duplicatePortForwardStream
            case pairTimeout, unsupportedProtocol, invalidOptions, portForwardFailed, connectionClosed
        }

        let code: Code

        /// A `streamtype` the protocol does not define (§3.2, §5.1).
        public static let unknownStreamType = Kind(code: .unknownStreamType)
        /// A stream type the request's options do not call for, e.g. stdin without `stdin=true` (§7.4 item 12).
        public static let unexpectedStream = Kind(code: .unexpectedStream)
        /// A second stream of the same type (§7.4 item 12).
        public static let duplicateStream = Kind(code: .duplicateStream)
        /// The stream set was not complete within the creation timeout (30 s, §3.2).
        public static let streamCreationTimeout = Kind(code: .streamCreationTimeout)
        /// A stream without a single `streamtype` value.
        public static let missingStreamType = Kind(code: .missingStreamType)
        /// A resize message that is not a `{"Width":…,"Height":…}` object (§3.3).
        public static let invalidResize = Kind(code: .invalidResize)
        /// An error stream whose content cannot be decoded as a `Status` (§3.4).
        public static let invalidStatus = Kind(code: .invalidStatus)
        /// A port-forward `port` that is not a single integer in 1…65535 (§5.1).
        public static let invalidPort = Kind(code: .invalidPort)
        /// A port-forward stream without a `requestid` (§7.4 item 12).
        public static let missingRequestID = Kind(code: .missingRequestID)
        /// A second error or data stream for one request id (§5.1).
        public static let duplicatePortForwardStream = Kind(code: .duplicatePortForwardStream)
        /// A port-forward pair whose other half did not come within the creation timeout (§5.1).
        public static let pairTimeout = Kind(code: .pairTimeout)
        /// A subprotocol this side does not speak.
        public static let unsupportedProtocol = Kind(code: .unsupportedProtocol)
        /// Request options no server accepts, e.g. no stdin, stdout or stderr (§6).
        public static let invalidOptions = Kind(code: .invalidOptions)
        /// The remote side reported an error on a port-forward error stream (§5.1).
        public static let portForwardFailed = Kind(code: .portForwardFailed)
        /// The connection ended before the protocol did.
        public static let connectionClosed = Kind(code: .connectionClosed)

        public var description: String { code.rawValue }
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { "\(kind): \(message)" }
}
