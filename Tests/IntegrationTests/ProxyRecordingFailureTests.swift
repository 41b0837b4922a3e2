import Foundation
import KubeProxy
import Policy
import Sandbox
import TestSupport
import Testing

/// What happens to a session whose recording cannot be opened, and a session that outlives the
/// heartbeats' timeouts.
extension ProxyIntegrationTests {
    /// A second proxy, like the fixture's but recording into `recordings`, and a kubeconfig for
    /// alice through it.
    static func proxy(
        recordings: SessionRecordingSettings, auditFile: URL
    ) async throws -> (ProxyServer, URL) {
        let running = try await Fixture.shared.start()
        let cluster = running.cluster
        let upstream = try UpstreamConfiguration.kubeconfig(cluster.kubeconfig(for: "proxy").path)
        let chain = AuthenticatorChain([
            try StaticTokenAuthenticator(contentsOf: cluster.pkiDirectory.appendingPathComponent("tokens.csv").path)
        ])
        let server = try ProxyServer(
            configuration: .init(
                host: "127.0.0.1", port: 0,
                certificateChainFile: running.directory.appendingPathComponent("tls.crt").path,
                privateKeyFile: running.directory.appendingPathComponent("tls.key").path),
            upstream: upstream, policies: PolicyStore(PolicyEngine(policies: [])),
            authenticate: chain.callerAuthenticator, audit: try AuditLog(path: auditFile.path),
            recordings: recordings)
        let port = try await server.start()
        let kubeconfig = try Paths.makeScratchDirectory("recording-proxy").appendingPathComponent("alice.kubeconfig")
        try """
        apiVersion: v1
        kind: Config
        clusters: [{name: p, cluster: {server: "https://127.0.0.1:\(port)", certificate-authority: "\(running.caFile.path)"}}]
        users: [{name: alice, user: {token: "\(cluster.token(for: .alice))"}}]
        contexts: [{name: p, context: {cluster: p, user: alice}}]
        current-context: p
        """.write(to: kubeconfig, atomically: true, encoding: .utf8)
        return (server, kubeconfig)
    }

    @Test(
        "failClosed refuses a session whose recording cannot be opened; without it the session runs and the audit says so",
        .timeLimit(.minutes(3)), arguments: ["1.27", "1.33"])
    func recordingCannotBeOpened(minor: String) async throws {
        let scratch = try Paths.makeScratchDirectory("recording-failure")
        let missing = scratch.appendingPathComponent("missing").path
        let audit = scratch.appendingPathComponent("audit.jsonl")

        let (closed, closedConfig) = try await Self.proxy(
            recordings: .init(directory: missing, failClosed: true), auditFile: audit)
        let refused = try await Kubectl.named(minor).run(
            ["-n", "dev", "exec", "web", "-c", "app", "--", "echo", "should-not-run"], kubeconfig: closedConfig,
            home: try Paths.makeScratchDirectory("home"))
        try await closed.shutdown()
        #expect(refused.exitCode == 1)
        #expect(!refused.standardOutput.contains("should-not-run"))
        #expect(
            refused.standardError.contains("this session must be recorded and the recording cannot be opened"),
            "\(refused.standardError)")

        let (open, openConfig) = try await Self.proxy(
            recordings: .init(directory: missing, failClosed: false), auditFile: audit)
        let ran = try await Kubectl.named(minor).run(
            ["-n", "dev", "exec", "web", "-c", "app", "--", "echo", "unrecorded-\(minor)"], kubeconfig: openConfig,
            home: try Paths.makeScratchDirectory("home"))
        #expect(ran.exitCode == 0, "\(ran.standardError)")
        #expect(ran.standardOutput == "unrecorded-\(minor)\n")
        try await Task.sleep(for: .milliseconds(500))
        try await open.shutdown()
        let events = try String(contentsOf: audit, encoding: .utf8).split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        let end = try #require(
            events.last {
                ($0["requestURI"] as? String)?.contains("unrecorded-\(minor)") == true
                    && $0["stage"] as? String == "ResponseComplete"
            })
        let annotations = try #require(end["annotations"] as? [String: String])
        #expect(annotations["portcullis.dev/recording-error"]?.contains("cannot create the recording") == true)
        #expect(annotations["portcullis.dev/exit-code"] == "0")
    }

    @Test(
        "a WebSocket session longer than kubectl's 61-second pong deadline stays up",
        .timeLimit(.minutes(3)), arguments: ["1.33"])
    func longSession(minor: String) async throws {
        let result = try await Self.kubectl(
            ["-n", "dev", "exec", "web", "-c", "app", "--", "sh", "-c", "sleep 66; echo still-here"], as: .alice,
            minor: minor)
        #expect(result.exitCode == 0, "\(result.standardError)")
        #expect(result.standardOutput == "still-here\n")
    }
}
