import Foundation
import KubeProxy
import Policy
import Sandbox
import TestSupport
import Testing
import Webhook

/// kubectl GETs the pod before every exec, on a connection the proxy then pools; the exec's
/// upgrade takes that connection rather than opening another TLS connection to the apiserver.
extension ProxyIntegrationTests {
    @Test("exec upgrades take the pooled connection kubectl's GET of the pod left", .timeLimit(.minutes(3)))
    func upgradesReusePooledConnections() async throws {
        let cluster = try await TestCluster.shared()
        let directory = try Paths.makeScratchDirectory("proxy-reuse")
        let bundle = try CertificateBundle.generate(
            commonName: "127.0.0.1", dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"])
        try bundle.write(to: directory)
        // A proxy of its own: its metrics count only this test's connections.
        let metrics = ProxyMetrics()
        let server = try ProxyServer(
            configuration: .init(
                host: "127.0.0.1", port: 0, certificateChainFile: directory.appendingPathComponent("tls.crt").path,
                privateKeyFile: directory.appendingPathComponent("tls.key").path),
            upstream: try UpstreamConfiguration.kubeconfig(cluster.kubeconfig(for: "proxy").path),
            policies: PolicyStore(PolicyEngine(policies: [])),
            authenticate: AuthenticatorChain([
                try StaticTokenAuthenticator(contentsOf: cluster.pkiDirectory.appendingPathComponent("tokens.csv").path)
            ]).callerAuthenticator,
            approvals: nil, audit: try AuditLog(path: nil), metrics: metrics)
        let port = try await server.start()
        let running = Running(
            cluster: cluster, port: port, directory: directory, caFile: directory.appendingPathComponent("ca.crt"),
            auditFile: directory.appendingPathComponent("audit.jsonl"), approvalsNamespace: "", recordings: directory)
        for minor in ["1.27", "1.33", "1.33"] {
            let result = try await Kubectl.named(minor).run(
                ["-n", "dev", "exec", "web", "-c", "app", "--", "echo", "reused-\(minor)"],
                kubeconfig: try running.kubeconfig(.alice), home: try Paths.makeScratchDirectory("home"))
            #expect(result.exitCode == 0, "\(result.standardError)")
            #expect(result.standardOutput == "reused-\(minor)\n")
        }
        try await server.shutdown(gracePeriod: .seconds(1))
        let rendered = metrics.render()
        #expect(rendered.contains(#"portcullis_proxy_upstream_upgrades_total{connection="pooled"} 3"#), "\(rendered)")
        #expect(!rendered.contains(#"connection="new""#), "\(rendered)")
        #expect(!rendered.contains(#"use="upgrade""#), "no TLS connection was opened for an upgrade")
        #expect(rendered.contains(#"portcullis_proxy_upstream_connections_opened_total{use="requests"}"#))
    }
}
