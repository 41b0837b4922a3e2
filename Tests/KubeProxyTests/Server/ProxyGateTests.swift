import Foundation
import NIOCore
import NIOHTTP1
import Policy
import Testing

@testable import KubeProxy

@Suite("Proxy gate")
struct ProxyGateTests {
    static let policies = """
        apiVersion: portcullis.dev/v1alpha1
        kind: AccessPolicy
        metadata: {name: no-secrets}
        spec:
          match: {resources: [secrets]}
          rules:
          - {name: no-secrets, action: Deny, message: secrets are off limits}
        """

    static func gate(_ authenticator: CallerAuthenticator) throws -> ProxyGate {
        let engine = PolicyEngine(
            policies: try PolicyCompiler.compile(try PolicyLoader.parse(policies, file: "gate.yaml")))
        return ProxyGate(
            policies: PolicyStore(engine), authenticate: authenticator, upstreamHost: "upstream:6443",
            authorization: UpstreamAuthorization(.token("proxy-credential")), approvals: nil)
    }

    static func request(_ uri: String, authorization: String? = "Bearer alice-token") -> ProxyRequest {
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: uri)
        if let authorization { head.headers.add(name: "Authorization", value: authorization) }
        return ProxyRequest(
            head: head, body: ByteBuffer(), clientCertificates: [], remoteAddress: "127.0.0.1", receivedAt: Date())
    }

    static let alice = RequestAttributes.UserInfo(name: "alice", groups: ["developers"])

    @Test("the bearer token: scheme in any case, blanks around the token ignored, other schemes and empty tokens none")
    func bearerToken() {
        func token(_ value: String?) -> String? {
            var headers = HTTPHeaders()
            if let value { headers.add(name: "Authorization", value: value) }
            return ProxyGate.bearerToken(headers)
        }
        #expect(token("Bearer abc.def") == "abc.def")
        #expect(token("bearer abc") == "abc")
        #expect(token("BEARER   abc  ") == "abc")
        #expect(token("  Bearer abc") == "abc")
        #expect(token("Bearer a b") == "a b")
        #expect(token(nil) == nil)
        #expect(token("Bearer") == nil)
        #expect(token("Bearer    ") == nil)
        #expect(token("Basic YWxpY2U6cHc=") == nil)
        #expect(token("Bearerabc") == nil)
        #expect(token("Bearer\tabc") == nil)
        #expect(token("Beare abc") == nil)
        #expect(token("Bearez abc") == nil)
    }

    @Test(
        "a caller known without waiting is decided at once: forwarded as itself with the proxy's credential, or denied")
    func decidedWithoutWaiting() throws {
        let gate = try Self.gate(
            CallerAuthenticator { token, _ in
                guard let token else { return .anonymous }
                return token == "alice-token" ? .authenticated(Self.alice, method: "test") : nil
            })
        guard case .decided(.forward(let upstream, let audit)) = gate.begin(Self.request("/api/v1/namespaces/dev/pods"))
        else {
            Issue.record("an allowed request with a static token was not forwarded at once")
            return
        }
        #expect(upstream.head.headers["Authorization"] == ["Bearer proxy-credential"])
        #expect(upstream.head.headers["Impersonate-User"] == ["alice"])
        #expect(audit.user?.name == "alice")
        guard case .decided(.respond(let status, _)) = gate.begin(Self.request("/api/v1/namespaces/dev/secrets")) else {
            Issue.record("a denied request was not refused at once")
            return
        }
        #expect(status.code == 403)
        #expect(status.message.contains("secrets are off limits"))
        guard case .decided(.respond(let anonymous, _)) = gate.begin(Self.request("/api", authorization: nil)) else {
            Issue.record("a request without credentials was not answered at once")
            return
        }
        #expect(anonymous.code == 401)
    }

    @Test("a caller that needs waiting for is authenticated in finish, and then decided the same way")
    func waitsForAuthentication() async throws {
        let gate = try Self.gate(
            CallerAuthenticator(
                immediately: { _, _ in nil },
                eventually: { token, _ in
                    token == "alice-token" ? .authenticated(Self.alice, method: "test") : .rejected(detail: "unknown")
                }))
        guard case .waiting(let pending) = gate.begin(Self.request("/api/v1/namespaces/dev/secrets")) else {
            Issue.record("the gate did not wait for the authenticator")
            return
        }
        guard case .respond(let status, let audit) = await gate.finish(pending) else {
            Issue.record("a denied request was not refused")
            return
        }
        #expect(status.code == 403)
        #expect(audit.user?.name == "alice")
        guard case .respond(let refused, _) = await gate.decide(Self.request("/api", authorization: "Bearer nope"))
        else {
            Issue.record("an unknown token was not refused")
            return
        }
        #expect(refused.code == 401)
        guard case .forward = await gate.decide(Self.request("/api/v1/namespaces/dev/pods")) else {
            Issue.record("an allowed request was not forwarded")
            return
        }
    }
}
