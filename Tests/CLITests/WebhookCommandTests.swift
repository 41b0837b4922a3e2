import Foundation
import Sandbox
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite("portcullis certs and webhook config", .timeLimit(.minutes(5)))
struct WebhookCommandTests {
    @Test("certs writes a CA and a serving certificate that openssl verifies, with the SANs asked for")
    func certificates() async throws {
        let directory = try Paths.makeScratchDirectory("certs")
        let made = try await portcullis([
            "certs", "--out", directory.path, "--dns-name", "portcullis.portcullis-system.svc", "--ip", "127.0.0.1",
        ])
        #expect(made.exitCode == 0, "\(made.standardError)")
        let verify = try await ProcessRunner.run(
            URL(fileURLWithPath: "/usr/bin/openssl"),
            arguments: [
                "verify", "-CAfile", directory.appendingPathComponent("ca.crt").path,
                directory.appendingPathComponent("tls.crt").path,
            ])
        #expect(verify.standardOutput.hasSuffix(": OK\n"), "\(verify.standardOutput)\(verify.standardError)")
        let text = try await ProcessRunner.run(
            URL(fileURLWithPath: "/usr/bin/openssl"),
            arguments: [
                "x509", "-noout", "-ext", "subjectAltName", "-in", directory.appendingPathComponent("tls.crt").path,
            ])
        #expect(text.standardOutput.contains("DNS:portcullis.portcullis-system.svc, IP Address:127.0.0.1"))
        let attributes = try FileManager.default.attributesOfItem(
            atPath: directory.appendingPathComponent("tls.key").path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let secret = try await portcullis(["certs", "--secret", "webhook-tls", "--dns-name", "x.svc"])
        #expect(secret.standardOutput.contains("type: kubernetes.io/tls"))
        #expect(!secret.standardOutput.contains("ca.key"))
        let neither = try await portcullis(["certs", "--ip", "not-an-ip", "--out", directory.path])
        #expect(neither.exitCode == 1)
        #expect(neither.standardError.contains("\"not-an-ip\" is not an IPv4 or IPv6 address"))
    }

    @Test("webhook config sends only what the policies decide, split by failure policy")
    func configuration() async throws {
        let directory = try Paths.makeScratchDirectory("webhook-config")
        _ = try await portcullis(["certs", "--out", directory.path, "--dns-name", "x.svc"])
        let result = try await portcullis([
            "webhook", "config", "--policies",
            Paths.packageRoot.appendingPathComponent("manifests/policies/examples").path,
            "--service", "portcullis-system/portcullis-webhook:443", "--ca-file",
            directory.appendingPathComponent("ca.crt").path,
        ])
        #expect(result.exitCode == 0, "\(result.standardError)")
        let text = result.standardOutput
        #expect(text.contains("kind: ValidatingWebhookConfiguration"))
        #expect(text.contains("name: stamp.portcullis.portcullis.dev"), "approvals are always stamped")
        #expect(!text.contains("name: mutate-"), "no example policy mutates")
        #expect(
            text.contains(
                #"- {apiGroups: ["apps"], apiVersions: ["*"], resources: ["deployments"], operations: [CREATE, UPDATE], scope: "*"}"#
            ))
        #expect(text.contains(#"resources: ["pods/exec"], operations: [CONNECT]"#))
        #expect(!text.contains(#"resources: ["secrets"]"#), "secret masking is read-only: nothing to admit")
        #expect(
            text.contains(
                "service: {namespace: portcullis-system, name: portcullis-webhook, port: 443, path: /validate}"))
        #expect(text.contains("timeoutSeconds: 5"))
        #expect(text.contains("matchPolicy: Equivalent"))
        #expect(text.contains("values: [kube-system, portcullis-system]"))
        #expect(text.contains("name: guard.portcullis.portcullis.dev"))
    }

    @Test("webhook serve reloads its policies on SIGHUP keeping the last good set, and drains on SIGTERM")
    func serveReloadDrain() async throws {
        let directory = try Paths.makeScratchDirectory("webhook-run")
        let certificates = try await portcullis(["certs", "--out", directory.path, "--ip", "127.0.0.1"])
        #expect(certificates.exitCode == 0, "\(certificates.standardError)")
        let policyFile = directory.appendingPathComponent("p.yaml")
        func writePolicy(action: String, expression: String = "true") throws {
            try """
            apiVersion: portcullis.dev/v1alpha1
            kind: AccessPolicy
            metadata: {name: configmaps}
            spec:
              match: {resources: [configmaps]}
              rules:
              - {name: r, action: \(action), expression: "\(expression)", message: "configmaps are closed"}
            """.write(to: policyFile, atomically: true, encoding: .utf8)
        }
        try writePolicy(action: "Deny")
        let webhook = try BackgroundProcess(
            executable: Paths.productsDirectory.appendingPathComponent("portcullis"),
            arguments: [
                "webhook", "--policies", policyFile.path, "--host", "127.0.0.1", "--port", "0", "--tls-cert",
                directory.appendingPathComponent("tls.crt").path, "--tls-key",
                directory.appendingPathComponent("tls.key").path,
            ],
            environment: ["HOME": directory.path])
        defer { webhook.stop() }
        let port = try #require(Int(try await webhook.waitForMatch(#"https://127\.0\.0\.1:(\d+)"#)))
        func review() async throws -> String {
            let body = #"""
                {"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"group":"","version":"v1","kind":"ConfigMap"},"resource":{"group":"","version":"v1","resource":"configmaps"},"namespace":"dev","name":"c","operation":"CREATE","userInfo":{"username":"alice"},"object":{"metadata":{"name":"c"}}}}
                """#
            return try await ProcessRunner.run(
                URL(fileURLWithPath: "/usr/bin/curl"),
                arguments: [
                    "-sS", "--cacert", directory.appendingPathComponent("ca.crt").path, "-H",
                    "content-type: application/json", "--data-binary", body, "https://127.0.0.1:\(port)/validate",
                ]
            ).standardOutput
        }
        #expect(try await review().contains("configmaps are closed"))

        try writePolicy(action: "Deny", expression: "request.verb ==")
        webhook.signal(SIGHUP)
        _ = try await webhook.waitForMatch("(reload failed; the previous policies stay in force)")
        #expect(try await review().contains("configmaps are closed"))

        try writePolicy(action: "Allow")
        webhook.signal(SIGHUP)
        _ = try await webhook.waitForMatch("(policies reloaded)")
        #expect(try await review().contains(#""allowed":true"#))

        webhook.signal(SIGTERM)
        #expect(try await webhook.waitForExit(timeout: .seconds(30)) == 0, "\(webhook.transcript)")
    }

    private func portcullis(_ arguments: [String]) async throws -> ProcessResult {
        try await ProcessRunner.run(Paths.productsDirectory.appendingPathComponent("portcullis"), arguments: arguments)
    }
}
