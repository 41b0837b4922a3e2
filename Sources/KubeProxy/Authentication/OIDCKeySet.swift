import Foundation
import Logging

/// The issuer's verification keys: found through discovery, fetched from the JWKS, cached.
///
/// When keys are fetched:
///
/// ```
///   no keys yet ──token──▶ fetch (wait) ──ok──▶ keys ──token, kid unknown──▶ fetch (wait) ──▶ …
///        ▲                        │               │
///        └─────────failed─────────┘               └──older than maximumKeyAge──▶ fetch (background)
/// ```
///
/// * every fetch is discovery (`{issuer}/.well-known/openid-configuration`, whose `issuer` must
///   equal the configured one exactly) followed by the JWKS at its `jwks_uri`;
/// * at most one fetch starts per ``OIDCConfiguration/minimumRefreshInterval``, whatever asked
///   for it, and concurrent callers wait for the fetch in flight instead of starting another;
/// * a failed fetch (or a JWKS without a usable key) keeps the last good keys.
///
/// The clock is injected.
actor OIDCKeySet {
    /// What a lookup found.
    enum Lookup: Sendable {
        case keys([JSONWebKey])
        /// Keys are loaded but none fits the token's `kid` and algorithm.
        case unknownKey
        /// No keys could be loaded yet; the associated text says why.
        case unavailable(String)
    }

    private let issuerURL: String
    private let discoveryURL: URL?
    private let minimumRefreshInterval: TimeInterval
    private let maximumKeyAge: TimeInterval
    private let fetcher: any OIDCDocumentFetching
    private let now: @Sendable () -> Date
    private let logger: Logger

    private var keys: [JSONWebKey] = []
    private var fetchedAt: Date?
    private var lastAttempt: Date?
    private var lastError: String?
    /// The fetch in flight; its value is the error, or nil on success.
    private var inFlight: Task<String?, Never>?

    init(
        configuration: OIDCConfiguration, fetcher: any OIDCDocumentFetching, now: @escaping @Sendable () -> Date,
        logger: Logger
    ) {
        self.issuerURL = configuration.issuerURL
        self.discoveryURL = configuration.discoveryURL
        self.minimumRefreshInterval = AuthenticationTime.interval(configuration.minimumRefreshInterval)
        self.maximumKeyAge = AuthenticationTime.interval(configuration.maximumKeyAge)
        self.fetcher = fetcher
        self.now = now
        self.logger = logger
    }

    /// The keys that may verify a token with this `kid` (nil: any) and algorithm.
    ///
    /// Waits for a fetch only when it must: when no keys were ever loaded, and when none fits the
    /// token (a new `kid`), subject to the rate limit. Stale keys are refreshed in the background
    /// while the current ones keep working, so a slow or unreachable issuer does not stall every
    /// request once an hour.
    func candidates(keyID: String?, algorithm: JWTSignatureAlgorithm) async -> Lookup {
        if let fetchedAt {
            if now().timeIntervalSince(fetchedAt) >= maximumKeyAge, inFlight == nil, mayStartFetch() {
                _ = startFetch()
            }
        } else {
            _ = await fetchIfAllowed()
        }
        var found = matching(keyID: keyID, algorithm: algorithm)
        if found.isEmpty, fetchedAt != nil, await fetchIfAllowed() {
            // A new `kid` is how an issuer rotates keys: look again, at most once per interval.
            found = matching(keyID: keyID, algorithm: algorithm)
        }
        if !found.isEmpty { return .keys(found) }
        if fetchedAt == nil { return .unavailable(lastError ?? "the issuer's keys have not been fetched yet") }
        return .unknownKey
    }

    /// Fetches now, ignoring the rate limit (for start-up), and reports the outcome.
    func refresh() async throws(OIDCKeySetError) {
        lastAttempt = now()
        if let error = await startFetch().value { throw OIDCKeySetError(description: error) }
    }

    /// Waits for the fetch in flight, if any (for tests).
    func settle() async {
        if let inFlight { _ = await inFlight.value }
    }

    /// How many keys are cached (for tests and diagnostics).
    var keyCount: Int { keys.count }

    private func matching(keyID: String?, algorithm: JWTSignatureAlgorithm) -> [JSONWebKey] {
        keys.filter { key in (keyID == nil || key.keyID == keyID) && key.canVerify(algorithm) }
    }

    /// Whether the rate limit lets a new fetch start now; if so, records the attempt.
    private func mayStartFetch() -> Bool {
        let time = now()
        if let lastAttempt, time.timeIntervalSince(lastAttempt) < minimumRefreshInterval { return false }
        lastAttempt = time
        return true
    }

    /// Joins the fetch in flight, or starts one if the rate limit allows, and waits for it.
    /// Returns whether a fetch ran (successfully or not).
    private func fetchIfAllowed() async -> Bool {
        if let inFlight {
            _ = await inFlight.value
            return true
        }
        guard mayStartFetch() else { return false }
        _ = await startFetch().value
        return true
    }

    /// The fetch in flight, or a new one. Its value is the error, or nil on success.
    private func startFetch() -> Task<String?, Never> {
        if let inFlight { return inFlight }
        let task = Task {
            let error = await self.fetchAndStore()
            self.inFlight = nil
            return error
        }
        inFlight = task
        return task
    }

    private func fetchAndStore() async -> String? {
        do {
            let set = try await Self.fetchKeySet(
                issuerURL: issuerURL, discoveryURL: discoveryURL, fetcher: fetcher)
            guard !set.keys.isEmpty else {
                throw OIDCKeySetError(
                    description: "the JWKS holds no usable key (\(set.skipped.joined(separator: "; ")))")
            }
            if !set.skipped.isEmpty {
                logger.debug(
                    "skipped unusable JWKS keys",
                    metadata: ["issuer": "\(issuerURL)", "skipped": "\(set.skipped.joined(separator: "; "))"])
            }
            keys = set.keys
            fetchedAt = now()
            lastError = nil
            logger.info(
                "fetched the issuer's signing keys", metadata: ["issuer": "\(issuerURL)", "keys": "\(keys.count)"])
            return nil
        } catch {
            lastError = "\(error)"
            logger.warning(
                "cannot refresh the issuer's signing keys; keeping the previous ones",
                metadata: ["issuer": "\(issuerURL)", "error": "\(error)", "cachedKeys": "\(keys.count)"])
            return lastError
        }
    }

    /// Discovery, then the JWKS.
    static func fetchKeySet(
        issuerURL: String, discoveryURL: URL?, fetcher: any OIDCDocumentFetching
    ) async throws -> JSONWebKeySet {
        guard let discoveryURL else { throw OIDCKeySetError(description: "the issuer URL is not a valid URL") }
        let discovery = try await fetcher.get(discoveryURL)
        guard discovery.status == 200 else {
            throw OIDCKeySetError(
                description: "discovery at \(discoveryURL.absoluteString) answered HTTP \(discovery.status)")
        }
        let document = try OIDCDiscoveryDocument.parse(discovery.body, expectedIssuer: issuerURL)
        let jwks = try await fetcher.get(document.jwksURI)
        guard jwks.status == 200 else {
            throw OIDCKeySetError(
                description: "the JWKS at \(document.jwksURI.absoluteString) answered HTTP \(jwks.status)")
        }
        do {
            return try JSONWebKeySet.parse(jwks.body)
        } catch {
            throw OIDCKeySetError(description: "the JWKS at \(document.jwksURI.absoluteString): \(error.description)")
        }
    }
}

/// Why the issuer's keys could not be loaded.
public struct OIDCKeySetError: Error, Sendable, CustomStringConvertible {
    public var description: String
}

/// The parts of an OpenID Provider configuration document the proxy uses (OpenID Connect
/// Discovery 1.0 §3).
struct OIDCDiscoveryDocument: Sendable {
    var issuer: String
    var jwksURI: URL

    /// Parses the document and checks that its `issuer` is exactly `expectedIssuer` (§4.3: a
    /// mismatch means the document must not be used) and that `jwks_uri` is https.
    static func parse(_ body: [UInt8], expectedIssuer: String) throws(OIDCKeySetError) -> OIDCDiscoveryDocument {
        guard let object = JSONValue.object(from: body) else {
            throw OIDCKeySetError(description: "the discovery document is not a JSON object")
        }
        guard let issuer = object["issuer"]?.stringValue else {
            throw OIDCKeySetError(description: "the discovery document has no \"issuer\"")
        }
        guard issuer == expectedIssuer else {
            throw OIDCKeySetError(
                description:
                    "the discovery document's issuer \(AuthenticationDetail.quote(issuer)) is not the configured issuer \(AuthenticationDetail.quote(expectedIssuer))"
            )
        }
        guard let text = object["jwks_uri"]?.stringValue, let uri = URL(string: text),
            uri.scheme?.lowercased() == "https", uri.host?.isEmpty == false
        else { throw OIDCKeySetError(description: "the discovery document has no https \"jwks_uri\"") }
        return OIDCDiscoveryDocument(issuer: issuer, jwksURI: uri)
    }
}
