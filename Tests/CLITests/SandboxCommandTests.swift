import Foundation
import Sandbox
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `portcullis sandbox` end to end, with the real binary in a scratch directory. These start their
/// own cluster (the sandbox is what is under test), separate from the shared test cluster.
@Suite("portcullis sandbox", .serialized, .timeLimit(.minutes(5)))
struct SandboxCommandTests {
    @Test("--detach returns a working cluster and down stops every process it started")
    func detachedLifecycle() async throws {
        let workspace = try Paths.makeScratchDirectory("sandbox-detached")
        let started = ContinuousClock.now
        let up = try await portcullis(["sandbox", "--detach"], in: workspace)
        let startup = ContinuousClock.now - started
        #expect(up.exitCode == 0, "\(up.standardOutput)\(up.standardError)")
        #expect(up.standardOutput.contains("portcullis sandbox down"))
        print("sandbox --detach was ready after \(startup)")

        let kubeconfig = workspace.appendingPathComponent(".sandbox/admin.kubeconfig")
        let namespaces = try await Kubectl.named("1.33").run(
            ["get", "ns", "-o", "name"], kubeconfig: kubeconfig, home: workspace)
        #expect(namespaces.exitCode == 0, "\(namespaces.standardError)")
        #expect(namespaces.standardOutput.contains("namespace/dev"))

        try await tryThePrintedCommands(welcome: up.standardOutput, workspace: workspace)
        try await checkReplicas(workspace: workspace)

        let again = try await portcullis(["sandbox", "--detach"], in: workspace)
        #expect(again.exitCode == 0, "a second --detach reuses the running sandbox: \(again.standardError)")
        let alice = try await Kubectl.named("1.33").run(
            ["-n", "dev", "get", "pods", "-o", "name"],
            kubeconfig: workspace.appendingPathComponent(".sandbox/kubeconfig"), home: workspace)
        #expect(alice.standardOutput.contains("pod/web"), "the kubeconfigs still work: \(alice.standardError)")

        let pids = try componentPIDs(in: workspace)
        #expect(pids.count == 7)
        #expect(pids.allSatisfy { processState($0) == .running })

        let down = try await portcullis(["sandbox", "down"], in: workspace)
        #expect(down.exitCode == 0, "\(down.standardError)")
        for pid in pids {
            #expect(processState(pid) != .running, "pid \(pid) is still running after down")
        }
        #expect(!FileManager.default.fileExists(atPath: kubeconfig.path))

        let status = try await portcullis(["sandbox", "status"], in: workspace)
        #expect(status.exitCode == 3)
        #expect(status.standardOutput.hasPrefix("stopped"))
    }

    @Test("in the foreground it runs until Ctrl-C and then stops everything")
    func foregroundLifecycle() async throws {
        let workspace = try Paths.makeScratchDirectory("sandbox-foreground")
        let sandbox = try BackgroundProcess(
            executable: Paths.productsDirectory.appendingPathComponent("portcullis"),
            arguments: ["sandbox"], environment: environment(in: workspace), currentDirectory: workspace)
        _ = try await sandbox.waitForMatch("(Press Ctrl-C to stop it)", timeout: .seconds(900))

        let kubeconfig = workspace.appendingPathComponent(".sandbox/admin.kubeconfig")
        let namespaces = try await Kubectl.named("1.33").run(["get", "ns"], kubeconfig: kubeconfig, home: workspace)
        #expect(namespaces.exitCode == 0, "\(namespaces.standardError)")
        let pids = try componentPIDs(in: workspace)
        #expect(pids.count == 7)
        let alice = try await Kubectl.named("1.33").run(
            ["-n", "dev", "exec", "web", "-c", "app", "--", "echo", "through the proxy"],
            kubeconfig: workspace.appendingPathComponent(".sandbox/kubeconfig"), home: workspace)
        #expect(alice.standardOutput == "through the proxy\n", "\(alice.standardError)")

        sandbox.interrupt()
        let status = try await sandbox.waitForExit(timeout: .seconds(60))
        #expect(status == 0, "\(sandbox.transcript)")
        #expect(sandbox.transcript.contains("Stopped."))
        for pid in pids {
            #expect(processState(pid) == .gone, "pid \(pid) was left behind")
        }
    }

    @Test(
        "subcommands whose feature has not landed say so and exit 2",
        arguments: [
            ["forward"]
        ])
    func unavailableCommands(arguments: [String]) async throws {
        let result = try await portcullis(arguments, in: Paths.scratchRoot)
        #expect(result.exitCode == 2)
        #expect(result.standardOutput.contains("not available yet"))
    }

    /// Runs the three commands the welcome text prints, as printed (kubectl 1.33 as `kubectl`):
    /// an allowed exec, a blocked recursive delete, and an approval by a second identity.
    private func tryThePrintedCommands(welcome: String, workspace: URL) async throws {
        let commands = welcome.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { $0.hasPrefix("kubectl ") || $0.contains(" approve ") }
        try #require(commands.count == 5, "the welcome text prints five commands:\n\(welcome)")
        let bin = try Paths.makeScratchDirectory("sandbox-bin")
        try FileManager.default.createSymbolicLink(
            at: bin.appendingPathComponent("kubectl"), withDestinationURL: try Kubectl.named("1.33").path)
        func shell(_ command: String) async throws -> ProcessResult {
            var environment = self.environment(in: workspace)
            environment["PATH"] = bin.path + ":" + (environment["PATH"] ?? "/usr/bin:/bin")
            return try await ProcessRunner.run(
                URL(fileURLWithPath: "/bin/bash"), arguments: ["-c", command], environment: environment,
                currentDirectory: workspace)
        }

        let allowed = try await shell(commands[0])
        #expect(allowed.exitCode == 0, "\(commands[0]): \(allowed.standardError)")
        #expect(allowed.standardOutput.hasPrefix("Linux"))

        let victim = "/tmp/portcullis-demo"
        try FileManager.default.createDirectory(atPath: victim, withIntermediateDirectories: true)
        let blocked = try await shell(commands[1])
        #expect(blocked.exitCode != 0)
        #expect(
            blocked.standardError.contains("recursive deletes are blocked in production"), "\(blocked.standardError)")
        #expect(FileManager.default.fileExists(atPath: victim), "the blocked command did not run")

        let held = try await shell(commands[2])
        #expect(held.exitCode != 0)
        let name = try #require(
            held.standardError.firstMatch(of: /AccessRequest (\S+);/).map { String($0.1) }, "\(held.standardError)")
        let approved = try await shell(commands[3].replacingOccurrences(of: " NAME", with: " \(name)"))
        #expect(approved.exitCode == 0, "\(approved.standardError)")
        let released = try await shell(commands[4])
        #expect(released.exitCode == 0, "\(released.standardError)")
        #expect(!released.standardOutput.isEmpty)

        // Straight to the apiserver with the admin kubeconfig: the webhook checks the same policies.
        let direct = try await shell(
            "kubectl --kubeconfig .sandbox/admin.kubeconfig -n prod exec web -c app -- rm -rf \(victim)")
        #expect(direct.exitCode != 0)
        #expect(
            direct.standardError.contains("recursive deletes are blocked in production"), "\(direct.standardError)")
        #expect(FileManager.default.fileExists(atPath: victim))

        let audit = try String(contentsOf: workspace.appendingPathComponent(".sandbox/audit.jsonl"), encoding: .utf8)
        #expect(audit.contains("\"username\":\"alice\""))
        #expect(audit.contains("\"username\":\"bob\""))
        let recordings = try FileManager.default.contentsOfDirectory(
            atPath: workspace.appendingPathComponent(".sandbox/recordings").path)
        let casts = recordings.filter { $0.hasSuffix(".cast") }
        #expect(casts.count >= 2, "the allowed and the approved exec: \(recordings)")
    }

    /// Both replicas behind the one address answer requests, and a policy applied with kubectl
    /// reaches both within 2 s.
    private func checkReplicas(workspace: URL) async throws {
        let settings = try SandboxSettings(
            envFileContents: String(
                contentsOf: workspace.appendingPathComponent(".sandbox/sandbox.env"), encoding: .utf8))
        let alice = workspace.appendingPathComponent(".sandbox/kubeconfig")
        let admin = workspace.appendingPathComponent(".sandbox/admin.kubeconfig")
        let kubectl = try Kubectl.named("1.33")
        let list = ["-n", "dev", "get", "configmaps"]

        let policy = """
            apiVersion: portcullis.dev/v1alpha1
            kind: AccessPolicy
            metadata: {name: sandbox-test-no-listing}
            spec:
              match: {namespaces: [dev], resources: [configmaps], subjects: [{user: alice}]}
              rules:
              - {name: no-listing, action: Deny, expression: "request.verb == 'list'", message: "sandbox test: no listing"}
            """
        let applied = try await kubectl.run(
            ["apply", "-f", "-"], kubeconfig: admin, home: workspace, standardInput: Data(policy.utf8))
        #expect(applied.exitCode == 0, "\(applied.standardError)")
        let started = ContinuousClock.now
        var first: Duration?
        while first == nil, ContinuousClock.now - started < .seconds(2) {
            let answer = try await kubectl.run(list, kubeconfig: alice, home: workspace)
            if answer.standardError.contains("sandbox test: no listing") { first = ContinuousClock.now - started }
        }
        #expect(first != nil, "the policy was not enforced within 2 s of kubectl apply")
        // Ten more connections: the kernel hashes each to one replica, so both get some.
        var refusals = 0
        for _ in 0..<10 {
            let denied = try await kubectl.run(list, kubeconfig: alice, home: workspace)
            if denied.standardError.contains("sandbox test: no listing") { refusals += 1 }
        }
        #expect(refusals == 10, "every replica enforces the applied policy")
        _ = try await kubectl.run(
            ["delete", "accesspolicy", "sandbox-test-no-listing"], kubeconfig: admin, home: workspace)

        for port in [settings.managementPort, settings.secondManagementPort] {
            let metrics = try await ProcessRunner.run(
                URL(fileURLWithPath: "/usr/bin/curl"), arguments: ["-sf", "http://127.0.0.1:\(port)/metrics"])
            let answered = metrics.standardOutput.split(separator: "\n")
                .filter { $0.hasPrefix("portcullis_proxy_requests_total{") }
                .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }
                .reduce(0, +)
            #expect(answered > 0, "the replica with management port \(port) answered no request")
        }
    }

    private func portcullis(_ arguments: [String], in directory: URL) async throws -> ProcessResult {
        try await ProcessRunner.run(
            Paths.productsDirectory.appendingPathComponent("portcullis"), arguments: arguments,
            environment: environment(in: directory), currentDirectory: directory)
    }

    private func environment(in directory: URL) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["PORTCULLIS_TESTENV_SCRIPTS"] = Paths.packageRoot.appendingPathComponent("scripts/testenv").path
        environment["HOME"] = directory.path
        return environment
    }

    /// The supervisor, etcd, kube-apiserver, node agent, webhook and both proxy replicas of the
    /// sandbox in `workspace`.
    private func componentPIDs(in workspace: URL) throws -> [Int32] {
        let run = workspace.appendingPathComponent(".sandbox/cluster/run")
        return try ["supervisor", "etcd", "apiserver", "node-agent", "webhook", "proxy-1", "proxy-2"].map { name in
            let text = try String(contentsOf: run.appendingPathComponent("\(name).pid"), encoding: .utf8)
            return try #require(Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)))
        }
    }
}

enum ProcessState { case running, zombie, gone }

/// Reads /proc; a zombie has exited but was not reaped by its parent.
func processState(_ pid: Int32) -> ProcessState {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
    else { return .gone }
    let state = stat[stat.index(close, offsetBy: 2)]
    return state == "Z" || state == "X" ? .zombie : .running
}
