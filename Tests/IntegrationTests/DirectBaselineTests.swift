import Foundation
import Sandbox
import TestSupport
import Testing

/// The "direct" baseline: real kubectl versions straight to the real kube-apiserver, whose
/// streams reach the node agent (Kubernetes' own kubelet streaming code). Everything the proxy
/// does later must match what these tests see.
@Suite("Direct to the apiserver (baseline)", .serialized, .timeLimit(.minutes(5)))
struct DirectBaselineTests {
    @Test("kubectl lists the namespaces", arguments: Kubectl.baselineMinors)
    func listsNamespaces(minor: String) async throws {
        let (kubectl, cluster, home) = try await setUp(minor)
        let result = try await kubectl.run(
            ["get", "namespaces", "-o", "name"], kubeconfig: cluster.adminKubeconfig, home: home)
        #expect(result.exitCode == 0, "\(result.standardError)")
        let names = Set(result.standardOutput.split(separator: "\n").map(String.init))
        #expect(names.isSuperset(of: ["namespace/dev", "namespace/prod", "namespace/kube-system"]))
    }

    @Test(
        "exec without a tty keeps stdout and stderr apart and surfaces the exit code", arguments: Kubectl.baselineMinors
    )
    func execExitCode(minor: String) async throws {
        let (kubectl, cluster, home) = try await setUp(minor)
        let result = try await kubectl.run(
            ["-n", "dev", "exec", "web", "-c", "app", "--", "sh", "-c", "echo out-$HOSTNAME; echo err >&2; exit 3"],
            kubeconfig: cluster.adminKubeconfig, home: home)
        #expect(result.exitCode == 3)
        #expect(result.standardOutput == "out-web\n")
        #expect(Kubectl.withoutClientLog(result.standardError).hasPrefix("err\n"), "\(result.standardError)")
        #expect(result.standardError.contains("command terminated with exit code 3"))
    }

    @Test("exec passes stdin through to the command", arguments: Kubectl.baselineMinors)
    func execStandardInput(minor: String) async throws {
        let (kubectl, cluster, home) = try await setUp(minor)
        let input = (0..<2000).map { "line \($0)" }.joined(separator: "\n") + "\n"
        let result = try await kubectl.run(
            ["-n", "dev", "exec", "-i", "web", "-c", "app", "--", "sh", "-c", "wc -l; sha256sum"],
            kubeconfig: cluster.adminKubeconfig, home: home, standardInput: Data(input.utf8))
        #expect(result.exitCode == 0, "\(result.standardError)")
        #expect(result.standardOutput.hasPrefix("2000\n"))
    }

    @Test("exec -it runs an interactive shell on a real terminal", arguments: Kubectl.baselineMinors)
    func execInteractiveTerminal(minor: String) async throws {
        let (kubectl, cluster, home) = try await setUp(minor)
        let terminal = try TerminalSession(
            executable: kubectl.path,
            arguments: [
                "--kubeconfig", cluster.adminKubeconfig.path, "-n", "dev", "exec", "-it", "web", "-c", "app", "--",
                "sh",
            ],
            environment: Kubectl.environment(home: home), rows: 33, columns: 101)
        try await terminal.waitFor("# ")
        terminal.send("test -t 0 && echo stdin-is-a-tty; stty size\r")
        try await terminal.waitFor("33 101")
        terminal.send("exit 4\r")
        let status = try await terminal.waitForExit()
        #expect(status == 4, "\(terminal.transcript)")
        #expect(terminal.transcript.contains("stdin-is-a-tty"))
    }

    @Test("port-forward carries an HTTP exchange to a pod port", arguments: Kubectl.baselineMinors)
    func portForward(minor: String) async throws {
        let (kubectl, cluster, home) = try await setUp(minor)
        let body = Data((0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        let server = try LoopbackServer(.http(body: body))
        let forward = try BackgroundProcess(
            executable: kubectl.path,
            arguments: [
                "--kubeconfig", cluster.adminKubeconfig.path, "-n", "dev", "port-forward", "pod/web", ":\(server.port)",
            ],
            environment: Kubectl.environment(home: home))
        defer { forward.stop() }
        let localPort = try #require(Int(try await forward.waitForMatch(#"Forwarding from 127\.0\.0\.1:(\d+)"#)))
        for _ in 0..<2 {
            let received = try await LoopbackClient.httpGet(port: localPort)
            #expect(received == body)
        }
        #expect(forward.isRunning, "port-forward ended early:\n\(forward.transcript)")
    }

    @Test("RBAC applies to the user: alice may exec in dev but not in prod")
    func rbacOnTheUser() async throws {
        let (kubectl, cluster, home) = try await setUp("1.33")
        let alice = cluster.kubeconfig(for: "alice")
        let allowed = try await kubectl.run(["-n", "dev", "exec", "web", "--", "true"], kubeconfig: alice, home: home)
        #expect(allowed.exitCode == 0, "\(allowed.standardError)")
        let denied = try await kubectl.run(["-n", "prod", "exec", "web", "--", "true"], kubeconfig: alice, home: home)
        #expect(denied.exitCode == 1)
        #expect(denied.standardError.contains(#"User "alice" cannot create resource "pods/exec""#))
    }

    private func setUp(_ minor: String) async throws -> (Kubectl, ClusterDescription, URL) {
        let kubectl = try Kubectl.named(minor)
        let cluster = try await TestCluster.shared()
        let home = try Paths.makeScratchDirectory("home-\(minor)")
        return (kubectl, cluster, home)
    }
}
