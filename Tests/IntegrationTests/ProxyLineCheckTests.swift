import Foundation
import Sandbox
import TestSupport
import Testing

/// Each command line typed into an exec session is checked before the shell runs it: real kubectl
/// in a pty → Portcullis → the apiserver → the node agent's `sh` (dash) on a real pty.
///
/// The remote commands run on this machine (the node agent runs them locally), so the tests can
/// look at the files a line would have touched. Shell output that must come from running a line
/// (not from the terminal echoing it) is computed by the shell: `$((6*7))` prints 42.
extension ProxyIntegrationTests {
    @Test(
        "exec -it: ls works, rm -rf of a file is blocked with the policy's message, and the shell goes on",
        .timeLimit(.minutes(3)), arguments: ["1.27", "1.33"])
    func interactiveLineBlocked(minor: String) async throws {
        let running = try await Fixture.shared.start()
        let id = UUID().uuidString.prefix(8).lowercased()
        let path = "/tmp/portcullis-line-\(id)"
        #expect(FileManager.default.createFile(atPath: path, contents: Data("keep\n".utf8)))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let terminal = try TerminalSession(
            executable: try Kubectl.named(minor).path,
            arguments: [
                "--kubeconfig", try running.kubeconfig(.bob).path, "-n", "prod", "exec", "-it", "web", "-c", "app",
                "--", "sh", "-c", "echo line-\(id); exec sh",
            ],
            environment: Kubectl.environment(home: try Paths.makeScratchDirectory("home")))
        try await terminal.waitFor("line-\(id)")
        terminal.send("ls \(path) && echo listed-$((6*7))\r")
        try await terminal.waitFor("listed-42")
        #expect(terminal.transcript.contains("\(path)\r\n"), "ls printed the file")

        terminal.send("rm -rf \(path)\r")
        try await terminal.waitFor(
            "[portcullis] blocked by policy exec-guardrails/no-recursive-delete: recursive deletes are blocked in production"
        )
        terminal.send("echo after-$((6*7))\r")
        try await terminal.waitFor("after-42")
        #expect(FileManager.default.fileExists(atPath: path), "the blocked line did not run")
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "keep\n")

        // Up arrow: the shell's history, which the proxy cannot read, so the line is refused.
        terminal.send("\u{1B}[A\r")
        try await terminal.waitFor(
            "[portcullis] blocked: this line was recalled from the shell's history, so the proxy cannot check what it runs"
        )
        terminal.send("echo still-$((6*7))\r")
        try await terminal.waitFor("still-42")
        #expect(FileManager.default.fileExists(atPath: path))

        terminal.send("exit 0\r")
        #expect(try await terminal.waitForExit() == 0, "\(terminal.transcript)")
        #expect(FileManager.default.fileExists(atPath: path))

        let (end, started) = try await Self.sessionAudit(running, containing: "line-\(id)")
        let annotations = try #require(end["annotations"] as? [String: String])
        #expect(annotations["portcullis.dev/line-checks"]?.contains("exec-guardrails") == true, "\(annotations)")
        let startAnnotations = try #require(started["annotations"] as? [String: String])
        #expect(startAnnotations["portcullis.dev/line-checks"] == annotations["portcullis.dev/line-checks"])
        #expect(annotations["portcullis.dev/lines-blocked"] == "2", "\(annotations)")
        #expect(annotations["portcullis.dev/lines-approved"] == "0")
        #expect(annotations["portcullis.dev/lines-checked"] == "6", "\(annotations)")
        let cast = try Asciicast(contentsOf: try #require(annotations["portcullis.dev/recording"]))
        let markers = cast.events.filter { $0.code == "m" }.map(\.data)
        #expect(markers.contains("line blocked by policy exec-guardrails/no-recursive-delete: rm -rf \(path)"))
        #expect(markers.contains("line allowed"))
        #expect(markers.contains { $0.hasPrefix("typed lines are checked by: ") && $0.contains("exec-guardrails") })
        #expect(markers.contains("line blocked (uncertain: history): "))
        let output = cast.events.filter { $0.code == "o" }.map(\.data).joined()
        #expect(output.contains("[portcullis] blocked by policy exec-guardrails/no-recursive-delete"))
    }

    @Test(
        "exec -it: a Review line runs only after another identity approves it with portcullis approve",
        .timeLimit(.minutes(3)))
    func interactiveLineApproved() async throws {
        let running = try await Fixture.shared.start()
        let id = UUID().uuidString.prefix(8).lowercased()
        let path = "/tmp/portcullis-approved-\(id)"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let terminal = try TerminalSession(
            executable: try Kubectl.named("1.33").path,
            arguments: [
                "--kubeconfig", try running.kubeconfig(.alice).path, "-n", "dev", "exec", "-it", "web", "-c", "app",
                "--", "sh", "-c", "echo review-\(id); exec sh",
            ],
            environment: Kubectl.environment(home: try Paths.makeScratchDirectory("home")))
        try await terminal.waitFor("review-\(id)")
        terminal.send("touch \(path) && echo touched-$((6*7))\r")
        try await terminal.waitFor("[portcullis] touching approved files needs approval: waiting for approval ar-")
        let name = try #require(terminal.transcript.firstMatch(of: /waiting for approval (ar-[a-z0-9]+)/)?.1)
            .description
        #expect(terminal.transcript.contains("run `portcullis approve -n \(running.approvalsNamespace) \(name)`"))
        try await Task.sleep(for: .seconds(1))
        #expect(!FileManager.default.fileExists(atPath: path), "nothing runs before the approval")

        let own = try await Self.portcullis([
            "approve", "-n", running.approvalsNamespace, name, "--kubeconfig", try running.kubeconfig(.alice).path,
        ])
        #expect(own.exitCode == 1, "the requester cannot approve their own line")
        #expect(!FileManager.default.fileExists(atPath: path))
        let approved = try await Self.portcullis([
            "approve", "-n", running.approvalsNamespace, name, "--kubeconfig", try running.kubeconfig(.bob).path,
        ])
        #expect(approved.exitCode == 0, "\(approved.standardError)")
        try await terminal.waitFor("[portcullis] approved by bob")
        try await terminal.waitFor("touched-42")
        #expect(FileManager.default.fileExists(atPath: path))

        // Another held line, given up with Ctrl-C while it waits: it never runs.
        terminal.send("touch \(path)-2\r")
        let deadline = ContinuousClock.now + .seconds(20)
        while terminal.transcript.components(separatedBy: "waiting for approval ar-").count < 3 {
            guard ContinuousClock.now < deadline else {
                throw TestSupportError("no second wait: \(terminal.transcript)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        terminal.send("\u{03}")
        try await terminal.waitFor("stopped waiting for approval")
        terminal.send("echo back-$((6*7))\r")
        try await terminal.waitFor("back-42")
        #expect(!FileManager.default.fileExists(atPath: "\(path)-2"))
        defer { try? FileManager.default.removeItem(atPath: "\(path)-2") }

        terminal.send("exit 0\r")
        #expect(try await terminal.waitForExit() == 0, "\(terminal.transcript)")
        let (end, _) = try await Self.sessionAudit(running, containing: "review-\(id)")
        let annotations = try #require(end["annotations"] as? [String: String])
        #expect(annotations["portcullis.dev/lines-approved"] == "1", "\(annotations)")
        #expect(annotations["portcullis.dev/lines-blocked"] == "1", "\(annotations)")
        let cast = try Asciicast(contentsOf: try #require(annotations["portcullis.dev/recording"]))
        #expect(
            cast.events.contains {
                $0.code == "m" && $0.data.hasPrefix("line approved by bob (\(running.approvalsNamespace)/\(name))")
            })
    }

    @Test("exec -i without a terminal: lines before a blocked one run, the blocked one and the rest never do")
    func pipedLineBlocked() async throws {
        let running = try await Fixture.shared.start()
        let id = UUID().uuidString.prefix(8).lowercased()
        let path = "/tmp/portcullis-piped-\(id)"
        #expect(FileManager.default.createFile(atPath: path, contents: Data("keep\n".utf8)))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let result = try await Self.kubectl(
            ["-n", "prod", "exec", "-i", "web", "-c", "app", "--", "sh", "-c", "echo piped-\(id); exec sh"], as: .bob,
            input: "echo one-$((6*7))\nrm -rf \(path)\necho two-$((6*7))\n")
        #expect(result.exitCode == 0, "\(result.standardError)")
        #expect(result.standardOutput == "piped-\(id)\none-42\n")
        #expect(
            result.standardError.contains(
                "[portcullis] blocked by policy exec-guardrails/no-recursive-delete: recursive deletes are blocked"),
            "\(result.standardError)")
        #expect(FileManager.default.fileExists(atPath: path))
        let (end, _) = try await Self.sessionAudit(running, containing: "piped-\(id)")
        let annotations = try #require(end["annotations"] as? [String: String])
        #expect(annotations["portcullis.dev/lines-blocked"] == "1", "\(annotations)")
    }

    @Test("a session no policy reads the lines of is not checked: stdin goes through untouched")
    func uncheckedSession() async throws {
        let running = try await Fixture.shared.start()
        let id = UUID().uuidString.prefix(8).lowercased()
        let path = "/tmp/portcullis-unchecked-\(id)"
        #expect(FileManager.default.createFile(atPath: path, contents: Data("x".utf8)))
        defer { try? FileManager.default.removeItem(atPath: path) }
        // In dev the test policy reads lines of terminals only; this session has none.
        let result = try await Self.kubectl(
            ["-n", "dev", "exec", "-i", "web", "-c", "app", "--", "sh", "-c", "echo unchecked-\(id); exec sh"],
            as: .alice, input: "rm -rf \(path)\necho gone-$((6*7))\n")
        #expect(result.exitCode == 0, "\(result.standardError)")
        #expect(result.standardOutput == "unchecked-\(id)\ngone-42\n")
        #expect(!FileManager.default.fileExists(atPath: path))
        let (end, _) = try await Self.sessionAudit(running, containing: "unchecked-\(id)")
        let annotations = try #require(end["annotations"] as? [String: String])
        #expect(annotations["portcullis.dev/line-checks"] == nil, "\(annotations)")
        #expect(annotations["portcullis.dev/lines-checked"] == nil)
    }
}

extension ProxyIntegrationTests {
    @Test(
        "exec -it into bash (readline, bracketed paste): a blocked line and a paste holding one never run",
        .timeLimit(.minutes(3)))
    func interactiveLineBlockedInBash() async throws {
        let running = try await Fixture.shared.start()
        let id = UUID().uuidString.prefix(8).lowercased()
        let path = "/tmp/portcullis-bash-\(id)"
        #expect(FileManager.default.createFile(atPath: path, contents: Data("keep\n".utf8)))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let terminal = try TerminalSession(
            executable: try Kubectl.named("1.33").path,
            arguments: [
                "--kubeconfig", try running.kubeconfig(.bob).path, "-n", "prod", "exec", "-it", "web", "-c", "app",
                "--", "bash", "--norc", "--noprofile", "-c", "echo bash-\(id); exec bash --norc --noprofile -i",
            ],
            environment: Kubectl.environment(home: try Paths.makeScratchDirectory("home")))
        try await terminal.waitFor("bash-\(id)")
        terminal.send("echo ready-$((6*7))\r")
        try await terminal.waitFor("ready-42")

        // Typed with an edit: the line readline holds is rm -rf PATH.
        terminal.send("-rf \(path)\u{01}rm \r")
        try await terminal.waitFor("[portcullis] blocked by policy exec-guardrails/no-recursive-delete")
        terminal.send("echo after-$((6*7))\r")
        try await terminal.waitFor("after-42")
        #expect(FileManager.default.fileExists(atPath: path), "readline dropped the line on Ctrl-C")

        // A paste (as a terminal sends it once bash asked for bracketed paste) with a blocked line
        // in the middle: the paste is ended and cleared, none of its lines run.
        let before = terminal.transcript.count
        terminal.send("\u{1B}[200~echo p1-$((6*7))\nrm -rf \(path)\necho p2-$((6*7))\n\u{1B}[201~")
        try await Task.sleep(for: .milliseconds(300))
        terminal.send("echo done-$((6*7))\r")
        try await terminal.waitFor("done-42")
        let pasted = String(terminal.transcript.dropFirst(before))
        #expect(pasted.contains("[portcullis] blocked by policy exec-guardrails/no-recursive-delete"), "\(pasted)")
        #expect(!pasted.contains("p1-42"), "the paste's first line was held in readline's buffer and cleared")
        #expect(!pasted.contains("p2-42"))
        #expect(FileManager.default.fileExists(atPath: path))

        terminal.send("exit 0\r")
        #expect(try await terminal.waitForExit() == 0, "\(terminal.transcript)")
    }
}

extension ProxyIntegrationTests {
    @Test("kubectl cp into a pod whose piped lines a policy checks is stopped at the first line over the limit")
    func copyIntoCheckedPod() async throws {
        let running = try await Fixture.shared.start()
        let id = UUID().uuidString.prefix(8).lowercased()
        let scratch = try Paths.makeScratchDirectory("cp-lines")
        let local = scratch.appendingPathComponent("zeros.bin")
        try Data(count: 64 * 1024).write(to: local)
        let remote = "/tmp/portcullis-cp-lines-\(id).bin"
        defer { try? FileManager.default.removeItem(atPath: remote) }
        let upload = try await Self.kubectl(["cp", local.path, "prod/web:\(remote)", "-c", "app"], as: .bob)
        #expect(
            upload.standardError.contains(
                "[portcullis] blocked: this line is longer than \(CommandLineLimit.characters) characters"),
            "\(upload.exitCode) \(upload.standardError)")
        let size = (try? FileManager.default.attributesOfItem(atPath: remote)[.size] as? Int) ?? 0
        #expect(size < 64 * 1024, "the upload did not complete")
        let (end, _) = try await Self.sessionAudit(running, containing: "namespaces/prod/pods/web/exec?command=tar")
        let annotations = try #require(end["annotations"] as? [String: String])
        #expect(annotations["portcullis.dev/lines-blocked"] == "1", "\(annotations)")
    }
}

/// The proxy's line limit, as its notice prints it.
enum CommandLineLimit {
    static let characters = 4096
}
