import Foundation
import TestSupport
import Testing

/// `portcullis sessions` and `portcullis replay` on recordings the proxy made of real exec sessions.
extension ProxyIntegrationTests {
    @Test("a recorded exec is listed by `portcullis sessions` and replayed as asciinema replays it")
    func sessionsAndReplay() async throws {
        let running = try await Fixture.shared.start()
        let id = UUID().uuidString.prefix(8).lowercased()
        let script = "printf 'replay-\(id) caf\\303\\251\\n'; seq 1 200; echo warn-\(id) >&2; exit 5"
        let proxied = try await Self.kubectl(
            ["-n", "dev", "exec", "web", "-c", "app", "--", "sh", "-c", script], as: .alice)
        #expect(proxied.exitCode == 5, "\(proxied.standardError)")
        let (end, _) = try await Self.sessionAudit(running, containing: "replay-\(id)")
        let session = try #require(end["auditID"] as? String)
        let annotations = try #require(end["annotations"] as? [String: String])
        let path = try #require(annotations["portcullis.dev/recording"])
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path

        let listed = try await Self.portcullis(["sessions", "--dir", directory, "--user", "alice", "-o", "json"])
        #expect(listed.exitCode == 0, "\(listed.standardError)")
        let entries = try #require(
            try JSONSerialization.jsonObject(with: Data(listed.standardOutput.utf8)) as? [[String: Any]])
        let entry = try #require(entries.first { $0["session"] as? String == session }, "\(listed.standardOutput)")
        #expect(entry["user"] as? String == "alice")
        #expect(entry["pod"] as? String == "web")
        #expect(entry["namespace"] as? String == "dev")
        #expect(entry["result"] as? String == "exit 5")
        #expect(entry["path"] as? String == path)
        #expect(entries.allSatisfy { $0["user"] as? String == "alice" })

        let table = try await Self.portcullis(["sessions", "--dir", directory, "--pod", "web*"])
        #expect(table.standardOutput.hasPrefix("SESSION "))
        #expect(table.standardOutput.contains(session))
        let nobody = try await Self.portcullis(["sessions", "--dir", directory, "--user", "nobody-\(id)"])
        #expect(nobody.exitCode == 0)
        #expect(!nobody.standardOutput.contains(session))

        // By a unique prefix, printed at once (not a terminal): exactly what `asciinema cat` prints.
        let replayed = try await Self.portcullis([
            "replay", String(session.prefix(13)), "--dir", directory, "--markers",
        ])
        #expect(replayed.exitCode == 0, "\(replayed.standardError)")
        let expected = try await Asciinema.cat(path)
        #expect(replayed.standardOutput == expected)
        // stdout and stderr are separate streams: their order in the recording is the order they
        // reached the proxy, so only each stream's own order is certain.
        #expect(replayed.standardOutput.contains("replay-\(id) café\n"))
        #expect(replayed.standardOutput.contains("\n1\n2\n3\n"))
        #expect(replayed.standardOutput.contains("warn-\(id)\n"))
        #expect(replayed.standardError.contains("[portcullis] exit 5"))
        #expect(replayed.standardError.contains("[portcullis] policy: "))

        let missing = try await Self.portcullis(["replay", "no-such-\(id)", "--dir", directory])
        #expect(missing.exitCode == 1)
        #expect(missing.standardError.contains("no recording named no-such-\(id)"))
        let badSpeed = try await Self.portcullis(["replay", session, "--dir", directory, "--speed", "0"])
        #expect(badSpeed.exitCode != 0)
        #expect(badSpeed.standardError.contains("--speed must be a positive number"))
    }
}
