import Testing
import X509

@testable import KubeProxy

/// An authenticator with a fixed answer that counts how often it was asked.
struct FixedAuthenticator: Authenticator {
    let result: AuthenticationResult
    let calls = TestLockedBox(0)

    func authenticate(_ credentials: Credentials) async -> AuthenticationResult {
        calls.update { $0 += 1 }
        return result
    }
}

@Suite("Authenticator chain")
struct AuthenticatorChainTests {
    static let alice = Identity(name: "alice", method: .staticToken)
    static let bob = Identity(name: "bob", method: .oidc)

    @Test("the first authenticator that succeeds wins and later ones are not asked")
    func firstSuccessWins() async {
        let skip = FixedAuthenticator(result: .notApplicable)
        let first = FixedAuthenticator(result: .authenticated(Self.alice))
        let second = FixedAuthenticator(result: .authenticated(Self.bob))
        let outcome = await AuthenticatorChain([skip, first, second]).authenticate(Credentials(bearerToken: "t"))
        #expect(outcome.identity == Self.alice)
        #expect(outcome.failures.isEmpty)
        #expect(outcome.auditDetail.isEmpty)
        #expect(second.calls.value == 0)
    }

    @Test("a rejection is final: later authenticators are not asked")
    func rejectionIsFinal() async {
        let rejecting = FixedAuthenticator(
            result: .rejected(AuthenticationFailure(.invalidAudience, method: .oidc, detail: "wrong aud")))
        let accepting = FixedAuthenticator(result: .authenticated(Self.bob))
        let outcome = await AuthenticatorChain([rejecting, accepting]).authenticate(Credentials(bearerToken: "t"))
        #expect(outcome.identity == nil)
        #expect(outcome.failures.map(\.kind) == [.invalidAudience])
        #expect(accepting.calls.value == 0)
    }

    @Test("with continueAfterRejection a later success wins, and when nothing succeeds every rejection is kept")
    func continueAfterRejection() async {
        let oidc = FixedAuthenticator(
            result: .rejected(AuthenticationFailure(.expired, method: .oidc, detail: "JWT expired")))
        let accepting = FixedAuthenticator(result: .authenticated(Self.bob))
        let union = await AuthenticatorChain([oidc, accepting], continueAfterRejection: true)
            .authenticate(Credentials(bearerToken: "t"))
        #expect(union.identity == Self.bob)

        let review = FixedAuthenticator(
            result: .rejected(AuthenticationFailure(.invalidToken, method: .tokenReview, detail: "apiserver said no")))
        let outcome = await AuthenticatorChain(
            [oidc, FixedAuthenticator(result: .notApplicable), review], continueAfterRejection: true
        )
        .authenticate(Credentials(bearerToken: "t"))
        #expect(outcome.identity == nil)
        #expect(outcome.failures.map(\.kind) == [.expired, .invalidToken])
        #expect(outcome.auditDetail == "oidc: Expired: JWT expired; token-review: InvalidToken: apiserver said no")
    }

    @Test("credentials nobody recognises, and no credentials at all, are unauthenticated")
    func nobodyApplies() async {
        let chain = AuthenticatorChain([FixedAuthenticator(result: .notApplicable)])
        let none = await chain.authenticate(Credentials())
        #expect(none.failures.map(\.kind) == [.noCredentials])
        #expect(none.auditDetail.contains("no credentials"))
        let token = await chain.authenticate(Credentials(bearerToken: "some-token"))
        #expect(token.failures.map(\.kind) == [.noCredentials])
        #expect(!token.auditDetail.contains("some-token"))
        #expect(await AuthenticatorChain([]).authenticate(Credentials(bearerToken: "x")).identity == nil)
    }

    @Test("a chain of real authenticators: client certificate first, then static tokens")
    func realChain() async throws {
        let ca = try TestCertificateAuthority()
        let leaf = try ca.issueClientCertificate(subject: try DistinguishedName { CommonName("carol") })
        let chain = AuthenticatorChain([
            ClientCertificateAuthenticator(), try StaticTokenAuthenticator(csv: "dev-token,dave,1,developers"),
        ])
        #expect(
            await chain.authenticate(Credentials(bearerToken: "dev-token", clientCertificateChain: [leaf])).identity?
                .name == "carol")
        #expect(await chain.authenticate(Credentials(bearerToken: "dev-token")).identity?.groups == ["developers"])
        #expect(await chain.authenticate(Credentials(bearerToken: "wrong")).identity == nil)
    }

    @Test(
        "without waiting: a chain of static tokens and certificates answers at once, one authenticator that must wait makes it wait"
    )
    func immediately() throws {
        let ca = try TestCertificateAuthority()
        let leaf = try ca.issueClientCertificate(subject: try DistinguishedName { CommonName("carol") })
        let statics = AuthenticatorChain([
            ClientCertificateAuthenticator(), try StaticTokenAuthenticator(csv: "dev-token,dave,1,developers"),
        ])
        #expect(
            statics.authenticateImmediately(Credentials(bearerToken: "dev-token", clientCertificateChain: [leaf]))?
                .identity?.name == "carol")
        #expect(statics.authenticateImmediately(Credentials(bearerToken: "dev-token"))?.identity?.name == "dave")
        let unknown = statics.authenticateImmediately(Credentials(bearerToken: "wrong"))
        #expect(unknown?.failures.map(\.kind) == [.noCredentials])

        // FixedAuthenticator only answers asynchronously: the chain cannot decide past it...
        let waiting = FixedAuthenticator(result: .authenticated(Self.bob))
        let mixed = AuthenticatorChain([try StaticTokenAuthenticator(csv: "dev-token,dave,1"), waiting])
        #expect(mixed.authenticateImmediately(Credentials(bearerToken: "other")) == nil)
        // ...but one that answers before it is enough, and a rejection is final there too.
        #expect(mixed.authenticateImmediately(Credentials(bearerToken: "dev-token"))?.identity?.name == "dave")
        let rejecting = AuthenticatorChain([
            TokenReviewAuthenticator(client: FakeTokenReviewClient(), maximumTokenBytes: 8), waiting,
        ])
        #expect(
            rejecting.authenticateImmediately(Credentials(bearerToken: "much-too-long"))?.failures.map(\.kind) == [
                .tokenTooLarge
            ])
        #expect(waiting.calls.value == 0)
    }

    @Test("a redacted token shows only a short SHA-256 fingerprint, and scrubbing replaces the token in text")
    func redaction() {
        let token = "my-secret-token"
        let redacted = Redacted(token)
        #expect(redacted.fingerprint.hasPrefix("sha256:"))
        #expect(redacted.fingerprint.count == "sha256:".count + Redacted.fingerprintHexDigits)
        #expect(redacted.description == "[redacted \(redacted.fingerprint)]")
        #expect(Redacted(token) == redacted)
        #expect(Redacted("other") != redacted)
        let scrubbed = Redacted.scrub("bad token my-secret-token (my-secret-token)", removing: token)
        #expect(!scrubbed.contains(token))
        #expect(scrubbed.contains(redacted.description))
        #expect(Redacted.scrub("unchanged", removing: "") == "unchanged")
    }
}
