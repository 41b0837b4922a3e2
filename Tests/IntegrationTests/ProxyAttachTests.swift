import Foundation
import TestSupport
import Testing

/// `kubectl attach` through the proxy: the node agent's container main process is a shell that
/// reads the attached client's stdin, and a client's stdin EOF ends it.
extension ProxyIntegrationTests {
    @Test(
        "attach through the proxy carries stdin, stdout and stderr, and is recorded and audited",
        .timeLimit(.minutes(3)))
    func attach() async throws {
        let running = try await Fixture.shared.start()
        // One after the other: every attach joins the same main process.
        for minor in ["1.27", "1.33"] {
            let id = "\(UUID().uuidString.prefix(8).lowercased())-\(minor)"
            let attached = try await Self.kubectl(
                ["-n", "dev", "attach", "-i", "web", "-c", "app"], as: .alice, minor: minor,
                input: "echo attached-\(id); echo err-\(id) >&2; exit 0\n")
            #expect(attached.exitCode == 0, "kubectl \(minor): \(attached.standardError)")
            #expect(attached.standardOutput.contains("attached-\(id)\n"), "kubectl \(minor)")
            #expect(!attached.standardOutput.contains("err-\(id)"), "stderr stays apart, kubectl \(minor)")
            #expect(attached.standardError.contains("err-\(id)\n"), "kubectl \(minor): \(attached.standardError)")

            let (end, cast) = try await Self.attachSession(running, printing: "attached-\(id)")
            #expect((end["user"] as? [String: Any])?["username"] as? String == "alice")
            let annotations = try #require(end["annotations"] as? [String: String])
            #expect(annotations["portcullis.dev/exit-code"] == "0")
            #expect(annotations["portcullis.dev/transport"]?.hasPrefix(Self.expectedTransport(minor)) == true)
            let portcullis = try #require(cast.header["portcullis"] as? [String: Any])
            #expect(portcullis["user"] as? String == "alice")
            #expect(portcullis["pod"] as? String == "web")
            #expect(portcullis["container"] as? String == "app")
            #expect(cast.events.contains { $0.code == "i" && $0.data.contains("echo attached-\(id)") })
            #expect(cast.events.contains { $0.code == "o" && $0.data.contains("err-\(id)") })
        }
    }

    /// The end record of the attach session whose recording shows `text`: attach URIs carry no
    /// command to tell sessions apart.
    static func attachSession(
        _ running: Running, printing text: String
    ) async throws -> (end: [String: Any], cast: Asciicast) {
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            let events = try String(contentsOf: running.auditFile, encoding: .utf8).split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
            for event in events
            where (event["requestURI"] as? String)?.contains("/pods/web/attach") == true
                && event["stage"] as? String == "ResponseComplete"
            {
                guard let path = (event["annotations"] as? [String: String])?["portcullis.dev/recording"],
                    let cast = try? Asciicast(contentsOf: path),
                    cast.events.contains(where: { $0.code == "o" && $0.data.contains(text) })
                else { continue }
                return (event, cast)
            }
            guard ContinuousClock.now < deadline else {
                throw TestSupportError("no recorded attach session printed \(text)")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }
}
