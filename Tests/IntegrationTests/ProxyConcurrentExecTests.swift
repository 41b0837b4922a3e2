import Foundation
import Sandbox
import TestSupport
import Testing

/// Many exec sessions through the proxy at once: each is its own pair of terminated sessions, so
/// nothing one command prints may reach another's client, status or recording.
extension ProxyIntegrationTests {
    static let concurrentSessions = 50

    @Test(
        "50 concurrent exec sessions each get their own output, stderr and exit code, and their own recording",
        .timeLimit(.minutes(5)))
    func concurrentExecs() async throws {
        let running = try await Fixture.shared.start()
        let run = String(UUID().uuidString.prefix(8)).lowercased()
        let kubeconfig = try running.kubeconfig(.alice)
        // One home per kubectl version, its discovery cache filled first: the burst is of exec
        // sessions, not of the ~40 discovery requests (each a TLS handshake) a cold kubectl makes,
        // which on two cores time out kubectl's 10 s handshake limit before any exec starts.
        var homes: [String: URL] = [:]
        for minor in ["1.27", "1.33"] {
            let home = try Paths.makeScratchDirectory("home")
            let warm = try await Kubectl.named(minor).run(
                ["-n", "dev", "get", "pod", "web", "-o", "name"], kubeconfig: kubeconfig, home: home)
            #expect(warm.exitCode == 0, "\(warm.standardError)")
            homes[minor] = home
        }
        let results = try await withThrowingTaskGroup(of: (Int, ProcessResult).self) { group in
            for index in 0..<Self.concurrentSessions {
                // Alternate SPDY (1.27) and WebSocket (1.33) clients in the same burst.
                let minor = index.isMultiple(of: 2) ? "1.27" : "1.33"
                let home = try #require(homes[minor])
                group.addTask {
                    let result = try await Kubectl.named(minor).run(
                        ["-n", "dev", "exec", "web", "-c", "app", "--", "sh", "-c", Self.script(run, index)],
                        kubeconfig: kubeconfig, home: home)
                    return (index, result)
                }
            }
            var results: [Int: ProcessResult] = [:]
            for try await (index, result) in group { results[index] = result }
            return results
        }

        for index in 0..<Self.concurrentSessions {
            let result = try #require(results[index])
            let tag = "\(run)-\(index)"
            #expect(result.exitCode == Int32(index % 50 + 1), "session \(index): \(result.standardError)")
            #expect(result.standardOutput == Self.expectedOutput(tag), "session \(index) got another's bytes")
            #expect(
                Kubectl.withoutClientLog(result.standardError).hasPrefix("err-\(tag)\n"),
                "session \(index): \(result.standardError)")
        }

        // Every session has its own end record and recording, holding only its own output.
        for index in 0..<Self.concurrentSessions {
            let tag = "\(run)-\(index)"
            let (end, _) = try await Self.sessionAudit(running, containing: "out-\(tag)%3B")
            let annotations = try #require(end["annotations"] as? [String: String])
            #expect(annotations["portcullis.dev/exit-code"] == String(index % 50 + 1))
            let path = try #require(annotations["portcullis.dev/recording"])
            let output = try Asciicast(contentsOf: path).events.filter { $0.code == "o" }.map(\.data).joined()
            #expect(output.contains("out-\(tag)\n"), "recording of session \(index)")
            #expect(output.components(separatedBy: "out-\(run)-").count == 2, "recording of session \(index)")
        }
    }

    /// Prints its tag, then 300 numbered lines carrying it, so any mixing shows.
    static func script(_ run: String, _ index: Int) -> String {
        let tag = "\(run)-\(index)"
        return "echo out-\(tag); for i in $(seq 1 300); do echo \"\(tag):$i\"; done; echo err-\(tag) >&2; "
            + "exit \(index % 50 + 1)"
    }

    static func expectedOutput(_ tag: String) -> String {
        "out-\(tag)\n" + (1...300).map { "\(tag):\($0)\n" }.joined()
    }
}
