/// What one authenticator made of one request's credentials.
public enum AuthenticationResult: Sendable {
    /// The credentials are valid and identify this caller.
    case authenticated(Identity)
    /// The credentials are not of a kind this authenticator handles (no token, a token that is not
    /// a JWT, a JWT from another issuer, no client certificate): the next authenticator decides.
    case notApplicable
    /// The credentials are of this authenticator's kind and are not valid.
    case rejected(AuthenticationFailure)
}

/// Why an authenticator rejected credentials.
///
/// Only for the audit log and the proxy's own logs: the client always gets the same
/// `401 Unauthorized` `Status`, which says nothing about which check failed. `detail` never holds a
/// token, only its ``Redacted`` fingerprint.
public struct AuthenticationFailure: Error, Sendable, Hashable, CustomStringConvertible {
    /// A coarse, stable classification, for metrics and audit annotations.
    public var kind: Kind
    /// The authenticator that reported the failure.
    public var method: AuthenticationMethod
    /// A human-readable explanation for the audit log only, never for the client.
    public var detail: String

    public init(_ kind: Kind, method: AuthenticationMethod, detail: String) {
        self.kind = kind
        self.method = method
        self.detail = detail
    }

    public var description: String { "\(method): \(kind): \(detail)" }

    /// The classification of a failure. An open set of values.
    public struct Kind: Sendable, Hashable, RawRepresentable, CustomStringConvertible {
        public var rawValue: String

        public init(rawValue: String) { self.rawValue = rawValue }

        public var description: String { rawValue }

        /// No authenticator recognised the credentials (or there were none).
        public static let noCredentials = Kind(rawValue: "NoCredentials")
        /// The token is not well-formed (segments, base64url, JSON, size).
        public static let malformedToken = Kind(rawValue: "MalformedToken")
        /// The token is longer than the authenticator accepts.
        public static let tokenTooLarge = Kind(rawValue: "TokenTooLarge")
        /// The token names a signature algorithm that is not allowed (`none`, HMAC, or not configured).
        public static let unsupportedAlgorithm = Kind(rawValue: "UnsupportedAlgorithm")
        /// No verification key matches the token's `kid` and algorithm.
        public static let unknownKey = Kind(rawValue: "UnknownKey")
        /// The issuer's keys could not be obtained (discovery or JWKS failed and none are cached).
        public static let keysUnavailable = Kind(rawValue: "KeysUnavailable")
        /// The signature does not verify.
        public static let invalidSignature = Kind(rawValue: "InvalidSignature")
        /// `exp` is in the past, beyond the allowed clock skew.
        public static let expired = Kind(rawValue: "Expired")
        /// `nbf` or `iat` is in the future, beyond the allowed clock skew.
        public static let notYetValid = Kind(rawValue: "NotYetValid")
        /// `aud` does not name this proxy.
        public static let invalidAudience = Kind(rawValue: "InvalidAudience")
        /// A required or identity claim is missing, of the wrong type, or has the wrong value.
        public static let invalidClaims = Kind(rawValue: "InvalidClaims")
        /// The token is not known to the authenticator (static token file) or the upstream said no.
        public static let invalidToken = Kind(rawValue: "InvalidToken")
        /// The client certificate cannot be mapped to a user.
        public static let invalidCertificate = Kind(rawValue: "InvalidCertificate")
        /// The upstream apiserver could not be asked (TokenReview): fail closed.
        public static let upstreamUnavailable = Kind(rawValue: "UpstreamUnavailable")
        /// The identity would use a reserved `system:` name the authenticator may not hand out.
        public static let forbiddenIdentity = Kind(rawValue: "ForbiddenIdentity")
    }
}

/// One way of establishing who the caller is. Implementations are values that are safe to share
/// between event loops; they never throw: every problem is a ``AuthenticationResult/rejected(_:)``.
public protocol Authenticator: Sendable {
    func authenticate(_ credentials: Credentials) async -> AuthenticationResult

    /// The result when it is known without waiting on anything (a static token, a certificate, a
    /// cached answer), so that the proxy can decide on its event loop; nil when ``authenticate(_:)``
    /// must be asked. When not nil it is what ``authenticate(_:)`` would answer.
    func authenticateImmediately(_ credentials: Credentials) -> AuthenticationResult?
}

extension Authenticator {
    public func authenticateImmediately(_ credentials: Credentials) -> AuthenticationResult? { nil }
}
