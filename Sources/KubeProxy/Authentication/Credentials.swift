import X509

/// What the client presented on one request.
///
/// `description`, `debugDescription` and reflection (`dump`, `Mirror`) never show the bearer token,
/// only a short fingerprint of it (see ``Redacted``), so a stray log line cannot leak it.
public struct Credentials: Sendable {
    /// The token from `Authorization: Bearer …`, without the scheme, or nil.
    public var bearerToken: String?
    /// The TLS client certificate chain, leaf first, already verified by the TLS layer against the
    /// client CA. Empty when the client sent none.
    public var clientCertificateChain: [Certificate]

    public init(bearerToken: String? = nil, clientCertificateChain: [Certificate] = []) {
        self.bearerToken = bearerToken
        self.clientCertificateChain = clientCertificateChain
    }

    /// Builds credentials from the DER bytes of a verified peer chain (for example from
    /// `NIOSSLCertificate.toDERBytes()`), leaf first.
    public init(bearerToken: String?, clientCertificateChainDER: [[UInt8]]) throws {
        self.bearerToken = bearerToken
        self.clientCertificateChain = try clientCertificateChainDER.map { try Certificate(derEncoded: $0) }
    }
}

extension Credentials: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String {
        let token = bearerToken.map { Redacted($0).description } ?? "none"
        let subject = clientCertificateChain.first.map { String(describing: $0.subject) } ?? "none"
        return "Credentials(bearerToken: \(token), clientCertificate: \(subject))"
    }

    public var debugDescription: String { description }

    public var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "bearerToken": bearerToken.map { Redacted($0).description } as Any,
                "clientCertificateCount": clientCertificateChain.count,
            ],
            displayStyle: .struct)
    }
}
