import Foundation
import TestSupport
import Testing

/// Mask rules with `patterns` on exec output, through the real proxy: the client, the recording
/// and the audit all see the masked session.
extension ProxyIntegrationTests {
    @Test(
        "exec output matching a Mask rule's patterns is masked for the client and in the recording",
        .timeLimit(.minutes(3)), arguments: ["1.27", "1.33"])
    func execOutputMasked(minor: String) async throws {
        let running = try await Fixture.shared.start()
        let id = UUID().uuidString.prefix(8).lowercased()
        // A card number, a token placed to straddle a 32 KiB boundary, and filler between.
        let script = [
            "echo MASKTEST-\(id)", "printf 'card 4111 1111 1111 1111 end\\n'",
            "head -c 32750 /dev/zero | tr '\\0' y", "printf ' tok_0123456789abcdef01234567 '",
            "head -c 100000 /dev/zero | tr '\\0' z", "echo", "echo done-\(id)",
        ].joined(separator: "; ")
        let command = ["-n", "dev", "exec", "web", "-c", "app", "--", "sh", "-c", script]
        let direct = try await Kubectl.named(minor).run(
            command, kubeconfig: running.cluster.kubeconfig(for: "alice"),
            home: try Paths.makeScratchDirectory("home"))
        #expect(direct.exitCode == 0, "\(direct.standardError)")
        #expect(direct.standardOutput.contains("4111 1111 1111 1111"), "the apiserver's own output is not masked")

        let proxied = try await Self.kubectl(command, as: .alice, minor: minor)
        #expect(proxied.exitCode == 0, "\(proxied.standardError)")
        let expected = direct.standardOutput.replacingOccurrences(of: "4111 1111 1111 1111", with: "[masked]")
            .replacingOccurrences(of: "tok_0123456789abcdef01234567", with: "[masked]")
        #expect(proxied.standardOutput == expected)

        let (end, _) = try await Self.sessionAudit(running, containing: "MASKTEST-\(id)")
        let annotations = try #require(end["annotations"] as? [String: String])
        #expect(annotations["portcullis.dev/masked-matches"] == "2")
        let path = try #require(annotations["portcullis.dev/recording"])
        let cast = try Asciicast(contentsOf: path)
        let recorded = cast.events.filter { $0.code == "o" }.map(\.data).joined()
        #expect(recorded == expected, "the recording holds what the client saw")
        #expect(
            cast.events.contains {
                $0.code == "m" && $0.data == "masking output: test-output-masking/mask-in-marked-sessions"
            })
    }
}
