/// Who the caller is, as established by one authenticator.
///
/// The proxy sends this identity upstream as `Impersonate-User`, `Impersonate-Uid`,
/// `Impersonate-Group` and `Impersonate-Extra-*`, so Kubernetes RBAC and the Kubernetes audit log
/// see the real person. The fields mirror the apiserver's `user.Info`.
public struct Identity: Sendable, Hashable {
    /// The user name (`user.Info.GetName()`), with any configured prefix already applied.
    public var name: String
    /// A stable unique identifier, or empty when the authenticator has none.
    public var uid: String
    /// Group names, with any configured prefix already applied.
    public var groups: [String]
    /// Additional attributes (`user.Info.GetExtra()`), for example a ServiceAccount token's pod name.
    public var extra: [String: [String]]
    /// The authenticator that established this identity (for the audit log).
    public var method: AuthenticationMethod

    public init(
        name: String, uid: String = "", groups: [String] = [], extra: [String: [String]] = [:],
        method: AuthenticationMethod
    ) {
        self.name = name
        self.uid = uid
        self.groups = groups
        self.extra = extra
        self.method = method
    }
}

/// The kind of authenticator that established an identity or reported a failure.
///
/// An open set: new authenticators add static members without breaking exhaustive code.
public struct AuthenticationMethod: Sendable, Hashable, RawRepresentable, CustomStringConvertible {
    public var rawValue: String

    public init(rawValue: String) { self.rawValue = rawValue }

    /// An OpenID Connect ID token verified against the issuer's JWKS.
    public static let oidc = AuthenticationMethod(rawValue: "oidc")
    /// A TLS client certificate: CN is the user, each O a group.
    public static let clientCertificate = AuthenticationMethod(rawValue: "client-certificate")
    /// A bearer token that the upstream apiserver vouched for through a `TokenReview`.
    public static let tokenReview = AuthenticationMethod(rawValue: "token-review")
    /// A bearer token from a static token file (development only).
    public static let staticToken = AuthenticationMethod(rawValue: "static-token")
    /// Used by the chain itself, for example when no authenticator recognised the credentials.
    public static let chain = AuthenticationMethod(rawValue: "chain")

    public var description: String { rawValue }
}
