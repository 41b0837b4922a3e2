import Foundation

/// How the proxy trusts one OpenID Connect issuer: the apiserver's `--oidc-*` flags, plus the
/// caching knobs the proxy needs.
public struct OIDCConfiguration: Sendable {
    /// The longest token accepted, in bytes (16 KiB). Longer ones are refused before any parsing;
    /// real ID tokens are 1–4 KiB, and request-header limits are usually 8–16 KiB anyway.
    public static let maximumTokenBytes = 16 * 1024

    /// The issuer URL (`--oidc-issuer-url`). Must be `https`. Compared with the token's `iss` and
    /// with the discovery document's `issuer` exactly, byte for byte.
    public var issuerURL: String
    /// The client ID (`--oidc-client-id`): `aud` must contain it or one of ``audiences``.
    public var clientID: String
    /// Further accepted audiences.
    public var audiences: [String]
    /// The claim holding the user name (`--oidc-username-claim`), `sub` by default.
    public var usernameClaim: String
    /// The user-name prefix (`--oidc-username-prefix`). Nil means the apiserver's default:
    /// `issuerURL#` for every claim except `email`, which gets none. `-` means no prefix.
    public var usernamePrefix: String?
    /// The claim holding the groups (`--oidc-groups-claim`): a string or an array of strings.
    /// Nil: the identity has no groups from the token.
    public var groupsClaim: String?
    /// Prepended to every group (`--oidc-groups-prefix`).
    public var groupsPrefix: String
    /// An optional claim holding the user's UID.
    public var uidClaim: String?
    /// Claims that must be present with exactly these string values (`--oidc-required-claim`).
    public var requiredClaims: [String: String]
    /// The signature algorithms accepted (`--oidc-signing-algs`); `none` and HMAC cannot be named.
    public var allowedAlgorithms: Set<JWTSignatureAlgorithm>
    /// Tolerance for `exp`, `nbf` and `iat` against this machine's clock.
    public var clockSkew: Duration
    /// PEM certificates that verify the issuer's TLS certificate (`--oidc-ca-file`); nil: the
    /// system's trust store.
    public var caBundlePEM: String?
    /// The shortest time between two fetches of discovery + JWKS, whatever triggers them (an unknown
    /// `kid`, a failed fetch): bounds the load a stream of forged tokens can put on the issuer.
    public var minimumRefreshInterval: Duration
    /// Keys older than this are refetched on the next token, so a key the issuer withdrew stops
    /// working without a restart. If the refetch fails the old keys stay in use.
    public var maximumKeyAge: Duration
    /// A verified token is remembered (by its SHA-256) for this long, at most until it expires, so
    /// a client that repeats its token is not re-verified on every request. Zero disables.
    public var verifiedTokenCacheTTL: Duration
    /// The most verified tokens remembered.
    public var verifiedTokenCacheCapacity: Int
    /// Whether the user name or a group may begin with `system:`. Off by default: the proxy
    /// impersonates whatever the token says, and an identity provider must not be able to mint
    /// `system:masters` or `system:serviceaccount:…` identities through it.
    public var allowSystemIdentities: Bool

    public init(
        issuerURL: String,
        clientID: String,
        audiences: [String] = [],
        usernameClaim: String = "sub",
        usernamePrefix: String? = nil,
        groupsClaim: String? = nil,
        groupsPrefix: String = "",
        uidClaim: String? = nil,
        requiredClaims: [String: String] = [:],
        allowedAlgorithms: Set<JWTSignatureAlgorithm> = Set(JWTSignatureAlgorithm.allCases),
        clockSkew: Duration = .seconds(60),
        caBundlePEM: String? = nil,
        minimumRefreshInterval: Duration = .seconds(10),
        maximumKeyAge: Duration = .seconds(3600),
        verifiedTokenCacheTTL: Duration = .seconds(30),
        verifiedTokenCacheCapacity: Int = 4096,
        allowSystemIdentities: Bool = false
    ) {
        self.issuerURL = issuerURL
        self.clientID = clientID
        self.audiences = audiences
        self.usernameClaim = usernameClaim
        self.usernamePrefix = usernamePrefix
        self.groupsClaim = groupsClaim
        self.groupsPrefix = groupsPrefix
        self.uidClaim = uidClaim
        self.requiredClaims = requiredClaims
        self.allowedAlgorithms = allowedAlgorithms
        self.clockSkew = clockSkew
        self.caBundlePEM = caBundlePEM
        self.minimumRefreshInterval = minimumRefreshInterval
        self.maximumKeyAge = maximumKeyAge
        self.verifiedTokenCacheTTL = verifiedTokenCacheTTL
        self.verifiedTokenCacheCapacity = verifiedTokenCacheCapacity
        self.allowSystemIdentities = allowSystemIdentities
    }

    /// A configuration problem, found when the authenticator is created.
    public struct Error: Swift.Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// The prefix actually applied to user names.
    public var effectiveUsernamePrefix: String {
        switch usernamePrefix {
        case "-": ""
        case .some(let prefix): prefix
        case nil: usernameClaim == "email" ? "" : issuerURL + "#"
        }
    }

    /// The audiences a token may name: the client ID first, then ``audiences``.
    public var acceptedAudiences: [String] { [clientID] + audiences.filter { $0 != clientID } }

    /// The discovery document's URL: the issuer plus `/.well-known/openid-configuration` (OpenID
    /// Connect Discovery 1.0 §4, which appends to the issuer's path).
    public var discoveryURL: URL? {
        let base = issuerURL.hasSuffix("/") ? String(issuerURL.dropLast()) : issuerURL
        return URL(string: base + "/.well-known/openid-configuration")
    }

    /// Checks the settings that do not need the network.
    public func validate() throws(Error) {
        guard let url = URL(string: issuerURL), url.scheme?.lowercased() == "https", url.host?.isEmpty == false
        else { throw Error(description: "the OIDC issuer URL must be an https URL, got \"\(issuerURL)\"") }
        guard url.query == nil, url.fragment == nil else {
            throw Error(description: "the OIDC issuer URL must not have a query or fragment")
        }
        guard discoveryURL != nil else { throw Error(description: "the OIDC issuer URL is not a valid URL") }
        guard !clientID.isEmpty else { throw Error(description: "the OIDC client ID is empty") }
        guard !usernameClaim.isEmpty else { throw Error(description: "the OIDC username claim is empty") }
        guard !allowedAlgorithms.isEmpty else { throw Error(description: "no OIDC signing algorithm is allowed") }
        guard clockSkew >= .zero, minimumRefreshInterval >= .zero, maximumKeyAge > .zero,
            verifiedTokenCacheTTL >= .zero, verifiedTokenCacheCapacity >= 0
        else { throw Error(description: "OIDC durations and sizes must not be negative") }
    }
}
