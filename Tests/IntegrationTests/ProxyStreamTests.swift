import Foundation
import Sandbox
import TestSupport
import Testing

/// Exec through the proxy, terminated and re-originated: what kubectl sees must match what it sees
/// straight from the apiserver, and every session leaves an asciicast recording and a session-end
/// audit record.
extension ProxyIntegrationTests {
    /// The transport each kubectl uses for exec: WebSocket from 1.30 on, SPDY before.
    static func expectedTransport(_ minor: String) -> String {
        (Int(minor.split(separator: ".")[1]) ?? 0) >= 30 ? "websocket" : "spdy"
    }

    @Test(
        "exec output, stderr and the exit code through the proxy match the apiserver's own, and are recorded",
        .timeLimit(.minutes(3)), arguments: Kubectl.baselineMinors)
    func execMatchesDirect(minor: String) async throws {
        let running = try await Fixture.shared.start()
        let id = UUID().uuidString.prefix(8).lowercased()
        let script =
            "echo out-\(id); seq 1 3000; head -c 70000 /dev/zero | tr '\\0' x; echo; echo err-\(id) >&2; exit 3"
        let command = ["-n", "dev", "exec", "web", "-c", "app", "--", "sh", "-c", script]
        let direct = try await Kubectl.named(minor).run(
            command, kubeconfig: running.cluster.kubeconfig(for: "alice"),
            home: try Paths.makeScratchDirectory("home"))
        let proxied = try await Self.kubectl(command, as: .alice, minor: minor)
        #expect(direct.exitCode == 3, "\(direct.standardError)")
        #expect(proxied.exitCode == 3, "\(proxied.standardError)")
        #expect(proxied.standardOutput == direct.standardOutput, "stdout must be byte-identical")
        #expect(proxied.standardOutput.hasPrefix("out-\(id)\n1\n2\n"))
        #expect(Kubectl.withoutClientLog(proxied.standardError).hasPrefix("err-\(id)\n"), "\(proxied.standardError)")
        #expect(proxied.standardError.contains("command terminated with exit code 3"))
        #expect(!proxied.standardOutput.contains("err-"), "stderr stays apart")

        let (end, started) = try await Self.sessionAudit(running, containing: "out-\(id)")
        let annotations = try #require(end["annotations"] as? [String: String])
        #expect(annotations["portcullis.dev/exit-code"] == "3")
        #expect(Int(annotations["portcullis.dev/bytes-out"] ?? "") ?? 0 >= proxied.standardOutput.utf8.count)
        #expect(annotations["portcullis.dev/transport"]?.hasPrefix(Self.expectedTransport(minor)) == true)
        #expect((started["responseStatus"] as? [String: Any])?["code"] as? Int == 101)
        let path = try #require(annotations["portcullis.dev/recording"])
        #expect(path.hasSuffix("\(end["auditID"] as? String ?? "?").cast"))

        let cast = try Asciicast(contentsOf: path)
        let portcullis = try #require(cast.header["portcullis"] as? [String: Any])
        #expect(portcullis["session"] as? String == end["auditID"] as? String)
        #expect(portcullis["user"] as? String == "alice")
        #expect(portcullis["groups"] as? [String] == ["developers", "system:authenticated"])
        #expect((portcullis["cluster"] as? String)?.hasPrefix("127.0.0.1:") == true)
        #expect(portcullis["namespace"] as? String == "dev")
        #expect(portcullis["pod"] as? String == "web")
        #expect(portcullis["container"] as? String == "app")
        #expect(portcullis["command"] as? [String] == ["sh", "-c", script])
        #expect(portcullis["transport"] as? String == Self.expectedTransport(minor))
        #expect((portcullis["kubectlVersion"] as? String)?.hasPrefix("v\(minor).") == true, "\(portcullis)")
        #expect(cast.header["width"] as? Int == 80)
        #expect(cast.events.first?.code == "m")
        #expect(cast.events.last?.code == "m")
        #expect(cast.events.last?.data == "exit 3")
        let output = cast.events.filter { $0.code == "o" }.map(\.data).joined()
        #expect(output.replacingOccurrences(of: "err-\(id)\n", with: "") == direct.standardOutput)

        let played = try await Asciinema.cat(path)
        #expect(played.replacingOccurrences(of: "err-\(id)\n", with: "") == direct.standardOutput)
    }

    @Test(
        "stdin is piped through, and its end reaches the command", .timeLimit(.minutes(3)),
        arguments: Kubectl.baselineMinors)
    func execStandardInput(minor: String) async throws {
        let running = try await Fixture.shared.start()
        let id = UUID().uuidString.prefix(8).lowercased()
        let input = "input-\(id)\n" + (0..<3000).map { "line \($0)" }.joined(separator: "\n") + "\n"
        let result = try await Self.kubectl(
            [
                "-n", "dev", "exec", "-i", "web", "-c", "app", "--", "sh", "-c",
                "cat; echo done-\(id); wc -c </dev/null",
            ],
            as: .alice, minor: minor, input: input)
        #expect(result.exitCode == 0, "\(result.standardError)")
        #expect(result.standardOutput.hasPrefix(input + "done-\(id)\n"), "\(result.standardOutput.suffix(200))")

        let (end, _) = try await Self.sessionAudit(running, containing: "done-\(id)")
        let annotations = try #require(end["annotations"] as? [String: String])
        #expect(annotations["portcullis.dev/bytes-in"] == String(input.utf8.count))
        #expect(annotations["portcullis.dev/exit-code"] == "0")
        let cast = try Asciicast(contentsOf: try #require(annotations["portcullis.dev/recording"]))
        #expect(cast.events.filter { $0.code == "i" }.map(\.data).joined() == input)
        #expect(cast.events.last?.data == "exit 0")
    }

    @Test(
        "kubectl cp (tar over exec) moves 20 MiB both ways through the proxy, recorded as the files it moved",
        .timeLimit(.minutes(3)), arguments: ["1.27", "1.33"])
    func copyThroughProxy(minor: String) async throws {
        let running = try await Fixture.shared.start()
        let id = UUID().uuidString.prefix(8).lowercased()
        let scratch = try Paths.makeScratchDirectory("cp")
        let local = scratch.appendingPathComponent("payload.bin")
        var generator = SystemRandomNumberGenerator()
        let words = (0..<(20 << 20) / 8).map { _ in generator.next() }  // 20 MiB
        let payload = words.withUnsafeBytes { Data($0) }
        try payload.write(to: local)
        // The node agent's pods share this machine's filesystem; a directory of its own makes the
        // upload's command (`-C DIRECTORY`) unique to this test.
        let remoteDirectory = "/tmp/portcullis-cp-\(id)"
        let remote = "\(remoteDirectory)/payload.bin"
        try FileManager.default.createDirectory(atPath: remoteDirectory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: remoteDirectory) }
        let upload = try await Self.kubectl(
            ["cp", local.path, "dev/web:\(remote)", "-c", "app"], as: .alice, minor: minor)
        #expect(upload.exitCode == 0, "\(upload.standardError)")
        // The upload is `tar … -xmf - -C /tmp`, recorded as the entries it carried.
        let (uploadEnd, _) = try await Self.sessionAudit(
            running, containing: "command=-C&command=%2Ftmp%2Fportcullis-cp-\(id)")
        let uploadAnnotations = try #require(uploadEnd["annotations"] as? [String: String])
        #expect(uploadAnnotations["portcullis.dev/copy-direction"] == "upload")
        #expect(uploadAnnotations["portcullis.dev/copy-entries"] == "1")
        #expect(Int(uploadAnnotations["portcullis.dev/copy-bytes"] ?? "") ?? 0 > payload.count)
        let uploadCast = try Asciicast(contentsOf: try #require(uploadAnnotations["portcullis.dev/recording"]))
        #expect(
            uploadCast.events.contains {
                $0.code == "m" && $0.data == "cp upload: payload.bin (\(payload.count) bytes)"
            },
            "\(uploadCast.events.map(\.data))")
        let back = scratch.appendingPathComponent("back.bin")
        let download = try await Self.kubectl(
            ["cp", "dev/web:\(remote)", back.path, "-c", "app"], as: .alice, minor: minor)
        #expect(download.exitCode == 0, "\(download.standardError)")
        #expect(try Data(contentsOf: back) == payload)

        // The download is `tar cf - PATH` (kubectl runs `test -d PATH` too, which exits 1).
        let (end, _) = try await Self.sessionAudit(
            running, containing: "command=tar&command=cf&command=-&command=%2Ftmp%2Fportcullis-cp-\(id)%2Fpayload.bin")
        let annotations = try #require(end["annotations"] as? [String: String])
        #expect(annotations["portcullis.dev/exit-code"] == "0")
        #expect(Int(annotations["portcullis.dev/bytes-out"] ?? "") ?? 0 > payload.count)
        let path = try #require(annotations["portcullis.dev/recording"])
        let cast = try Asciicast(contentsOf: path)
        #expect(cast.events.last?.data == "exit 0")
        // The archive itself is not in the recording: its entry and the total are.
        #expect(annotations["portcullis.dev/copy-direction"] == "download")
        #expect(annotations["portcullis.dev/copy-entries"] == "1")
        let markers = cast.events.filter { $0.code == "m" }.map(\.data)
        #expect(
            markers.contains("cp download: tmp/portcullis-cp-\(id)/payload.bin (\(payload.count) bytes)"), "\(markers)")
        #expect(
            markers.contains {
                $0.hasPrefix("cp download: \(annotations["portcullis.dev/copy-bytes"] ?? "?") bytes, 1 entries")
            })
        let recordingSize = try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int ?? .max
        #expect(recordingSize < 64 * 1024, "the recording holds metadata, not the \(payload.count) bytes")
        _ = try await Asciinema.cat(path)
    }

    @Test("an exec RBAC refuses upstream is refused through the proxy with the apiserver's message")
    func execRefusedUpstream() async throws {
        let result = try await Self.kubectl(["-n", "prod", "exec", "web", "--", "true"], as: .alice)
        #expect(result.exitCode == 1)
        #expect(
            result.standardError.contains(#"User "alice" cannot create resource "pods/exec""#),
            "\(result.standardError)")
    }

    @Test(
        "exec -it through the proxy: a real terminal, its size and a resize recorded", .timeLimit(.minutes(3)),
        arguments: ["1.27", "1.33"])
    func execInteractiveTerminal(minor: String) async throws {
        let running = try await Fixture.shared.start()
        let id = UUID().uuidString.prefix(8).lowercased()
        let terminal = try TerminalSession(
            executable: try Kubectl.named(minor).path,
            arguments: [
                "--kubeconfig", try running.kubeconfig(.alice).path, "-n", "dev", "exec", "-it", "web", "-c", "app",
                "--", "sh", "-c", "echo tty-\(id); exec sh",
            ],
            environment: Kubectl.environment(home: try Paths.makeScratchDirectory("home")), rows: 33, columns: 101)
        try await terminal.waitFor("tty-\(id)")
        terminal.send("test -t 0 && echo stdin-is-a-tty; stty size\r")
        try await terminal.waitFor("33 101")
        terminal.resize(rows: 40, columns: 120)
        try await Task.sleep(for: .milliseconds(500))
        terminal.send("stty size\r")
        try await terminal.waitFor("40 120")
        terminal.send("exit 4\r")
        let status = try await terminal.waitForExit()
        #expect(status == 4, "\(terminal.transcript)")

        let (end, _) = try await Self.sessionAudit(running, containing: "tty-\(id)")
        let annotations = try #require(end["annotations"] as? [String: String])
        #expect(annotations["portcullis.dev/exit-code"] == "4")
        let cast = try Asciicast(contentsOf: try #require(annotations["portcullis.dev/recording"]))
        let sizes = [cast.header["width"] as? Int ?? 0, cast.header["height"] as? Int ?? 0]
        let resizes = cast.events.filter { $0.code == "r" }.map(\.data)
        #expect(sizes == [101, 33] || resizes.first == "101x33", "\(sizes) \(resizes)")
        #expect(resizes.contains("120x40"), "\(resizes)")
        #expect(cast.events.filter { $0.code == "o" }.map(\.data).joined().contains("stdin-is-a-tty"))
        #expect(cast.events.filter { $0.code == "i" }.map(\.data).joined().contains("stty size\r"))
        #expect(cast.events.last?.data == "exit 4")
    }

    /// The session's two audit records (start at the 101, end when it finished), found by a text
    /// unique to its command. The end record may follow kubectl's exit by a moment.
    static func sessionAudit(
        _ running: Running, containing text: String
    ) async throws -> (end: [String: Any], started: [String: Any]) {
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            let events = try String(contentsOf: running.auditFile, encoding: .utf8).split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
            let session = events.filter { ($0["requestURI"] as? String)?.contains(text) == true }
            let end = session.last {
                $0["stage"] as? String == "ResponseComplete"
                    && ($0["responseStatus"] as? [String: Any])?["code"] as? Int == 101
            }
            if let end {
                let started = try #require(
                    session.last {
                        $0["stage"] as? String == "ResponseStarted"
                            && $0["auditID"] as? String == end["auditID"] as? String
                    })
                return (end, started)
            }
            guard ContinuousClock.now < deadline else {
                throw TestSupportError("no session-end record for \(text): \(session)")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }
}

/// A parsed asciicast v2 file.
struct Asciicast {
    struct Event {
        let time: Double
        let code: String
        let data: String
    }

    let header: [String: Any]
    let events: [Event]

    init(contentsOf path: String) throws {
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        guard let first = lines.first,
            let header = try JSONSerialization.jsonObject(with: Data(first.utf8)) as? [String: Any],
            header["version"] as? Int == 2
        else { throw TestSupportError("\(path) has no asciicast v2 header") }
        self.header = header
        var previous = 0.0
        events = try lines.dropFirst().map { line in
            guard let array = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [Any], array.count == 3,
                let time = (array[0] as? NSNumber)?.doubleValue, let code = array[1] as? String,
                let data = array[2] as? String
            else { throw TestSupportError("not an asciicast event: \(line)") }
            guard time >= previous else { throw TestSupportError("event times go backwards at \(line)") }
            previous = time
            return Event(time: time, code: code, data: data)
        }
    }
}

/// asciinema from PyPI, installed into the machine's cache on first use; a failed install fails
/// the test, it never skips it.
enum Asciinema {
    static let venv = URL(
        fileURLWithPath: ProcessInfo.processInfo.environment["PORTCULLIS_CACHE"] ?? "/var/cache/portcullis"
    ).appendingPathComponent("venv-asciinema")

    static func executable() async throws -> URL {
        let binary = venv.appendingPathComponent("bin/asciinema")
        if FileManager.default.isExecutableFile(atPath: binary.path) { return binary }
        let created = try await ProcessRunner.run(
            URL(fileURLWithPath: "/usr/bin/env"), arguments: ["python3", "-m", "venv", venv.path])
        guard created.succeeded else { throw TestSupportError("python3 -m venv failed: \(created.standardError)") }
        let installed = try await ProcessRunner.run(
            venv.appendingPathComponent("bin/python"), arguments: ["-m", "pip", "install", "--quiet", "asciinema"])
        guard installed.succeeded, FileManager.default.isExecutableFile(atPath: binary.path) else {
            throw TestSupportError("pip install asciinema failed: \(installed.standardError)")
        }
        return binary
    }

    /// `asciinema cat FILE`: the recorded output, as a terminal would have received it.
    static func cat(_ path: String) async throws -> String {
        let result = try await ProcessRunner.run(
            try await executable(), arguments: ["cat", path],
            environment: ["LANG": "C.UTF-8", "PYTHONIOENCODING": "utf-8", "HOME": NSTemporaryDirectory()])
        guard result.succeeded else { throw TestSupportError("asciinema cat \(path) failed: \(result.standardError)") }
        return result.standardOutput
    }
}
