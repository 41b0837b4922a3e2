import Foundation
import Sandbox
import TestSupport
import Testing

@Suite("portcullis kubeconfig", .timeLimit(.minutes(5)))
struct KubeconfigCommandTests {
    @Test(
        "an OIDC kubeconfig is read by kubectl as an oidc-login exec plugin with the issuer, client and CA",
        arguments: ["1.20", "1.33", "1.37"])
    func oidc(minor: String) async throws {
        let cluster = try await TestCluster.shared()
        let made = try await portcullis([
            "kubeconfig", "--server", "https://portcullis.example.com:8443", "--certificate-authority",
            cluster.caFile.path, "--oidc-issuer", "https://issuer.example.com/realms/dev", "--client-id", "kubectl",
            "--extra-scope", "groups", "--namespace", "dev",
        ])
        #expect(made.exitCode == 0, "\(made.standardError)")
        let directory = try Paths.makeScratchDirectory("kubeconfig-oidc")
        let file = directory.appendingPathComponent("config")
        try Data(made.standardOutput.utf8).write(to: file)
        let view = try await Kubectl.named(minor).run(
            ["config", "view", "--raw", "-o", "json"], kubeconfig: file, home: directory)
        #expect(view.exitCode == 0, "\(view.standardError)")
        let config = try #require(
            try JSONSerialization.jsonObject(with: Data(view.standardOutput.utf8)) as? [String: Any])
        let cluster0 = try #require((config["clusters"] as? [[String: Any]])?.first?["cluster"] as? [String: Any])
        #expect(cluster0["server"] as? String == "https://portcullis.example.com:8443")
        let authority = try #require(cluster0["certificate-authority-data"] as? String)
        #expect(Data(base64Encoded: authority) == (try Data(contentsOf: cluster.caFile)))
        let user = try #require((config["users"] as? [[String: Any]])?.first?["user"] as? [String: Any])
        let exec = try #require(user["exec"] as? [String: Any])
        #expect(exec["command"] as? String == "kubectl")
        #expect(exec["apiVersion"] as? String == "client.authentication.k8s.io/v1beta1")
        #expect(
            exec["args"] as? [String] == [
                "oidc-login", "get-token", "--oidc-issuer-url=https://issuer.example.com/realms/dev",
                "--oidc-client-id=kubectl", "--oidc-extra-scope=groups",
            ])
        let context = try #require((config["contexts"] as? [[String: Any]])?.first?["context"] as? [String: Any])
        #expect(context["namespace"] as? String == "dev")
        #expect(config["current-context"] as? String == "portcullis")
    }

    @Test("a token kubeconfig, inline or as a file, lets kubectl in as that user; a wrong token does not")
    func token() async throws {
        let cluster = try await TestCluster.shared()
        let directory = try Paths.makeScratchDirectory("kubeconfig-token")
        let tokenFile = directory.appendingPathComponent("token")
        try Data(cluster.token(for: .alice).utf8).write(to: tokenFile)
        let base = ["kubeconfig", "--server", cluster.apiserverURL, "--certificate-authority", cluster.caFile.path]
        for (index, credential) in [
            ["--token", cluster.token(for: .alice)], ["--token-file", tokenFile.path], ["--token", "not-a-token"],
        ].enumerated() {
            let file = directory.appendingPathComponent("config-\(index)")
            let made = try await portcullis(base + credential + ["--namespace", "dev", "--output", file.path])
            #expect(made.exitCode == 0, "\(made.standardError)")
            let attributes = try FileManager.default.attributesOfItem(atPath: file.path)
            #expect((attributes[.posixPermissions] as? Int) == 0o600)
            let pods = try await Kubectl.named("1.33").run(
                ["get", "pods", "-o", "name"], kubeconfig: file, home: directory)
            if index < 2 {
                #expect(pods.exitCode == 0, "\(pods.standardError)")
                #expect(pods.standardOutput.contains("pod/web"), "\(pods.standardOutput)")
            } else {
                #expect(pods.exitCode != 0)
                #expect(pods.standardError.contains("Unauthorized"), "\(pods.standardError)")
            }
        }
        #expect(
            !(try String(contentsOf: directory.appendingPathComponent("config-1"), encoding: .utf8)).contains(
                cluster.token(for: .alice)), "--token-file keeps the token out of the kubeconfig")
    }

    @Test(
        "settings that cannot work are refused with what is wrong, and nothing is printed",
        arguments: [
            (["--server", "https://p:8443"], 64, "give exactly one credential"),
            (["--server", "https://p:8443", "--token", "t", "--token-file", "/t"], 64, "give exactly one credential"),
            (
                ["--server", "https://p:8443", "--oidc-issuer", "https://i"], 64,
                "--oidc-issuer and --client-id go together"
            ),
            (["--server", "https://p:8443", "--token", "t", "--extra-scope", "groups"], 64, "are OIDC settings"),
            (["--server", "http://p:8443", "--token", "t"], 1, "the server must be an https:// URL"),
            (
                ["--server", "https://p", "--oidc-issuer", "issuer.example.com", "--client-id", "k"], 1,
                "the OIDC issuer must be an https:// URL"
            ),
            (["--server", "https://p", "--token-file", "token"], 1, "must be an absolute path"),
            (["--server", "https://p", "--token", "t", "--name", "a b"], 1, "may only hold letters"),
            (["--server", "https://p", "--token", "t", "--certificate-authority", "/etc/hostname"], 1, "not a PEM"),
            (["--server", "https://p", "--token", "t", "--certificate-authority", "/nonexistent/ca.crt"], 1, "error:"),
        ])
    func refused(arguments: [String], exitCode: Int32, message: String) async throws {
        let result = try await portcullis(["kubeconfig"] + arguments)
        #expect(result.exitCode == exitCode, "\(result.standardError)")
        #expect(result.standardError.contains(message), "\(result.standardError)")
        #expect(result.standardOutput.isEmpty)
    }

    private func portcullis(_ arguments: [String]) async throws -> ProcessResult {
        try await ProcessRunner.run(Paths.productsDirectory.appendingPathComponent("portcullis"), arguments: arguments)
    }
}
