import Foundation
import Logging
import NIOConcurrencyHelpers

/// Authenticates OpenID Connect ID tokens (bearer JWTs) from one issuer, like the apiserver's
/// `--oidc-*` authenticator.
///
/// A bearer token that is not a compact JWS (three dot-separated segments) or whose payload is not
/// a base64url JSON object is ``AuthenticationResult/notApplicable`` (it may be a static or opaque
/// token), and so is a JWT whose `iss` is another issuer (a ServiceAccount token, say, for the
/// TokenReview authenticator). A JWT-shaped token over the size limit, and every JWT that claims
/// this issuer, is checked, in this order, and any failure is a
/// ``AuthenticationResult/rejected(_:)``:
///
/// 1. size (``OIDCConfiguration/maximumTokenBytes``) and strict compact-JWS syntax;
/// 2. the header: `alg` one of ``OIDCConfiguration/allowedAlgorithms`` (which can never be `none`
///    or HMAC), no `crit`, `kid` a string if present;
/// 3. the signature, with a JWKS key whose `kid` matches and whose type, curve and own `alg` fit
///    the header's `alg` (no algorithm confusion); an unknown `kid` triggers one rate-limited JWKS
///    refetch, which is how key rotation works without a restart;
/// 4. the claims (see `OIDCConfiguration.identity(from:now:)`): `exp` required, `nbf`/`iat`,
///    `aud`, required claims, user name, groups, UID.
///
/// Successful verifications are remembered for a short while (by the token's SHA-256), so a client
/// that sends the same token on every request costs one hash and one lookup.
public struct OIDCAuthenticator: Authenticator {
    public let configuration: OIDCConfiguration
    private let keySet: OIDCKeySet
    private let verified: NIOLockedValueBox<ExpiringCache<Identity>>
    private let now: @Sendable () -> Date

    /// - Parameters:
    ///   - fetcher: how discovery and JWKS are fetched; nil for an ``OIDCHTTPClient`` that trusts
    ///     ``OIDCConfiguration/caBundlePEM``.
    ///   - now: the clock, injected for tests.
    public init(
        configuration: OIDCConfiguration,
        fetcher: (any OIDCDocumentFetching)? = nil,
        logger: Logger = Logger(label: "portcullis.authentication.oidc"),
        now: @escaping @Sendable () -> Date = { Date() }
    ) throws {
        try configuration.validate()
        let fetcher = try fetcher ?? OIDCHTTPClient(caBundlePEM: configuration.caBundlePEM)
        self.configuration = configuration
        self.keySet = OIDCKeySet(configuration: configuration, fetcher: fetcher, now: now, logger: logger)
        self.verified = NIOLockedValueBox(ExpiringCache(capacity: configuration.verifiedTokenCacheCapacity))
        self.now = now
    }

    /// Fetches discovery and the JWKS now, regardless of the refresh rate limit: call it at start-up
    /// to find a misconfigured issuer early. Tokens still work without it (keys are fetched on first
    /// use), and a failure here is not fatal: later tokens retry.
    public func refreshKeys() async throws(OIDCKeySetError) {
        try await keySet.refresh()
    }

    /// Waits until a key fetch in flight (such as a background refresh of stale keys) has ended.
    func waitForKeyRefresh() async {
        await keySet.settle()
    }

    /// The number of signing keys currently cached.
    public var cachedKeyCount: Int {
        get async { await keySet.keyCount }
    }

    /// Settled without a signature check: not a JWT, too large, verified recently, or another
    /// issuer's. Only a token for this issuer that is not in the cache needs the keys.
    public func authenticateImmediately(_ credentials: Credentials) -> AuthenticationResult? {
        guard let token = credentials.bearerToken, JSONWebToken.hasJWTShape(token) else { return .notApplicable }
        if let screened = screen(token, digest: TokenDigest(token), now: now()) { return screened }
        switch JSONWebToken.parse(token) {
        case .notJWT, .unreadableClaims:
            return .notApplicable
        case .malformed(_, let claims):
            return claims["iss"]?.stringValue == configuration.issuerURL ? nil : .notApplicable
        case .parsed(let parsed):
            return parsed.claims["iss"]?.stringValue == configuration.issuerURL ? nil : .notApplicable
        }
    }

    /// The size limit and the cache of verified tokens.
    private func screen(_ token: String, digest: TokenDigest, now time: Date) -> AuthenticationResult? {
        let size = token.utf8.count
        guard size <= OIDCConfiguration.maximumTokenBytes else {
            return rejection(
                token, .tokenTooLarge, "\(size) bytes, over the \(OIDCConfiguration.maximumTokenBytes)-byte limit")
        }
        return verified.withLockedValue { $0.value(for: digest, now: time) }.map { .authenticated($0) }
    }

    private func rejection(
        _ token: String, _ kind: AuthenticationFailure.Kind, _ message: String
    ) -> AuthenticationResult {
        .rejected(
            AuthenticationFailure(
                kind, method: .oidc,
                detail: "JWT \(Redacted(token)) for issuer \(configuration.issuerURL): \(message)"))
    }

    public func authenticate(_ credentials: Credentials) async -> AuthenticationResult {
        guard let token = credentials.bearerToken, JSONWebToken.hasJWTShape(token) else { return .notApplicable }
        func reject(_ kind: AuthenticationFailure.Kind, _ message: String) -> AuthenticationResult {
            rejection(token, kind, message)
        }
        let digest = TokenDigest(token)
        let time = now()
        if let screened = screen(token, digest: digest, now: time) { return screened }

        // Routing, not trust: only a token whose claims name this issuer is this authenticator's
        // business; one whose claims cannot even be read may be some other kind of token.
        let jwt: JSONWebToken
        switch JSONWebToken.parse(token) {
        case .notJWT, .unreadableClaims:
            return .notApplicable
        case .malformed(let reason, let claims):
            guard claims["iss"]?.stringValue == configuration.issuerURL else { return .notApplicable }
            return reject(.malformedToken, reason)
        case .parsed(let parsed):
            guard parsed.claims["iss"]?.stringValue == configuration.issuerURL else { return .notApplicable }
            jwt = parsed
        }

        guard let algorithmName = jwt.header["alg"]?.stringValue else {
            return reject(.unsupportedAlgorithm, "the header has no \"alg\"")
        }
        guard let algorithm = JWTSignatureAlgorithm(rawValue: algorithmName),
            configuration.allowedAlgorithms.contains(algorithm)
        else {
            return reject(.unsupportedAlgorithm, "\"alg\" \(AuthenticationDetail.quote(algorithmName)) is not allowed")
        }
        if jwt.header["crit"] != nil {
            return reject(
                .malformedToken, "the header lists critical extensions (\"crit\"), none of which are supported")
        }
        var keyID: String?
        switch jwt.header["kid"] {
        case nil: keyID = nil
        case .string(let value): keyID = value
        case .some(let other): return reject(.malformedToken, "\"kid\" is a \(other.typeName), not a string")
        }

        switch await keySet.candidates(keyID: keyID, algorithm: algorithm) {
        case .unavailable(let reason):
            return reject(.keysUnavailable, "the issuer's keys are unavailable: \(reason)")
        case .unknownKey:
            let name = keyID.map { "\"kid\" \(AuthenticationDetail.quote($0))" } ?? "no \"kid\""
            return reject(.unknownKey, "no \(algorithm.rawValue) key in the issuer's JWKS matches \(name)")
        case .keys(let keys):
            guard
                keys.contains(where: { $0.isValidSignature(jwt.signature, for: jwt.signingInput, algorithm: algorithm) }
                )
            else { return reject(.invalidSignature, "the \(algorithm.rawValue) signature does not verify") }
        }

        switch configuration.identity(from: jwt.claims, now: now()) {
        case .failure(let failure):
            return reject(failure.kind, failure.detail)
        case .success(let (identity, expires)):
            let ttl = AuthenticationTime.interval(configuration.verifiedTokenCacheTTL)
            if ttl > 0 {
                let until = min(expires, time.addingTimeInterval(ttl))
                verified.withLockedValue { $0.insert(identity, for: digest, expires: until, now: time) }
            }
            return .authenticated(identity)
        }
    }
}
