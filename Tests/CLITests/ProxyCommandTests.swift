import Foundation
import Sandbox
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `portcullis proxy --config`, run as the real binary against the shared test cluster.
@Suite("portcullis proxy", .serialized, .timeLimit(.minutes(5)))
struct ProxyCommandTests {
    @Test("a configuration with an unknown setting is refused with its position")
    func unknownSetting() async throws {
        let directory = try Paths.makeScratchDirectory("proxy-config")
        let file = directory.appendingPathComponent("proxy.yaml")
        try "tls: {certFile: a, keyFile: b}\nupstream: {inCluster: true}\nlisten: {hots: x}\n".write(
            to: file, atomically: true, encoding: .utf8)
        let result = try await portcullis(["proxy", "--config", file.path])
        #expect(result.exitCode == 1)
        #expect(
            result.standardError.contains("proxy.yaml:3:10: unknown setting \"hots\" in listen"),
            "\(result.standardError)")
    }

    @Test("the proxy serves, reloads its policies on SIGHUP keeping the last good set, and drains on SIGTERM")
    func serveReloadDrain() async throws {
        let cluster = try await TestCluster.shared()
        let directory = try Paths.makeScratchDirectory("proxy-run")
        let certificates = try await portcullis(["certs", "--out", directory.path, "--ip", "127.0.0.1"])
        #expect(certificates.exitCode == 0, "\(certificates.standardError)")
        let policies = directory.appendingPathComponent("policies")
        try FileManager.default.createDirectory(at: policies, withIntermediateDirectories: true)
        let policyFile = policies.appendingPathComponent("p.yaml")
        func writePolicy(action: String, expression: String = "true") throws {
            try """
            apiVersion: portcullis.dev/v1alpha1
            kind: AccessPolicy
            metadata: {name: namespaces}
            spec:
              match: {resources: [namespaces]}
              rules:
              - {name: r, action: \(action), expression: "\(expression)", message: "listing namespaces is closed"}
            """.write(to: policyFile, atomically: true, encoding: .utf8)
        }
        try writePolicy(action: "Deny")
        let configuration = directory.appendingPathComponent("proxy.yaml")
        try """
        listen: {host: 127.0.0.1, port: 0}
        tls: {certFile: \(directory.path)/tls.crt, keyFile: \(directory.path)/tls.key}
        upstream: {kubeconfig: \(cluster.kubeconfig(for: "proxy").path)}
        policies: {paths: [\(policies.path)]}
        authentication: {staticTokenFile: \(cluster.pkiDirectory.path)/tokens.csv}
        audit: {path: \(directory.path)/audit.jsonl}
        management: {host: 127.0.0.1, port: 0}
        """.write(to: configuration, atomically: true, encoding: .utf8)
        let proxy = try BackgroundProcess(
            executable: Paths.productsDirectory.appendingPathComponent("portcullis"),
            arguments: ["proxy", "--config", configuration.path], environment: ["HOME": directory.path])
        defer { proxy.stop() }
        let port = try #require(Int(try await proxy.waitForMatch(#"listening on https://127\.0\.0\.1:(\d+)"#)))
        let managementPort = try #require(Int(try await proxy.waitForMatch(#"health and metrics on port (\d+)"#)))
        let kubeconfig = directory.appendingPathComponent("alice.kubeconfig")
        try """
        apiVersion: v1
        kind: Config
        clusters: [{name: p, cluster: {server: "https://127.0.0.1:\(port)", certificate-authority: "\(directory.path)/ca.crt"}}]
        users: [{name: alice, user: {token: "\(cluster.token(for: .alice))"}}]
        contexts: [{name: p, context: {cluster: p, user: alice}}]
        current-context: p
        """.write(to: kubeconfig, atomically: true, encoding: .utf8)
        func listNamespaces() async throws -> ProcessResult {
            try await Kubectl.named("1.33").run(["get", "ns", "-o", "name"], kubeconfig: kubeconfig, home: directory)
        }
        #expect(try await listNamespaces().standardError.contains("listing namespaces is closed"))

        try writePolicy(action: "Deny", expression: "request.verb ==")
        proxy.signal(SIGHUP)
        _ = try await proxy.waitForMatch("(reload failed; the previous policies stay in force)")
        #expect(try await listNamespaces().standardError.contains("listing namespaces is closed"))

        try writePolicy(action: "Allow")
        proxy.signal(SIGHUP)
        _ = try await proxy.waitForMatch("(policies reloaded)")
        let allowed = try await listNamespaces()
        #expect(allowed.exitCode == 0, "\(allowed.standardError)")
        #expect(allowed.standardOutput.contains("namespace/dev"))

        let health = try await ProcessRunner.run(
            URL(fileURLWithPath: "/usr/bin/curl"), arguments: ["-sS", "http://127.0.0.1:\(managementPort)/metrics"])
        #expect(health.standardOutput.contains("portcullis_proxy_requests_total"))

        proxy.signal(SIGTERM)
        #expect(try await proxy.waitForExit(timeout: .seconds(30)) == 0, "\(proxy.transcript)")
    }

    private func portcullis(_ arguments: [String]) async throws -> ProcessResult {
        try await ProcessRunner.run(
            Paths.productsDirectory.appendingPathComponent("portcullis"), arguments: arguments,
            environment: ["HOME": Paths.scratchRoot.path, "PATH": "/usr/bin:/bin"])
    }
}
