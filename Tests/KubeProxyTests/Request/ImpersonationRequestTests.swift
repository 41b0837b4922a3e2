import Foundation
import NIOHTTP1
import Policy
import Testing

@testable import KubeProxy

@Suite("Impersonation requested by a client")
struct ImpersonationRequestTests {
    static let bob = RequestAttributes.UserInfo(name: "bob", groups: ["sre"])

    static func engine() throws -> PolicyEngine {
        let text = """
            apiVersion: portcullis.dev/v1alpha1
            kind: AccessPolicy
            metadata: {name: impersonation}
            spec:
              match: {verbs: [impersonate], subjects: [{group: sre}]}
              rules:
              - name: sre-act-as-developers
                action: Allow
                expression: >-
                  request.resource.resource == 'users' ? request.name == 'alice'
                  : request.resource.resource == 'groups' ? request.name == 'developers'
                  : request.resource.resource == 'serviceaccounts' && request.namespace == 'ci'
            """
        return PolicyEngine(policies: try PolicyCompiler.compile(try PolicyLoader.parse(text, file: "p.yaml")))
    }

    static func request(_ headers: [(String, String)]) throws -> ImpersonationRequest? {
        try ImpersonationRequest(headers: HTTPHeaders(headers))
    }

    @Test("no Impersonate-* header: no impersonation")
    func none() throws {
        #expect(try Self.request([("Accept", "application/json")]) == nil)
    }

    @Test("user, groups and extras are read; the identity gains system:authenticated")
    func parsing() throws {
        let request = try #require(
            try Self.request([
                ("Impersonate-User", "alice"), ("Impersonate-Group", "developers"),
                ("Impersonate-Extra-Reason%2Fticket", "T-1"),
            ]))
        #expect(request.user == "alice")
        #expect(request.identity.groups == ["developers", "system:authenticated"])
        #expect(request.identity.extra == ["reason/ticket": ["T-1"]])
        let checks = request.checks(by: Self.bob)
        #expect(checks.map(\.resource) == ["users", "groups", "userextras"])
        #expect(checks[2].subresource == "reason/ticket")
        #expect(checks[2].group == "authentication.k8s.io")
    }

    @Test(
        "malformed or dangerous impersonation is refused",
        arguments: [
            [("Impersonate-Group", "developers")],
            [("Impersonate-User", "a"), ("Impersonate-User", "b")],
            [("Impersonate-User", "alice"), ("Impersonate-Uid", "1")],
            [("Impersonate-User", "alice"), ("Impersonate-Extra-Portcullis.dev%2Fsession", "forged")],
            [("Impersonate-Something", "x")],
        ])
    func refused(headers: [(String, String)]) {
        #expect(throws: ImpersonationRequest.Refusal.self) { try Self.request(headers) }
    }

    @Test("every target needs an explicit Allow rule")
    func policyDecides() throws {
        let engine = try Self.engine()
        let now = Date()
        let allowed = try #require(
            try Self.request([("Impersonate-User", "alice"), ("Impersonate-Group", "developers")]))
        #expect(allowed.refusal(by: Self.bob, engine: engine, now: now) == nil)

        let wrongGroup = try #require(
            try Self.request([("Impersonate-User", "alice"), ("Impersonate-Group", "system:masters")]))
        #expect(
            wrongGroup.refusal(by: Self.bob, engine: engine, now: now)
                == "bob may not impersonate groups \"system:masters\" through Portcullis: no policy allows it")

        let alice = RequestAttributes.UserInfo(name: "alice", groups: ["developers"])
        #expect(allowed.refusal(by: alice, engine: engine, now: now) != nil, "the default allow is not enough")
    }

    @Test("a ServiceAccount is checked as serviceaccounts in its namespace and gets its groups")
    func serviceAccount() throws {
        let request = try #require(try Self.request([("Impersonate-User", "system:serviceaccount:ci:deployer")]))
        let check = try #require(request.checks(by: Self.bob).first)
        #expect(check.resource == "serviceaccounts")
        #expect(check.namespace == "ci")
        #expect(check.name == "deployer")
        #expect(
            request.identity.groups == ["system:serviceaccounts", "system:serviceaccounts:ci", "system:authenticated"])
        #expect(request.refusal(by: Self.bob, engine: try Self.engine(), now: Date()) == nil)
    }
}
