import Foundation
import TestSupport
import Testing

/// Real kubectl binaries against this module's SPDY server side (protocols.md §2, §3, §5).
///
/// kubectl ≥ 1.30 tries WebSocket first; the fake apiserver answers 400 and kubectl falls back to SPDY.
@Suite("Real kubectl against the SPDY server side", .serialized, .timeLimit(.minutes(5)))
struct KubectlInteropTests {
    static let versions = ["1.20", "1.27", "1.28", "1.29", "1.30", "1.31", "1.32", "1.33", "1.37"]

    @Test("non-tty exec keeps stdout and stderr apart and exits with the remote code 3", arguments: versions)
    func execExitCode(version: String) async throws {
        let kubectl = try Kubectl.named(version)
        let harness = try await Harness.start()
        defer { Task { try await harness.stop() } }
        let result = try await harness.run(
            kubectl, ["exec", "x", "-c", "c1", "--", "sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 3"])
        #expect(result.exitCode == 3, "\(result.standardError)\n\(harness.server.log.text)")
        #expect(result.standardOutput == "to-stdout\n")
        // client-go logs "Unknown stream id 1" when the empty connected marker (protocols.md §4.2) beats
        // its stream registration; that line is the client's, not the command's output.
        #expect(Kubectl.withoutClientLog(result.standardError).hasPrefix("to-stderr\n"))
        #expect(result.standardError.contains("command terminated with exit code 3"))
        // kubectl ≤ 1.28 offers v4 first, later ones v5 (§2).
        let expected = ["1.20", "1.27", "1.28"].contains(version) ? "v4.channel.k8s.io" : "v5.channel.k8s.io"
        #expect(harness.server.log.text.contains("UPGRADE POST /api/v1/namespaces/ns/pods/x/exec?"))
        #expect(harness.server.log.text.contains("-> \(expected)"))
    }

    @Test("stdin piped into exec -i reaches the command and its EOF ends it", arguments: versions)
    func execStdin(version: String) async throws {
        let kubectl = try Kubectl.named(version)
        let harness = try await Harness.start()
        defer { Task { try await harness.stop() } }
        let input = Data("hello through spdy\n".utf8) + pseudoRandomData(count: 300_000, seed: 7).base64EncodedData()
        let result = try await harness.run(
            kubectl, ["exec", "-i", "x", "--", "sh", "-c", "wc -c; echo done"], stdin: input)
        #expect(result.exitCode == 0, "\(result.standardError)\n\(harness.server.log.text)")
        #expect(result.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines) == "\(input.count)\ndone")
    }
}

extension KubectlInteropTests {
    @Test("exec -it gets a terminal of the client's size and follows a resize", arguments: versions)
    func execTerminal(version: String) async throws {
        let kubectl = try Kubectl.named(version)
        let harness = try await Harness.start()
        defer { Task { try await harness.stop() } }
        let terminal = try TerminalSession(
            executable: kubectl.path,
            arguments: ["--kubeconfig", harness.kubeconfig.path, "exec", "-it", "x", "-c", "c1", "--", "sh"],
            environment: harness.environment, rows: 24, columns: 80)
        // kubectl sends the size on its resize stream while the shell starts: ask until it is there.
        try await terminal.send("stty size\n", until: "24 80")
        terminal.resize(rows: 33, columns: 111)
        try await Task.sleep(for: .milliseconds(300))
        try await terminal.send("stty size\n", until: "33 111")
        terminal.send("exit 5\n")
        #expect(try await terminal.waitForExit() == 5, "\(terminal.transcript)\n\(harness.server.log.text)")
    }

    @Test("port-forward carries an HTTP request and a 50 MiB response byte for byte", arguments: versions)
    func portForward(version: String) async throws {
        let kubectl = try Kubectl.named(version)
        let harness = try await Harness.start()
        defer { Task { try await harness.stop() } }
        let small = try LoopbackServer(.http(body: Data("hello from the pod\n".utf8)))
        let body = pseudoRandomData(count: 50 << 20, seed: UInt64(version.hashValue.magnitude))
        let large = try LoopbackServer(.http(body: body))
        let forward = try BackgroundProcess(
            executable: kubectl.path,
            arguments: [
                "--kubeconfig", harness.kubeconfig.path, "port-forward", "pod/x", ":\(small.port)", ":\(large.port)",
            ],
            environment: harness.environment)
        defer { forward.stop() }
        let output = "Forwarding from 127.0.0.1:(\\d+) -> "
        let smallPort = try #require(Int(try await forward.waitForMatch(output + "\(small.port)")))
        let largePort = try #require(Int(try await forward.waitForMatch(output + "\(large.port)")))
        #expect(try await LoopbackClient.httpGet(port: smallPort) == Data("hello from the pod\n".utf8))
        let received = try await LoopbackClient.httpGet(port: largePort)
        #expect(received.count == body.count)
        #expect(received == body, "\(forward.transcript)")
        // A second connection over the same SPDY session (request id 1, 2, …).
        #expect(try await LoopbackClient.httpGet(port: smallPort) == Data("hello from the pod\n".utf8))
        #expect(forward.isRunning, "\(forward.transcript)")
        #expect(
            harness.server.log.text.contains(
                "UPGRADE POST /api/v1/namespaces/ns/pods/x/portforward -> portforward.k8s.io"))
    }

    @Test("kubectl cp moves a 20 MiB file into the pod and back byte for byte (tar over exec)", arguments: versions)
    func copy(version: String) async throws {
        let kubectl = try Kubectl.named(version)
        let harness = try await Harness.start()
        defer { Task { try await harness.stop() } }
        let local = harness.home.appendingPathComponent("payload.bin")
        let podDirectory = harness.home.appendingPathComponent("pod-fs")
        try FileManager.default.createDirectory(at: podDirectory, withIntermediateDirectories: true)
        let payload = pseudoRandomData(count: 20 << 20, seed: 42)
        try payload.write(to: local)
        let remote = podDirectory.appendingPathComponent("copied.bin").path
        let upload = try await harness.run(kubectl, ["cp", local.path, "ns/x:\(remote)", "-c", "c1"])
        #expect(upload.exitCode == 0, "\(upload.standardError)\n\(harness.server.log.text)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: remote)) == payload)

        let back = harness.home.appendingPathComponent("back.bin")
        let download = try await harness.run(kubectl, ["cp", "ns/x:\(remote)", back.path, "-c", "c1"])
        #expect(download.exitCode == 0, "\(download.standardError)\n\(harness.server.log.text)")
        #expect(try Data(contentsOf: back) == payload)
    }
}

/// kubectl's WebSocket transports against this module's WebSocket server side (protocols.md §4, §5.3):
/// exec over `v5.channel.k8s.io` (1.30+) and port-forward through the SPDY tunnel (1.31+).
@Suite("Real kubectl over WebSocket", .serialized, .timeLimit(.minutes(5)))
struct KubectlWebSocketInteropTests {
    static let execVersions = ["1.30", "1.31", "1.32", "1.33", "1.37"]
    static let tunnelVersions = ["1.31", "1.32", "1.33", "1.37"]

    @Test("v5 exec: stdout and stderr apart, stdin through with its EOF (CLOSE), exit code 3", arguments: execVersions)
    func exec(version: String) async throws {
        let kubectl = try Kubectl.named(version)
        let harness = try await Harness.start(webSocket: true)
        defer { Task { try await harness.stop() } }
        let result = try await harness.run(
            kubectl, ["exec", "-i", "x", "-c", "c1", "--", "sh", "-c", "wc -c; echo to-stderr >&2; exit 3"],
            stdin: Data(repeating: 0x61, count: 100_000))
        #expect(result.exitCode == 3, "\(result.standardError)\n\(harness.server.log.text)")
        #expect(result.standardOutput.trimmingCharacters(in: .whitespaces) == "100000\n")
        // client-go logs "Unknown stream id 1" when the empty connected marker (protocols.md §4.2) beats
        // its stream registration; that line is the client's, not the command's output.
        #expect(Kubectl.withoutClientLog(result.standardError).hasPrefix("to-stderr\n"))
        #expect(harness.server.log.text.contains("WEBSOCKET GET /api/v1/namespaces/ns/pods/x/exec?"))
        #expect(harness.server.log.text.contains("-> v5.channel.k8s.io"))
        #expect(!harness.server.log.text.contains("UPGRADE POST"))
    }

    @Test("v5 exec -it: terminal size, resize and exit code", arguments: execVersions)
    func terminal(version: String) async throws {
        let kubectl = try Kubectl.named(version)
        let harness = try await Harness.start(webSocket: true)
        defer { Task { try await harness.stop() } }
        let terminal = try TerminalSession(
            executable: kubectl.path,
            arguments: ["--kubeconfig", harness.kubeconfig.path, "exec", "-it", "x", "-c", "c1", "--", "sh"],
            environment: harness.environment, rows: 24, columns: 80)
        terminal.send("stty size\n")
        try await terminal.waitFor("24 80")
        terminal.resize(rows: 40, columns: 120)
        try await Task.sleep(for: .milliseconds(300))
        terminal.send("stty size\n")
        try await terminal.waitFor("40 120")
        terminal.send("exit 4\n")
        #expect(try await terminal.waitForExit() == 4, "\(terminal.transcript)\n\(harness.server.log.text)")
        #expect(harness.server.log.text.contains("WEBSOCKET GET"))
    }

    @Test("kubectl cp over v5 moves 20 MiB both ways", arguments: execVersions)
    func copy(version: String) async throws {
        let kubectl = try Kubectl.named(version)
        let harness = try await Harness.start(webSocket: true)
        defer { Task { try await harness.stop() } }
        let local = harness.home.appendingPathComponent("payload.bin")
        let podDirectory = harness.home.appendingPathComponent("pod-fs")
        try FileManager.default.createDirectory(at: podDirectory, withIntermediateDirectories: true)
        let payload = pseudoRandomData(count: 20 << 20, seed: 9)
        try payload.write(to: local)
        let remote = podDirectory.appendingPathComponent("copied.bin").path
        let upload = try await harness.run(kubectl, ["cp", local.path, "ns/x:\(remote)", "-c", "c1"])
        #expect(upload.exitCode == 0, "\(upload.standardError)\n\(harness.server.log.text)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: remote)) == payload)
        let back = harness.home.appendingPathComponent("back.bin")
        let download = try await harness.run(kubectl, ["cp", "ns/x:\(remote)", back.path, "-c", "c1"])
        #expect(download.exitCode == 0, "\(download.standardError)\n\(harness.server.log.text)")
        #expect(try Data(contentsOf: back) == payload)
    }

    @Test("port-forward through the SPDY/3.1+portforward.k8s.io tunnel carries 50 MiB", arguments: tunnelVersions)
    func tunnel(version: String) async throws {
        let kubectl = try Kubectl.named(version)
        let harness = try await Harness.start(webSocket: true)
        defer { Task { try await harness.stop() } }
        let body = pseudoRandomData(count: 50 << 20, seed: 5)
        let target = try LoopbackServer(.http(body: body))
        let forward = try BackgroundProcess(
            executable: kubectl.path,
            arguments: ["--kubeconfig", harness.kubeconfig.path, "port-forward", "pod/x", ":\(target.port)"],
            environment: harness.environment)
        defer { forward.stop() }
        let port = try #require(Int(try await forward.waitForMatch("Forwarding from 127.0.0.1:(\\d+) -> ")))
        #expect(try await LoopbackClient.httpGet(port: port) == body, "\(forward.transcript)")
        #expect(try await LoopbackClient.httpGet(port: port) == body, "\(forward.transcript)")
        #expect(harness.server.log.text.contains("-> SPDY/3.1+portforward.k8s.io"), "\(harness.server.log.text)")
        #expect(!harness.server.log.text.contains("UPGRADE POST"))
    }
}
