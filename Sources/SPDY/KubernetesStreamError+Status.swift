extension KubernetesStreamError {
    /// The single mapping from these errors to what the client sees: a `Status` on the error stream
    /// (protocols.md §3.4; v1–v3 clients get its message as text). Protocol violations by the client
    /// are `BadRequest` (400); a timeout is `Timeout` (504); anything else `InternalError` (500).
    public var status: RemoteCommandStatus {
        switch kind.code {
        case .unknownStreamType, .unexpectedStream, .duplicateStream, .missingStreamType, .invalidResize, .invalidPort,
            .missingRequestID, .duplicatePortForwardStream, .unsupportedProtocol, .invalidOptions:
            return .failure(message: message, reason: "BadRequest", code: 400)
        case .streamCreationTimeout, .pairTimeout:
            return .failure(message: message, reason: "Timeout", code: 504)
        case .invalidStatus, .portForwardFailed, .connectionClosed:
            return .failure(message: "Internal error occurred: \(message)", reason: "InternalError", code: 500)
        }
    }
}
