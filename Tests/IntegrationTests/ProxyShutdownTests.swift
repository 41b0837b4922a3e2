import Foundation
import KubeProxy
import Sandbox
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `portcullis proxy` (the real binary) stopped with SIGTERM while an exec session runs through
/// it: the session outlives the grace period, so the proxy ends it, and everything it owes the
/// session still happens: kubectl hears why (a non-zero exit, never a silent 0), the recording is
/// closed and valid, and the audit record is written.
@Suite("Proxy shutdown with sessions open", .serialized, .timeLimit(.minutes(5)))
struct ProxyShutdownTests {
    @Test(
        "SIGTERM mid-exec: kubectl fails with the shutdown message, the recording is complete and valid, the audit says why",
        .timeLimit(.minutes(3)), arguments: ["1.27", "1.33"])
    func sigtermMidSession(minor: String) async throws {
        let cluster = try await TestCluster.shared()
        let directory = try Paths.makeScratchDirectory("proxy-shutdown")
        let portcullis = Paths.productsDirectory.appendingPathComponent("portcullis")
        let certificates = try await ProcessRunner.run(
            portcullis, arguments: ["certs", "--out", directory.path, "--ip", "127.0.0.1"],
            environment: ["HOME": directory.path, "PATH": "/usr/bin:/bin"])
        #expect(certificates.succeeded, "\(certificates.standardError)")
        let recordings = directory.appendingPathComponent("recordings")
        try FileManager.default.createDirectory(at: recordings, withIntermediateDirectories: true)
        let auditFile = directory.appendingPathComponent("audit.jsonl")
        let configuration = directory.appendingPathComponent("proxy.yaml")
        try """
        listen: {host: 127.0.0.1, port: 0, shutdownGraceSeconds: 2}
        tls: {certFile: \(directory.path)/tls.crt, keyFile: \(directory.path)/tls.key}
        upstream: {kubeconfig: \(cluster.kubeconfig(for: "proxy").path)}
        authentication: {staticTokenFile: \(cluster.pkiDirectory.path)/tokens.csv}
        audit: {path: \(auditFile.path)}
        recordings: {directory: \(recordings.path), failClosed: true}
        """.write(to: configuration, atomically: true, encoding: .utf8)
        let proxy = try BackgroundProcess(
            executable: portcullis, arguments: ["proxy", "--config", configuration.path],
            environment: ["HOME": directory.path])
        defer { proxy.stop() }
        let port = try #require(Int(try await proxy.waitForMatch(#"listening on https://127\.0\.0\.1:(\d+)"#)))
        let kubeconfig = directory.appendingPathComponent("alice.kubeconfig")
        try """
        apiVersion: v1
        kind: Config
        clusters: [{name: p, cluster: {server: "https://127.0.0.1:\(port)", certificate-authority: "\(directory.path)/ca.crt"}}]
        users: [{name: alice, user: {token: "\(cluster.token(for: .alice))"}}]
        contexts: [{name: p, context: {cluster: p, user: alice}}]
        current-context: p
        """.write(to: kubeconfig, atomically: true, encoding: .utf8)

        // Ticks until stopped; the writes fail once the session is gone, so nothing lingers.
        let marker = "shutdown-\(minor)-\(UUID().uuidString.prefix(6))"
        let script = "echo \(marker) started; i=0; while [ $i -lt 240 ]; do sleep 0.25; i=$((i+1)); echo tick $i; done"
        let exec = try BackgroundProcess(
            executable: try Kubectl.named(minor).path,
            arguments: [
                "--kubeconfig", kubeconfig.path, "-n", "dev", "exec", "web", "-c", "app", "--", "sh", "-c", script,
            ],
            environment: Kubectl.environment(home: directory))
        defer { exec.stop() }
        _ = try await exec.waitForMatch("(tick 2)")

        proxy.signal(SIGTERM)
        let kubectlStatus = try await exec.waitForExit(timeout: .seconds(60))
        #expect(kubectlStatus != 0, "\(exec.transcript)")
        #expect(exec.transcript.contains(ProxyServer.shutdownMessage), "\(exec.transcript)")
        #expect(try await proxy.waitForExit(timeout: .seconds(30)) == 0, "\(proxy.transcript)")
        #expect(proxy.transcript.contains("ending sessions still open after the grace period"), "\(proxy.transcript)")

        // The recording: one file, valid asciicast v2, the output up to the end, and why it ended.
        let files = try FileManager.default.contentsOfDirectory(atPath: recordings.path)
        #expect(files.count == 1, "\(files)")
        let path = recordings.appendingPathComponent(try #require(files.first)).path
        let cast = try Asciicast(contentsOf: path)
        let output = cast.events.filter { $0.code == "o" }.map(\.data).joined()
        #expect(output.hasPrefix("\(marker) started\ntick 1\ntick 2\n"), "\(output)")
        #expect(cast.events.last?.code == "m")
        #expect(cast.events.last?.data == "error: \(ProxyServer.shutdownMessage)")
        #expect(try await Asciinema.cat(path) == output)

        // The audit: the session's end record names the reason.
        let events = try String(contentsOf: auditFile, encoding: .utf8).split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        let end = try #require(
            events.last {
                ($0["requestURI"] as? String)?.contains(marker) == true && $0["stage"] as? String == "ResponseComplete"
            })
        let annotations = try #require(end["annotations"] as? [String: String])
        #expect(annotations["portcullis.dev/session-error"] == ProxyServer.shutdownMessage)
        #expect(annotations["portcullis.dev/recording"] == path)
        #expect((end["user"] as? [String: Any])?["username"] as? String == "alice")
    }
}
