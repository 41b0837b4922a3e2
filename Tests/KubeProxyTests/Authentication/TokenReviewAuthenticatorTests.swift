import Foundation
import Testing

@testable import KubeProxy

/// A `TokenReviewClient` double: answers from a table, counts calls, can fail or be slow.
final class FakeTokenReviewClient: TokenReviewClient {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    private let answers: TestLockedBox<[String: TokenReviewResponse]>
    private let calls = TestLockedBox(0)
    private let failure = TestLockedBox<Failure?>(nil)
    private let requestedAudiences = TestLockedBox<[[String]]>([])
    let delay: Duration

    init(answers: [String: TokenReviewResponse] = [:], delay: Duration = .zero) {
        self.answers = TestLockedBox(answers)
        self.delay = delay
    }

    var callCount: Int { calls.value }
    var audiencesSeen: [[String]] { requestedAudiences.value }

    func fail(with failure: Failure?) { self.failure.update { $0 = failure } }

    func review(token: String, audiences: [String]) async throws -> TokenReviewResponse {
        calls.update { $0 += 1 }
        requestedAudiences.update { $0.append(audiences) }
        if delay > .zero { try await Task.sleep(for: delay) }
        if let failure = failure.value { throw failure }
        return answers.value[token]
            ?? TokenReviewResponse(authenticated: false, error: "[invalid bearer token, token \(token) not found]")
    }
}

@Suite("TokenReview authenticator")
struct TokenReviewAuthenticatorTests {
    static let serviceAccount = Identity(
        name: "system:serviceaccount:dev:builder", uid: "sa-uid",
        groups: ["system:serviceaccounts", "system:serviceaccounts:dev", "system:authenticated"],
        extra: ["authentication.kubernetes.io/pod-name": ["builder-0"]], method: .tokenReview)
    static let goodToken = "eyJhbGciOiJSUzI1NiJ9.c2VydmljZWFjY291bnQ.c2lnbmF0dXJl"

    func makeAuthenticator(
        _ client: FakeTokenReviewClient, clock: TestClock, audiences: [String] = [], capacity: Int = 100
    ) -> TokenReviewAuthenticator {
        TokenReviewAuthenticator(client: client, audiences: audiences, cacheCapacity: capacity, now: clock.function)
    }

    @Test("an authenticated review yields the apiserver's user, cached for the positive TTL")
    func positiveCache() async {
        let client = FakeTokenReviewClient(answers: [
            Self.goodToken: TokenReviewResponse(authenticated: true, user: Self.serviceAccount)
        ])
        let clock = TestClock()
        let authenticator = makeAuthenticator(client, clock: clock)
        let credentials = Credentials(bearerToken: Self.goodToken)
        #expect(await authenticator.authenticate(credentials).identity == Self.serviceAccount)
        #expect(await authenticator.authenticate(credentials).identity == Self.serviceAccount)
        clock.advance(by: 119)
        #expect(await authenticator.authenticate(credentials).identity == Self.serviceAccount)
        #expect(client.callCount == 1)
        clock.advance(by: 2)
        #expect(await authenticator.authenticate(credentials).identity == Self.serviceAccount)
        #expect(client.callCount == 2)
    }

    @Test("a refusal is rejected and cached for the negative TTL only")
    func negativeCache() async {
        let client = FakeTokenReviewClient()
        let clock = TestClock()
        let authenticator = makeAuthenticator(client, clock: clock)
        let credentials = Credentials(bearerToken: "unknown-token")
        #expect(await authenticator.authenticate(credentials).failure?.kind == .invalidToken)
        clock.advance(by: 9)
        #expect(await authenticator.authenticate(credentials).failure?.kind == .invalidToken)
        #expect(client.callCount == 1)
        clock.advance(by: 2)
        #expect(await authenticator.authenticate(credentials).failure?.kind == .invalidToken)
        #expect(client.callCount == 2)
    }

    @Test("an upstream failure fails closed and is not cached")
    func upstreamFailure() async {
        let client = FakeTokenReviewClient(answers: [
            Self.goodToken: TokenReviewResponse(authenticated: true, user: Self.serviceAccount)
        ])
        client.fail(with: .init(description: "connection refused"))
        let authenticator = makeAuthenticator(client, clock: TestClock())
        let credentials = Credentials(bearerToken: Self.goodToken)
        let failure = await authenticator.authenticate(credentials).failure
        #expect(failure?.kind == .upstreamUnavailable)
        #expect(failure?.detail.contains("connection refused") == true)
        client.fail(with: nil)
        #expect(await authenticator.authenticate(credentials).identity == Self.serviceAccount)
        #expect(client.callCount == 2)
    }

    @Test("the token never appears in any string the authenticator or the chain produces")
    func tokenNeverInStrings() async {
        let token = "s3cr3t-sa-token-value-0123456789"
        let client = FakeTokenReviewClient()
        let authenticator = makeAuthenticator(client, clock: TestClock())
        let credentials = Credentials(bearerToken: token)
        var texts: [String] = []
        // The fake's refusal quotes the token, as a careless upstream message might.
        let refused = await AuthenticatorChain([authenticator]).authenticate(credentials)
        texts += refused.failures.map(\.description) + [refused.auditDetail]
        client.fail(with: .init(description: "POST failed for body {\"spec\":{\"token\":\"\(token)\"}}"))
        let failed = await makeAuthenticator(client, clock: TestClock()).authenticate(credentials)
        texts += [failed.failure.map(String.init(describing:)) ?? "", String(describing: failed)]
        texts += [String(describing: credentials), String(reflecting: credentials), "\(credentials)"]
        var dumped = ""
        dump(credentials, to: &dumped)
        texts.append(dumped)
        texts.append(String(describing: Redacted(token)))
        #expect(texts.count >= 8)
        for text in texts {
            #expect(!text.contains(token), "\(text)")
        }
        #expect(refused.auditDetail.contains(Redacted(token).fingerprint))
    }

    @Test("concurrent requests with the same uncached token share one review")
    func coalescing() async {
        let client = FakeTokenReviewClient(
            answers: [Self.goodToken: TokenReviewResponse(authenticated: true, user: Self.serviceAccount)],
            delay: .milliseconds(200))
        let authenticator = makeAuthenticator(client, clock: TestClock())
        let names = await withTaskGroup(of: String?.self) { group in
            for _ in 0..<10 {
                group.addTask {
                    await authenticator.authenticate(Credentials(bearerToken: Self.goodToken)).identity?.name
                }
            }
            var names: [String?] = []
            for await name in group { names.append(name) }
            return names
        }
        #expect(names == Array(repeating: Self.serviceAccount.name, count: 10))
        #expect(client.callCount == 1)
    }

    @Test("the cache holds at most its capacity")
    func boundedCache() async {
        let client = FakeTokenReviewClient()
        let authenticator = makeAuthenticator(client, clock: TestClock(), capacity: 3)
        for index in 0..<10 {
            _ = await authenticator.authenticate(Credentials(bearerToken: "token-\(index)"))
        }
        #expect(await authenticator.cachedAnswerCount <= 3)
        #expect(client.callCount == 10)
    }

    @Test("configured audiences are requested, and an answer for other audiences is a refusal")
    func audiences() async {
        let client = FakeTokenReviewClient(answers: [
            "for-proxy": TokenReviewResponse(authenticated: true, user: Self.serviceAccount, audiences: ["portcullis"]),
            "for-api": TokenReviewResponse(
                authenticated: true, user: Self.serviceAccount, audiences: ["https://kubernetes"]),
            "no-user": TokenReviewResponse(authenticated: true, user: nil, audiences: ["portcullis"]),
        ])
        let authenticator = makeAuthenticator(client, clock: TestClock(), audiences: ["portcullis"])
        #expect(await authenticator.authenticate(Credentials(bearerToken: "for-proxy")).identity != nil)
        #expect(await authenticator.authenticate(Credentials(bearerToken: "for-api")).failure?.kind == .invalidAudience)
        #expect(await authenticator.authenticate(Credentials(bearerToken: "no-user")).failure?.kind == .invalidToken)
        #expect(client.audiencesSeen.allSatisfy { $0 == ["portcullis"] })
    }

    @Test("no token is not applicable, and an oversized token is rejected without asking")
    func limits() async {
        let client = FakeTokenReviewClient()
        let authenticator = makeAuthenticator(client, clock: TestClock())
        #expect(await authenticator.authenticate(Credentials()).isNotApplicable)
        let huge = String(repeating: "x", count: TokenReviewAuthenticator.defaultMaximumTokenBytes + 1)
        #expect(await authenticator.authenticate(Credentials(bearerToken: huge)).failure?.kind == .tokenTooLarge)
        #expect(client.callCount == 0)
    }

    @Test("without waiting: only a cached answer, a missing token or an oversized one is known at once")
    func immediately() async {
        let client = FakeTokenReviewClient(answers: [
            Self.goodToken: TokenReviewResponse(authenticated: true, user: Self.serviceAccount)
        ])
        let clock = TestClock()
        let authenticator = makeAuthenticator(client, clock: clock)
        let credentials = Credentials(bearerToken: Self.goodToken)
        #expect(authenticator.authenticateImmediately(credentials) == nil)
        #expect(authenticator.authenticateImmediately(Credentials())?.isNotApplicable == true)
        #expect(await authenticator.authenticate(credentials).identity == Self.serviceAccount)
        #expect(authenticator.authenticateImmediately(credentials)?.identity == Self.serviceAccount)
        let refused = Credentials(bearerToken: "unknown-token")
        #expect(await authenticator.authenticate(refused).failure?.kind == .invalidToken)
        #expect(authenticator.authenticateImmediately(refused)?.failure?.kind == .invalidToken)
        #expect(client.callCount == 2)
        clock.advance(by: 121)
        #expect(authenticator.authenticateImmediately(credentials) == nil)
        let huge = Credentials(bearerToken: String(repeating: "x", count: authenticator.maximumTokenBytes + 1))
        #expect(authenticator.authenticateImmediately(huge)?.failure?.kind == .tokenTooLarge)
        #expect(client.callCount == 2)
    }
}

@Suite("TokenReview bodies")
struct TokenReviewCodecTests {
    @Test("the request body is an authentication.k8s.io/v1 TokenReview with the token and audiences")
    func encodesRequest() throws {
        let body = TokenReviewCodec.encodeRequest(token: "abc/def", audiences: ["portcullis"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])
        #expect(object["apiVersion"] as? String == "authentication.k8s.io/v1")
        #expect(object["kind"] as? String == "TokenReview")
        let spec = try #require(object["spec"] as? [String: Any])
        #expect(spec["token"] as? String == "abc/def")
        #expect(spec["audiences"] as? [String] == ["portcullis"])
        let plain = TokenReviewCodec.encodeRequest(token: "t")
        #expect(
            String(decoding: plain, as: UTF8.self)
                == #"{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{"token":"t"}}"#)
    }

    @Test("an apiserver response decodes into an identity with groups and extra; the echoed token is ignored")
    func decodesResponse() throws {
        let body = """
            {"kind":"TokenReview","apiVersion":"authentication.k8s.io/v1","metadata":{"creationTimestamp":null},
             "spec":{"token":"echoed-secret"},
             "status":{"authenticated":true,"user":{"username":"system:serviceaccount:dev:builder","uid":"u-1",
               "groups":["system:serviceaccounts","system:authenticated"],
               "extra":{"authentication.kubernetes.io/pod-name":["builder-0"]}},"audiences":["https://kubernetes.default.svc"]}}
            """
        let response = try TokenReviewCodec.decodeResponse(Array(body.utf8))
        #expect(response.authenticated)
        #expect(response.user?.name == "system:serviceaccount:dev:builder")
        #expect(response.user?.uid == "u-1")
        #expect(response.user?.groups == ["system:serviceaccounts", "system:authenticated"])
        #expect(response.user?.extra == ["authentication.kubernetes.io/pod-name": ["builder-0"]])
        #expect(response.user?.method == .tokenReview)
        #expect(response.audiences == ["https://kubernetes.default.svc"])

        let refused = try TokenReviewCodec.decodeResponse(
            Array(
                #"{"kind":"TokenReview","apiVersion":"authentication.k8s.io/v1","status":{"user":{},"error":"invalid bearer token"}}"#
                    .utf8))
        #expect(!refused.authenticated)
        #expect(refused.user == nil)
        #expect(refused.error == "invalid bearer token")
    }

    @Test("a Status, another kind or broken JSON is an error that does not quote the body")
    func decodingErrors() {
        let status =
            #"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"tokenreviews.authentication.k8s.io is forbidden","reason":"Forbidden","code":403}"#
        do {
            _ = try TokenReviewCodec.decodeResponse(Array(status.utf8))
            Issue.record("decoded a Status")
        } catch {
            #expect(error.description.contains("Forbidden"))
            #expect(error.description.contains("403"))
        }
        let bodies = [
            #"{"kind":"SubjectAccessReview","apiVersion":"authorization.k8s.io/v1","spec":{"token":"echoed-secret"}}"#,
            #"{"kind":"TokenReview","apiVersion":"authentication.k8s.io/v1","spec":{"token":"echoed-secret"}}"#,
            #"{"kind":"TokenReview","apiVersion":"authentication.k8s.io/v1","spec":{"token":"echoed-secret"},"status":{"authenticated":"yes"}}"#,
            #"{"spec":{"token":"echoed-secret""#,
        ]
        for body in bodies {
            do {
                _ = try TokenReviewCodec.decodeResponse(Array(body.utf8))
                Issue.record("decoded \(body)")
            } catch {
                #expect(!error.description.contains("echoed-secret"), "\(error)")
            }
        }
    }

}
