/// Asks the upstream apiserver whether a bearer token is valid: a `POST` of a `TokenReview` to
/// ``TokenReviewCodec/path`` with the proxy's own credential. The proxy's server code implements it
/// over its upstream connection; ``TokenReviewCodec`` supplies the bodies.
///
/// The proxy's own identity needs `create` on `tokenreviews.authentication.k8s.io`
/// (the `system:auth-delegator` ClusterRole grants it).
public protocol TokenReviewClient: Sendable {
    /// Throws when the apiserver could not be asked or did not answer with a `TokenReview`; the
    /// authenticator then fails closed. The error's description must not quote the token (the
    /// authenticator scrubs it anyway).
    func review(token: String, audiences: [String]) async throws -> TokenReviewResponse
}

/// The `status` of a `TokenReview` (`authentication.k8s.io/v1`).
public struct TokenReviewResponse: Sendable, Hashable {
    /// Whether the apiserver recognised the token.
    public var authenticated: Bool
    /// The user the token belongs to, when authenticated.
    public var user: Identity?
    /// The audiences the token is valid for, when the apiserver says so.
    public var audiences: [String]
    /// The apiserver's explanation when not authenticated.
    public var error: String?

    public init(authenticated: Bool, user: Identity? = nil, audiences: [String] = [], error: String? = nil) {
        self.authenticated = authenticated
        self.user = user
        self.audiences = audiences
        self.error = error
    }
}
