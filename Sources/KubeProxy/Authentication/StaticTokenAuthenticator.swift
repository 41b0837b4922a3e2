/// Authenticates bearer tokens listed in a static token file (the apiserver's
/// `--token-auth-file`): for development and tests.
///
/// Only the SHA-256 of each token is kept. A presented token is hashed and compared with every
/// entry in constant time, without an early exit, so neither a hash-table lookup nor a byte-wise
/// comparison leaks through timing how much of a guess was right.
///
/// A token that matches no entry is ``AuthenticationResult/notApplicable`` (it may be an OIDC or
/// ServiceAccount token); without a bearer token the result is `notApplicable` too.
public struct StaticTokenAuthenticator: Authenticator {
    private struct Entry: Sendable {
        var digest: TokenDigest
        var identity: Identity
    }

    private let entries: [Entry]

    /// The number of tokens loaded.
    public var count: Int { entries.count }

    public init(entries: [StaticTokenFile.Entry]) {
        self.entries = entries.map { Entry(digest: TokenDigest($0.token), identity: $0.identity) }
    }

    /// Loads the token file at `path`; errors carry the line number.
    public init(contentsOf path: String) throws(StaticTokenFile.ParseError) {
        self.init(entries: try StaticTokenFile.load(contentsOf: path))
    }

    /// Parses token-file text; errors name `source` and the line.
    public init(csv text: String, source: String = "token file") throws(StaticTokenFile.ParseError) {
        self.init(entries: try StaticTokenFile.parse(text, source: source))
    }

    public func authenticate(_ credentials: Credentials) async -> AuthenticationResult {
        authenticateNow(credentials)
    }

    public func authenticateImmediately(_ credentials: Credentials) -> AuthenticationResult? {
        authenticateNow(credentials)
    }

    private func authenticateNow(_ credentials: Credentials) -> AuthenticationResult {
        guard let token = credentials.bearerToken else { return .notApplicable }
        guard let identity = lookup(token) else { return .notApplicable }
        return .authenticated(identity)
    }

    /// The identity for `token`, comparing against every entry in constant time.
    func lookup(_ token: String) -> Identity? {
        let digest = TokenDigest(token)
        var found: Identity?
        for entry in entries where entry.digest.constantTimeEquals(digest) {
            found = entry.identity
        }
        return found
    }
}
