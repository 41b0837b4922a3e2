import Foundation
import NIOConcurrencyHelpers

/// Authenticates bearer tokens (ServiceAccount tokens and whatever else the apiserver knows) by
/// asking the upstream apiserver with a `TokenReview`.
///
/// Answers are cached by the token's SHA-256, never the token: an authenticated answer for
/// ``positiveTTL`` (2 minutes by default, like the apiserver's webhook token authenticator), a
/// refusal for ``negativeTTL`` (10 s), in a cache of at most ``cacheCapacity`` entries.
/// Concurrent requests with the same uncached token share one review. When the apiserver cannot
/// be asked, the token is rejected (fail closed) and nothing is cached, so the next request asks
/// again.
///
/// A token longer than ``maximumTokenBytes`` is rejected without asking. With ``audiences`` set,
/// the review asks for them and an answer whose audiences share none of them is a refusal. Without
/// a bearer token the result is ``AuthenticationResult/notApplicable``.
public struct TokenReviewAuthenticator: Authenticator {
    public static let defaultPositiveTTL: Duration = .seconds(120)
    public static let defaultNegativeTTL: Duration = .seconds(10)
    /// The default bound on cached answers.
    public static let defaultCacheCapacity = 10_000
    /// The default bound on the token size (16 KiB); ServiceAccount tokens are about 1 KiB.
    public static let defaultMaximumTokenBytes = 16 * 1024

    public let audiences: [String]
    public let positiveTTL: Duration
    public let negativeTTL: Duration
    public let cacheCapacity: Int
    public let maximumTokenBytes: Int
    private let client: any TokenReviewClient
    private let state: TokenReviewState
    private let now: @Sendable () -> Date

    public init(
        client: any TokenReviewClient,
        audiences: [String] = [],
        positiveTTL: Duration = Self.defaultPositiveTTL,
        negativeTTL: Duration = Self.defaultNegativeTTL,
        cacheCapacity: Int = Self.defaultCacheCapacity,
        maximumTokenBytes: Int = Self.defaultMaximumTokenBytes,
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.client = client
        self.audiences = audiences
        self.positiveTTL = positiveTTL
        self.negativeTTL = negativeTTL
        self.cacheCapacity = cacheCapacity
        self.maximumTokenBytes = maximumTokenBytes
        self.state = TokenReviewState(capacity: cacheCapacity)
        self.now = now
    }

    /// Settled without asking the apiserver: no token, too large, or answered recently.
    public func authenticateImmediately(_ credentials: Credentials) -> AuthenticationResult? {
        guard let token = credentials.bearerToken, !token.isEmpty else { return .notApplicable }
        if let refusal = sizeRefusal(token) { return refusal }
        return state.cachedAnswer(for: TokenDigest(token), now: now()).map(\.result)
    }

    private func sizeRefusal(_ token: String) -> AuthenticationResult? {
        let size = token.utf8.count
        guard size > maximumTokenBytes else { return nil }
        return .rejected(
            AuthenticationFailure(
                .tokenTooLarge, method: .tokenReview,
                detail: "token \(Redacted(token)) is \(size) bytes, over the \(maximumTokenBytes)-byte limit"))
    }

    public func authenticate(_ credentials: Credentials) async -> AuthenticationResult {
        guard let token = credentials.bearerToken, !token.isEmpty else { return .notApplicable }
        if let refusal = sizeRefusal(token) { return refusal }
        let review = Review(
            client: client, token: token, audiences: audiences, positiveTTL: positiveTTL, negativeTTL: negativeTTL,
            now: now)
        return await state.answer(for: TokenDigest(token), review: review).result
    }

    /// The number of cached answers (for tests and diagnostics).
    public var cachedAnswerCount: Int {
        get async { await state.cachedCount }
    }

    /// One review: asks the client and turns its answer into a cacheable result.
    struct Review: Sendable {
        let client: any TokenReviewClient
        let token: String
        let audiences: [String]
        let positiveTTL: Duration
        let negativeTTL: Duration
        let now: @Sendable () -> Date

        /// The answer, and how long it may be cached (nil: not at all).
        func run() async -> (CachedAnswer, expires: Date?) {
            let redacted = Redacted(token)
            func refused(_ kind: AuthenticationFailure.Kind, _ message: String) -> (CachedAnswer, expires: Date?) {
                let detail = Redacted.scrub("token \(redacted): \(message)", removing: token)
                let failure = AuthenticationFailure(kind, method: .tokenReview, detail: detail)
                return (.rejected(failure), now().addingTimeInterval(AuthenticationTime.interval(negativeTTL)))
            }
            let response: TokenReviewResponse
            do {
                response = try await client.review(token: token, audiences: audiences)
            } catch {
                let detail = Redacted.scrub("token \(redacted): the TokenReview failed: \(error)", removing: token)
                return (
                    .rejected(AuthenticationFailure(.upstreamUnavailable, method: .tokenReview, detail: detail)), nil
                )
            }
            guard response.authenticated else {
                return refused(
                    .invalidToken, "the apiserver did not authenticate it: \(response.error ?? "no reason given")")
            }
            guard var user = response.user, !user.name.isEmpty else {
                return refused(.invalidToken, "the apiserver authenticated it without naming a user")
            }
            if !audiences.isEmpty, !response.audiences.contains(where: { audiences.contains($0) }) {
                return refused(.invalidAudience, "its audiences do not include any of the proxy's")
            }
            user.method = .tokenReview
            return (.authenticated(user), now().addingTimeInterval(AuthenticationTime.interval(positiveTTL)))
        }
    }

    /// A cached answer.
    enum CachedAnswer: Sendable {
        case authenticated(Identity)
        case rejected(AuthenticationFailure)

        var result: AuthenticationResult {
            switch self {
            case .authenticated(let identity): .authenticated(identity)
            case .rejected(let failure): .rejected(failure)
            }
        }
    }
}

/// The cache and the reviews in flight. The cache sits behind a lock rather than in the actor so
/// that a cached answer can be read without a suspension (on the proxy's event loop).
actor TokenReviewState {
    private nonisolated let cache: NIOLockedValueBox<ExpiringCache<TokenReviewAuthenticator.CachedAnswer>>
    private var inFlight: [TokenDigest: Task<TokenReviewAuthenticator.CachedAnswer, Never>] = [:]

    init(capacity: Int) {
        self.cache = NIOLockedValueBox(ExpiringCache(capacity: capacity))
    }

    var cachedCount: Int { cache.withLockedValue { $0.count } }

    nonisolated func cachedAnswer(for digest: TokenDigest, now: Date) -> TokenReviewAuthenticator.CachedAnswer? {
        cache.withLockedValue { $0.value(for: digest, now: now) }
    }

    /// The cached answer for `digest`, the answer of a review in flight for it, or a new review's.
    func answer(
        for digest: TokenDigest, review: TokenReviewAuthenticator.Review
    ) async -> TokenReviewAuthenticator.CachedAnswer {
        if let cached = cachedAnswer(for: digest, now: review.now()) { return cached }
        if let running = inFlight[digest] { return await running.value }
        let task = Task { () -> TokenReviewAuthenticator.CachedAnswer in
            let (answer, expires) = await review.run()
            self.store(answer, for: digest, expires: expires, now: review.now())
            return answer
        }
        inFlight[digest] = task
        return await task.value
    }

    private func store(
        _ answer: TokenReviewAuthenticator.CachedAnswer, for digest: TokenDigest, expires: Date?, now: Date
    ) {
        inFlight[digest] = nil
        if let expires { cache.withLockedValue { $0.insert(answer, for: digest, expires: expires, now: now) } }
    }
}
