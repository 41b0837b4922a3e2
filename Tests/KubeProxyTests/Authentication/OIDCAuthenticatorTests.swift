import Crypto
import CryptoExtras
import Foundation
import NIOCore
import NIOPosix
import Testing

@testable import KubeProxy

/// End-to-end tests of the OIDC authenticator against a real local HTTPS issuer.
@Suite("OIDC authenticator")
struct OIDCAuthenticatorTests {
    static let clientID = "portcullis"

    /// The issuer serving rsa-1 (RS256) and ec-1 (ES256), and an authenticator trusting it.
    struct Fixture {
        let server: TestOIDCServer
        let clock: TestClock
        let authenticator: OIDCAuthenticator

        var issuer: String { server.issuerURL }

        func claims(_ overrides: [String: Any] = [:]) -> [String: Any] {
            let now = clock.now.timeIntervalSince1970
            var claims: [String: Any] = [
                "iss": issuer, "aud": OIDCAuthenticatorTests.clientID, "sub": "alice", "email": "alice@example.com",
                "groups": ["developers", "sre"], "exp": now + 300, "iat": now - 10, "nbf": now - 10,
                "jti": UUID().uuidString,
            ]
            for (key, value) in overrides { claims[key] = value }
            return claims
        }

        func rs256(_ overrides: [String: Any] = [:], kid: String = "rsa-1") throws -> String {
            try TestJWT.make(
                header: ["alg": "RS256", "typ": "JWT", "kid": kid], claims: claims(overrides),
                signer: .rsa(TestKeys.rsa1))
        }

        func authenticate(_ token: String) async -> AuthenticationResult {
            await authenticator.authenticate(Credentials(bearerToken: token))
        }
    }

    static let defaultKeys = TestKeys.jwks([
        TestKeys.jwk(TestKeys.rsa1.publicKey, kid: "rsa-1"), TestKeys.jwk(TestKeys.p256.publicKey, kid: "ec-1"),
    ])

    func withFixture(
        configure: (inout OIDCConfiguration) -> Void = { _ in },
        _ body: (Fixture) async throws -> Void
    ) async throws {
        try await withOIDCServer { server in
            server.update { $0.jwks = Self.defaultKeys }
            var configuration = OIDCConfiguration(
                issuerURL: server.issuerURL, clientID: Self.clientID, groupsClaim: "groups", groupsPrefix: "oidc:",
                caBundlePEM: server.caPEM, verifiedTokenCacheTTL: .zero)
            configure(&configuration)
            let clock = TestClock()
            let authenticator = try OIDCAuthenticator(configuration: configuration, now: clock.function)
            try await body(Fixture(server: server, clock: clock, authenticator: authenticator))
        }
    }

    @Test("a valid RS256 token authenticates, with the issuer# user name prefix and the groups prefix applied")
    func validRS256() async throws {
        try await withFixture { (fixture: Fixture) async throws in
            let result = await fixture.authenticate(try fixture.rs256())
            #expect(
                result.identity
                    == Identity(
                        name: fixture.issuer + "#alice", groups: ["oidc:developers", "oidc:sre"], method: .oidc))
        }
    }

    @Test("a valid ES256 token authenticates; the email claim gets no default prefix and a custom prefix applies")
    func validES256() async throws {
        try await withFixture(configure: { $0.usernameClaim = "email" }) { (fixture: Fixture) async throws in
            let token = try TestJWT.make(
                header: ["alg": "ES256", "kid": "ec-1"], claims: fixture.claims(["email_verified": true]),
                signer: .p256(TestKeys.p256))
            #expect(await fixture.authenticate(token).identity?.name == "alice@example.com")
            let unverified = try TestJWT.make(
                header: ["alg": "ES256", "kid": "ec-1"], claims: fixture.claims(["email_verified": false]),
                signer: .p256(TestKeys.p256))
            #expect(await fixture.authenticate(unverified).failure?.kind == .invalidClaims)
        }
        try await withFixture(configure: { $0.usernamePrefix = "corp:" }) { (fixture: Fixture) async throws in
            #expect(try await fixture.authenticate(fixture.rs256()).identity?.name == "corp:alice")
        }
        try await withFixture(configure: { $0.usernamePrefix = "-" }) { (fixture: Fixture) async throws in
            #expect(try await fixture.authenticate(fixture.rs256()).identity?.name == "alice")
        }
    }

    @Test("RS384, RS512 and ES384 tokens verify with keys of the matching type")
    func otherAlgorithms() async throws {
        try await withFixture { (fixture: Fixture) async throws in
            fixture.server.update {
                $0.jwks = TestKeys.jwks([
                    TestKeys.jwk(TestKeys.rsa1.publicKey, kid: "rsa-384", alg: "RS384"),
                    TestKeys.jwk(TestKeys.rsa1.publicKey, kid: "rsa-512", alg: nil),
                    TestKeys.jwk(TestKeys.p384.publicKey, kid: "ec-384"),
                ])
            }
            let rs384 = try TestJWT.make(
                header: ["alg": "RS384", "kid": "rsa-384"], claims: fixture.claims(),
                signer: .rsa(TestKeys.rsa1, digest: 384))
            let rs512 = try TestJWT.make(
                header: ["alg": "RS512", "kid": "rsa-512"], claims: fixture.claims(),
                signer: .rsa(TestKeys.rsa1, digest: 512))
            let es384 = try TestJWT.make(
                header: ["alg": "ES384", "kid": "ec-384"], claims: fixture.claims(), signer: .p384(TestKeys.p384))
            for token in [rs384, rs512, es384] {
                #expect(await fixture.authenticate(token).identity != nil)
            }
            // The key declared RS384 may not verify an RS512 token, even one it did sign.
            let mismatched = try TestJWT.make(
                header: ["alg": "RS512", "kid": "rsa-384"], claims: fixture.claims(),
                signer: .rsa(TestKeys.rsa1, digest: 512))
            #expect(await fixture.authenticate(mismatched).failure?.kind == .unknownKey)
        }
    }

    @Test("expired, not-yet-valid and future-issued tokens are rejected; within the clock skew they pass")
    func timeClaims() async throws {
        try await withFixture { (fixture: Fixture) async throws in
            let now = fixture.clock.now.timeIntervalSince1970
            let cases: [([String: Any], AuthenticationFailure.Kind?)] = [
                (["exp": now - 30], nil),
                (["exp": now - 61], .expired),
                (["nbf": now + 30], nil),
                (["nbf": now + 120], .notYetValid),
                (["iat": now + 120], .notYetValid),
                (["exp": "\(now + 300)"], .invalidClaims),
            ]
            for (overrides, expected) in cases {
                let result = await fixture.authenticate(try fixture.rs256(overrides))
                if let expected {
                    #expect(result.failure?.kind == expected, "\(overrides)")
                } else {
                    #expect(result.identity != nil, "\(overrides): \(String(describing: result.failure))")
                }
            }
            var noExpiry = fixture.claims()
            noExpiry["exp"] = nil
            let token = try TestJWT.make(
                header: ["alg": "RS256", "kid": "rsa-1"], claims: noExpiry, signer: .rsa(TestKeys.rsa1))
            #expect(await fixture.authenticate(token).failure?.kind == .invalidClaims)
        }
    }

    @Test("a token for another audience is rejected; extra audiences and audience arrays are accepted")
    func audiences() async throws {
        try await withFixture(configure: { $0.audiences = ["kubectl"] }) { (fixture: Fixture) async throws in
            #expect(
                try await fixture.authenticate(fixture.rs256(["aud": "someone-else"])).failure?.kind == .invalidAudience
            )
            #expect(
                try await fixture.authenticate(fixture.rs256(["aud": ["a", "b"]])).failure?.kind == .invalidAudience)
            #expect(try await fixture.authenticate(fixture.rs256(["aud": 42])).failure?.kind == .invalidAudience)
            #expect(try await fixture.authenticate(fixture.rs256(["aud": ["a", "portcullis"]])).identity != nil)
            #expect(try await fixture.authenticate(fixture.rs256(["aud": "kubectl"])).identity != nil)
        }
    }

    @Test("tokens that are not JWTs, JWTs from another issuer and requests without a token are not applicable")
    func notApplicable() async throws {
        try await withFixture { (fixture: Fixture) async throws in
            #expect(await fixture.authenticate("opaque-static-token").isNotApplicable)
            #expect(await fixture.authenticate("a.b.c.d.e").isNotApplicable)
            #expect(
                try await fixture.authenticate(fixture.rs256(["iss": "https://kubernetes.default.svc"])).isNotApplicable
            )
            #expect(try await fixture.authenticate(fixture.rs256(["iss": fixture.issuer + "/"])).isNotApplicable)
            #expect(await fixture.authenticator.authenticate(Credentials()).isNotApplicable)
            // Routing on `iss` costs no key fetch.
            #expect(fixture.server.current.jwksRequests == 0)
        }
    }

    @Test(
        "without waiting: other tokens are not applicable and a verified token is remembered; a new one needs the keys")
    func immediately() async throws {
        try await withFixture(configure: { $0.verifiedTokenCacheTTL = .seconds(60) }) {
            (fixture: Fixture) async throws in
            let authenticator = fixture.authenticator
            #expect(authenticator.authenticateImmediately(Credentials(bearerToken: "opaque"))?.isNotApplicable == true)
            let serviceAccount = try fixture.rs256(["iss": "https://kubernetes.default.svc"])
            #expect(
                authenticator.authenticateImmediately(Credentials(bearerToken: serviceAccount))?.isNotApplicable == true
            )
            let token = try fixture.rs256()
            #expect(authenticator.authenticateImmediately(Credentials(bearerToken: token)) == nil)
            #expect(await fixture.authenticate(token).identity != nil)
            #expect(
                authenticator.authenticateImmediately(Credentials(bearerToken: token))?.identity?.name == fixture.issuer
                    + "#alice")
            fixture.clock.advance(by: 61)
            #expect(authenticator.authenticateImmediately(Credentials(bearerToken: token)) == nil)
        }
    }

    @Test("a bad signature and a tampered payload are rejected")
    func badSignatures() async throws {
        try await withFixture { (fixture: Fixture) async throws in
            let wrongKey = try TestJWT.make(
                header: ["alg": "RS256", "kid": "rsa-1"], claims: fixture.claims(), signer: .rsa(TestKeys.rsa2))
            #expect(await fixture.authenticate(wrongKey).failure?.kind == .invalidSignature)

            let genuine = try fixture.rs256()
            let parts = genuine.split(separator: ".")
            let forgedClaims = TestJWT.base64URL(TestJWT.json(fixture.claims(["sub": "admin"])))
            let tampered = "\(parts[0]).\(forgedClaims).\(parts[2])"
            #expect(await fixture.authenticate(tampered).failure?.kind == .invalidSignature)

            let signature = try #require(Base64URL.decode(parts[2]))
            let truncated = "\(parts[0]).\(parts[1]).\(Base64URL.encode(signature.dropLast(3)))"
            #expect(await fixture.authenticate(truncated).failure?.kind == .invalidSignature)

            let ecWrongLength = try TestJWT.make(
                header: ["alg": "ES256", "kid": "ec-1"], claims: fixture.claims(),
                signer: .raw([UInt8](repeating: 1, count: 70)))
            #expect(await fixture.authenticate(ecWrongLength).failure?.kind == .invalidSignature)
        }
    }

    @Test("alg none is rejected, with or without a signature segment, whatever its spelling")
    func algNone() async throws {
        try await withFixture { (fixture: Fixture) async throws in
            for alg in ["none", "None", "NONE", ""] {
                let unsigned = try TestJWT.make(header: ["alg": alg], claims: fixture.claims(), signer: .unsigned)
                #expect(unsigned.hasSuffix("."))
                #expect(await fixture.authenticate(unsigned).failure?.kind == .unsupportedAlgorithm, "alg \(alg)")
                let signed = try TestJWT.make(
                    header: ["alg": alg, "kid": "rsa-1"], claims: fixture.claims(), signer: .rsa(TestKeys.rsa1))
                #expect(await fixture.authenticate(signed).failure?.kind == .unsupportedAlgorithm, "alg \(alg)")
            }
            let missing = try TestJWT.make(
                header: ["kid": "rsa-1"], claims: fixture.claims(), signer: .rsa(TestKeys.rsa1))
            #expect(await fixture.authenticate(missing).failure?.kind == .unsupportedAlgorithm)
        }
    }

    @Test("HS256 signed with the issuer's RSA public key bytes is rejected, as is any algorithm/key-type confusion")
    func hmacConfusion() async throws {
        try await withFixture { (fixture: Fixture) async throws in
            let publicKey = TestKeys.rsa1.publicKey
            let secrets: [[UInt8]] = [
                Array(publicKey.derRepresentation), Array(publicKey.pkcs1DERRepresentation),
                Array(publicKey.pemRepresentation.utf8), Array(publicKey.pkcs1PEMRepresentation.utf8),
            ]
            for secret in secrets {
                for alg in ["HS256", "HS384", "HS512"] {
                    let forged = try TestJWT.make(
                        header: ["alg": alg, "kid": "rsa-1"], claims: fixture.claims(), signer: .hmacSHA256(secret))
                    #expect(await fixture.authenticate(forged).failure?.kind == .unsupportedAlgorithm)
                }
            }
            // ES256 naming the RSA key, RS256 naming the EC key: no key fits.
            let esOnRSA = try TestJWT.make(
                header: ["alg": "ES256", "kid": "rsa-1"], claims: fixture.claims(), signer: .p256(TestKeys.p256))
            #expect(await fixture.authenticate(esOnRSA).failure?.kind == .unknownKey)
            let rsOnEC = try TestJWT.make(
                header: ["alg": "RS256", "kid": "ec-1"], claims: fixture.claims(), signer: .rsa(TestKeys.rsa1))
            #expect(await fixture.authenticate(rsOnEC).failure?.kind == .unknownKey)
            // PS256 is not accepted either.
            let pss = try TestJWT.make(
                header: ["alg": "PS256", "kid": "rsa-1"], claims: fixture.claims(), signer: .rsa(TestKeys.rsa1))
            #expect(await fixture.authenticate(pss).failure?.kind == .unsupportedAlgorithm)
        }
        try await withFixture(configure: { $0.allowedAlgorithms = [.es256] }) { (fixture: Fixture) async throws in
            #expect(try await fixture.authenticate(fixture.rs256()).failure?.kind == .unsupportedAlgorithm)
        }
    }

    @Test("a critical header extension and a non-string kid are rejected")
    func headerChecks() async throws {
        try await withFixture { (fixture: Fixture) async throws in
            let critical = try TestJWT.make(
                header: ["alg": "RS256", "kid": "rsa-1", "crit": ["exp"]], claims: fixture.claims(),
                signer: .rsa(TestKeys.rsa1))
            #expect(await fixture.authenticate(critical).failure?.kind == .malformedToken)
            let numericKID = try TestJWT.make(
                header: ["alg": "RS256", "kid": 1], claims: fixture.claims(), signer: .rsa(TestKeys.rsa1))
            #expect(await fixture.authenticate(numericKID).failure?.kind == .malformedToken)
            let noKID = try TestJWT.make(
                header: ["alg": "RS256"], claims: fixture.claims(), signer: .rsa(TestKeys.rsa1))
            #expect(await fixture.authenticate(noKID).identity != nil)
        }
    }

    @Test("an unknown kid triggers one rate-limited refetch, and key rotation then makes the token valid")
    func rotation() async throws {
        try await withFixture { (fixture: Fixture) async throws in
            let rotated = try TestJWT.make(
                header: ["alg": "RS256", "kid": "rsa-2"],
                claims: fixture.claims(["exp": fixture.clock.now.timeIntervalSince1970 + 3600]),
                signer: .rsa(TestKeys.rsa2))
            #expect(await fixture.authenticate(rotated).failure?.kind == .unknownKey)
            #expect(fixture.server.current.jwksRequests == 1)

            fixture.server.update {
                $0.jwks = TestKeys.jwks([
                    TestKeys.jwk(TestKeys.rsa1.publicKey, kid: "rsa-1"),
                    TestKeys.jwk(TestKeys.rsa2.publicKey, kid: "rsa-2"),
                ])
            }
            // Within the minimum refresh interval, forged kids cannot make the proxy hammer the issuer.
            for _ in 0..<5 { #expect(await fixture.authenticate(rotated).failure?.kind == .unknownKey) }
            #expect(fixture.server.current.jwksRequests == 1)

            fixture.clock.advance(by: 11)
            #expect(await fixture.authenticate(rotated).identity != nil)
            #expect(fixture.server.current.jwksRequests == 2)
            #expect(fixture.server.current.discoveryRequests == 2)
            #expect(await fixture.authenticator.cachedKeyCount == 2)
        }
    }

    @Test("a key the issuer withdrew stops working once the cached keys are older than the maximum age")
    func withdrawal() async throws {
        try await withFixture(configure: { $0.maximumKeyAge = .seconds(600) }) { (fixture: Fixture) async throws in
            #expect(try await fixture.authenticate(fixture.rs256()).identity != nil)
            fixture.server.update { $0.jwks = TestKeys.jwks([TestKeys.jwk(TestKeys.rsa2.publicKey, kid: "rsa-2")]) }
            fixture.clock.advance(by: 300)
            #expect(try await fixture.authenticate(fixture.rs256()).identity != nil)
            fixture.clock.advance(by: 301)
            // Stale keys keep working while the refresh runs in the background…
            #expect(try await fixture.authenticate(fixture.rs256()).identity != nil)
            await fixture.authenticator.waitForKeyRefresh()
            #expect(fixture.server.current.jwksRequests == 2)
            // …and once it has replaced them, the withdrawn key is gone.
            #expect(try await fixture.authenticate(fixture.rs256()).failure?.kind == .unknownKey)
        }
    }

    @Test("a failed JWKS fetch keeps the last good keys")
    func fetchFailureKeepsKeys() async throws {
        try await withFixture(configure: { $0.maximumKeyAge = .seconds(600) }) { (fixture: Fixture) async throws in
            #expect(try await fixture.authenticate(fixture.rs256()).identity != nil)
            fixture.server.update { $0.jwksStatus = 500 }
            fixture.clock.advance(by: 700)
            #expect(try await fixture.authenticate(fixture.rs256()).identity != nil)
            await fixture.authenticator.waitForKeyRefresh()
            #expect(fixture.server.current.jwksRequests == 2)
            #expect(try await fixture.authenticate(fixture.rs256()).identity != nil)
            fixture.server.update {
                $0.jwksStatus = 200
                $0.jwks = TestKeys.jwks([])
            }
            fixture.clock.advance(by: 11)
            // An empty JWKS counts as a failed fetch too.
            let unknown = try TestJWT.make(
                header: ["alg": "RS256", "kid": "nope"], claims: fixture.claims(), signer: .rsa(TestKeys.rsa1))
            #expect(await fixture.authenticate(unknown).failure?.kind == .unknownKey)
            #expect(fixture.server.current.jwksRequests == 3)
            #expect(try await fixture.authenticate(fixture.rs256()).identity != nil)
        }
    }

    @Test("a discovery document whose issuer differs from the configured one is refused")
    func discoveryIssuerMismatch() async throws {
        try await withFixture { (fixture: Fixture) async throws in
            fixture.server.update { $0.discoveryIssuer = fixture.issuer + "/" }
            let result = await fixture.authenticate(try fixture.rs256())
            #expect(result.failure?.kind == .keysUnavailable)
            #expect(result.failure?.detail.contains("is not the configured issuer") == true)
            #expect(fixture.server.current.jwksRequests == 0)
            await #expect(throws: OIDCKeySetError.self) { try await fixture.authenticator.refreshKeys() }
        }
    }

    @Test("an issuer whose certificate is not from the configured CA is not trusted")
    func untrustedIssuerCertificate() async throws {
        try await withOIDCServer { server in
            server.update { $0.jwks = Self.defaultKeys }
            let otherCA = try TestCertificateAuthority(commonName: "Some Other CA")
            let authenticator = try OIDCAuthenticator(
                configuration: OIDCConfiguration(
                    issuerURL: server.issuerURL, clientID: Self.clientID, caBundlePEM: try otherCA.certificatePEM))
            let now = Date().timeIntervalSince1970
            let token = try TestJWT.make(
                header: ["alg": "RS256", "kid": "rsa-1"],
                claims: ["iss": server.issuerURL, "aud": Self.clientID, "sub": "alice", "exp": now + 300],
                signer: .rsa(TestKeys.rsa1))
            let result = await authenticator.authenticate(Credentials(bearerToken: token))
            #expect(result.failure?.kind == .keysUnavailable)
            #expect(server.current.discoveryRequests == 0)
        }
    }

    @Test("oversized JWTs and malformed JWTs naming this issuer are rejected; unreadable ones are left to others")
    func malformed() async throws {
        try await withFixture { (fixture: Fixture) async throws in
            let genuine = try fixture.rs256()
            let parts = genuine.split(separator: ".").map(String.init)
            let oversized =
                parts[0] + "." + String(repeating: "A", count: OIDCConfiguration.maximumTokenBytes) + "." + parts[2]
            #expect(await fixture.authenticate(oversized).failure?.kind == .tokenTooLarge)

            let otherIssuer = try TestJWT.make(
                header: ["alg": "RS256"], claims: fixture.claims(["iss": "https://elsewhere"]),
                signer: .rsa(TestKeys.rsa1))
            let other = otherIssuer.split(separator: ".").map(String.init)
            let cases: [(String, AuthenticationFailure.Kind?)] = [
                // The claims name this issuer: rejected.
                ("\(parts[0])=.\(parts[1]).\(parts[2])", .malformedToken),
                ("\(parts[0]).\(parts[1]).\(parts[2])==", .malformedToken),
                ("\(parts[0]).\(parts[1]).\(parts[2])+/", .malformedToken),
                ("!!!.\(parts[1]).\(parts[2])", .malformedToken),
                ("\(TestJWT.base64URL(Array("not json".utf8))).\(parts[1]).\(parts[2])", .malformedToken),
                ("\(TestJWT.base64URL(Array("[1,2]".utf8))).\(parts[1]).\(parts[2])", .malformedToken),
                (".\(parts[1]).\(parts[2])", .malformedToken),
                // Claims that cannot be read, or name another issuer: not this authenticator's token.
                ("\(parts[0])..\(parts[2])", nil),
                ("..", nil),
                ("\(parts[0]).\(parts[1])=.\(parts[2])", nil),
                ("\(parts[0]).\(TestJWT.base64URL(Array("{\"iss\":".utf8))).\(parts[2])", nil),
                ("!!!.\(other[1]).\(other[2])", nil),
            ]
            for (token, expected) in cases {
                let result = await fixture.authenticate(token)
                if let expected {
                    #expect(result.failure?.kind == expected, "\(token.prefix(40))")
                } else {
                    #expect(result.isNotApplicable, "\(token.prefix(40))")
                }
            }
        }
    }

    @Test("required claims, a single-string groups claim, a UID claim and reserved system: names")
    func claimMapping() async throws {
        try await withFixture(configure: {
            $0.requiredClaims = ["tenant": "acme"]
            $0.uidClaim = "oid"
            $0.groupsPrefix = ""
        }) { (fixture: Fixture) async throws in
            let ok = await fixture.authenticate(try fixture.rs256(["tenant": "acme", "oid": "u-1", "groups": "ops"]))
            #expect(ok.identity?.groups == ["ops"])
            #expect(ok.identity?.uid == "u-1")
            #expect(
                try await fixture.authenticate(fixture.rs256(["tenant": "evil", "oid": "u-1"])).failure?.kind
                    == .invalidClaims)
            #expect(try await fixture.authenticate(fixture.rs256(["oid": "u-1"])).failure?.kind == .invalidClaims)
            #expect(try await fixture.authenticate(fixture.rs256(["tenant": "acme"])).failure?.kind == .invalidClaims)
            #expect(
                try await fixture.authenticate(fixture.rs256(["tenant": "acme", "oid": "u", "groups": [1, 2]])).failure?
                    .kind
                    == .invalidClaims)
            let masters = await fixture.authenticate(
                try fixture.rs256(["tenant": "acme", "oid": "u", "groups": ["system:masters"]]))
            #expect(masters.failure?.kind == .forbiddenIdentity)
        }
        try await withFixture(configure: { $0.usernamePrefix = "-" }) { (fixture: Fixture) async throws in
            #expect(
                try await fixture.authenticate(fixture.rs256(["sub": "system:admin"])).failure?.kind
                    == .forbiddenIdentity)
            #expect(try await fixture.authenticate(fixture.rs256(["sub": ""])).failure?.kind == .invalidClaims)
            #expect(try await fixture.authenticate(fixture.rs256(["sub": 7])).failure?.kind == .invalidClaims)
        }
    }

    @Test("a remembered token is not re-verified, yet is re-checked once its cache entry runs out")
    func verifiedTokenCache() async throws {
        try await withFixture(configure: {
            $0.verifiedTokenCacheTTL = .seconds(600)
            $0.maximumKeyAge = .seconds(30)
        }) { (fixture: Fixture) async throws in
            let token = try fixture.rs256(["exp": fixture.clock.now.timeIntervalSince1970 + 100])
            #expect(await fixture.authenticate(token).identity != nil)
            fixture.server.update { $0.jwks = TestKeys.jwks([TestKeys.jwk(TestKeys.rsa2.publicKey, kid: "rsa-2")]) }
            fixture.clock.advance(by: 40)
            // Remembered: no key lookup, so the stale key set is not even refreshed.
            #expect(await fixture.authenticate(token).identity != nil)
            #expect(fixture.server.current.jwksRequests == 1)
            // The entry lasts only until exp + skew; then the token is checked again, and fails.
            fixture.clock.advance(by: 121)
            #expect(await fixture.authenticate(token).failure?.kind == .expired)
            await fixture.authenticator.waitForKeyRefresh()
            #expect(fixture.server.current.jwksRequests == 2)
        }
    }

    @Test(
        "in the chain, a token this issuer rejects never reaches TokenReview, so the apiserver cannot accept it instead"
    )
    func rejectedTokensStayInTheProxy() async throws {
        try await withFixture(configure: { $0.requiredClaims = ["tenant": "acme"] }) {
            (fixture: Fixture) async throws in
            let token = try fixture.rs256(["tenant": "other"])
            let upstream = FakeTokenReviewClient(answers: [
                token: TokenReviewResponse(authenticated: true, user: Identity(name: "alice", method: .tokenReview))
            ])
            let chain = AuthenticatorChain([
                fixture.authenticator, TokenReviewAuthenticator(client: upstream, now: fixture.clock.function),
            ])
            let outcome = await chain.authenticate(Credentials(bearerToken: token))
            #expect(outcome.identity == nil)
            #expect(outcome.failures.map(\.kind) == [.invalidClaims])
            #expect(upstream.callCount == 0)
            // A ServiceAccount-style JWT from another issuer still goes to TokenReview.
            let serviceAccount = try fixture.rs256(["iss": "https://kubernetes.default.svc.cluster.local"])
            _ = await chain.authenticate(Credentials(bearerToken: serviceAccount))
            #expect(upstream.callCount == 1)
        }
    }

    @Test("failure details name the check but never contain the token")
    func detailsAreRedacted() async throws {
        try await withFixture { (fixture: Fixture) async throws in
            let token = try fixture.rs256(["aud": "elsewhere"])
            let failure = try #require(await fixture.authenticate(token).failure)
            #expect(!failure.description.contains(token))
            #expect(!failure.description.contains(String(token.split(separator: ".")[2])))
            #expect(failure.detail.contains(Redacted(token).fingerprint))
        }
    }

    @Test("the configuration refuses http issuers, an empty client ID and an empty algorithm list")
    func configurationValidation() {
        let bad = [
            OIDCConfiguration(issuerURL: "http://issuer.example", clientID: "x"),
            OIDCConfiguration(issuerURL: "https://issuer.example", clientID: ""),
            OIDCConfiguration(issuerURL: "https://issuer.example?x=1", clientID: "x"),
            OIDCConfiguration(issuerURL: "https://issuer.example", clientID: "x", allowedAlgorithms: []),
            OIDCConfiguration(issuerURL: "not a url", clientID: "x"),
        ]
        for configuration in bad {
            #expect(throws: OIDCConfiguration.Error.self) { try configuration.validate() }
        }
        let good = OIDCConfiguration(issuerURL: "https://issuer.example/realms/a", clientID: "x")
        #expect(throws: Never.self) { try good.validate() }
        #expect(good.discoveryURL?.absoluteString == "https://issuer.example/realms/a/.well-known/openid-configuration")
        #expect(good.effectiveUsernamePrefix == "https://issuer.example/realms/a#")
    }

    @Test("the HTTP client enforces its response size limit and refuses plain http")
    func httpClientLimits() async throws {
        try await withOIDCServer { server in
            server.update { $0.jwks = Self.defaultKeys }
            let client = try OIDCHTTPClient(caBundlePEM: server.caPEM, maximumResponseBytes: 64)
            await #expect(throws: OIDCHTTPClient.Error.self) {
                _ = try await client.get(try #require(URL(string: server.issuerURL + "/keys")))
            }
            let roomy = try OIDCHTTPClient(caBundlePEM: server.caPEM)
            let response = try await roomy.get(try #require(URL(string: server.issuerURL + "/keys")))
            #expect(response.status == 200)
            #expect(response.body == Self.defaultKeys)
            let missing = try await roomy.get(try #require(URL(string: server.issuerURL + "/nothing?x=1")))
            #expect(missing.status == 404)
            await #expect(throws: OIDCHTTPClient.Error.self) {
                _ = try await roomy.get(try #require(URL(string: "http://127.0.0.1:\(server.port)/keys")))
            }
        }
    }

    @Test("concurrent first requests share one discovery and JWKS fetch")
    func coalescedFirstFetch() async throws {
        try await withFixture { (fixture: Fixture) async throws in
            let tokens = try (0..<8).map { _ in try fixture.rs256() }
            let successes = await withTaskGroup(of: Bool.self) { group in
                for token in tokens { group.addTask { await fixture.authenticate(token).identity != nil } }
                var count = 0
                for await success in group where success { count += 1 }
                return count
            }
            #expect(successes == tokens.count)
            #expect(fixture.server.current.discoveryRequests == 1)
            #expect(fixture.server.current.jwksRequests == 1)
        }
    }

    @Test("the HTTP client gives up on a server that accepts the connection and never answers")
    func httpClientTimeout() async throws {
        let silent = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in channel.eventLoop.makeSucceededVoidFuture() }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = silent.localAddress?.port ?? 0
        let client = try OIDCHTTPClient(requestTimeout: .milliseconds(300))
        // The request must end with the timeout error rather than hang; how soon it fires on a
        // loaded machine is not what this checks (the bound only guards against a hang).
        let started = ContinuousClock.now
        await #expect {
            _ = try await client.get(try #require(URL(string: "https://127.0.0.1:\(port)/keys")))
        } throws: { error in
            (error as? OIDCHTTPClient.Error)?.description.hasPrefix("no complete response within") == true
        }
        #expect(ContinuousClock.now - started < .seconds(120))
        try await silent.close()
    }
}
