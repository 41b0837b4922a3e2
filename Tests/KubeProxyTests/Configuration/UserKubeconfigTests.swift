import Foundation
import Testing
import Yams

@testable import KubeProxy

@Suite("User kubeconfigs")
struct UserKubeconfigTests {
    @Test("values YAML would misread are quoted: they read back exactly")
    func quoting() throws {
        let awkward = ["yes", "null", "0x1F", "a: b # c", "*anchor", "- item", "'quoted'", "line\nbreak"]
        for value in awkward {
            let config = try UserKubeconfig(
                server: "https://proxy:8443", certificateAuthorityPEM: nil, name: "portcullis", namespace: value,
                credential: .oidc(
                    issuer: "https://issuer", clientID: value, clientSecret: value, extraScopes: [value]))
            let loaded = try #require(try Yams.load(yaml: config.yaml()) as? [String: Any])
            let context = (loaded["contexts"] as? [[String: Any]])?.first?["context"] as? [String: Any]
            #expect(context?["namespace"] as? String == value)
            let user = (loaded["users"] as? [[String: Any]])?.first?["user"] as? [String: Any]
            let exec = user?["exec"] as? [String: Any]
            #expect(
                exec?["args"] as? [String] == [
                    "oidc-login", "get-token", "--oidc-issuer-url=https://issuer", "--oidc-client-id=\(value)",
                    "--oidc-client-secret=\(value)", "--oidc-extra-scope=\(value)",
                ])
        }
    }

    @Test("without a CA the cluster entry has only the server; a token is the user's only field")
    func minimal() throws {
        let config = try UserKubeconfig(
            server: "https://proxy", certificateAuthorityPEM: nil, name: "prod@eu", namespace: nil,
            credential: .token("abc.def"))
        let loaded = try #require(try Yams.load(yaml: config.yaml()) as? [String: Any])
        let cluster = (loaded["clusters"] as? [[String: Any]])?.first
        #expect(cluster?["name"] as? String == "prod@eu")
        #expect((cluster?["cluster"] as? [String: Any])?.keys.sorted() == ["server"])
        let user = (loaded["users"] as? [[String: Any]])?.first?["user"] as? [String: Any]
        #expect(user?.keys.sorted() == ["token"])
        #expect(user?["token"] as? String == "abc.def")
        #expect(loaded["current-context"] as? String == "prod@eu")
    }

    @Test("a token with whitespace or an empty client ID is refused")
    func refused() {
        #expect(throws: UserKubeconfig.InvalidSetting.self) {
            try UserKubeconfig(
                server: "https://p", certificateAuthorityPEM: nil, name: "p", namespace: nil, credential: .token("a b"))
        }
        #expect(throws: UserKubeconfig.InvalidSetting.self) {
            try UserKubeconfig(
                server: "https://p", certificateAuthorityPEM: nil, name: "p", namespace: nil,
                credential: .oidc(issuer: "https://i", clientID: "", clientSecret: nil, extraScopes: []))
        }
    }
}
