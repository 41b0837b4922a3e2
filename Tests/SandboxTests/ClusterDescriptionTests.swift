import Foundation
import Sandbox
import Testing

@Suite("cluster.env parsing")
struct ClusterDescriptionTests {
    static let complete = """
        # Written by scripts/testenv/testenv.sh
        TESTENV_DIR=/tmp/x
        APISERVER_URL=https://127.0.0.1:6443
        APISERVER_PORT=6443
        NODE_AGENT_PORT=10250
        CA_FILE=/tmp/x/pki/ca.crt
        ADMIN_KUBECONFIG=/tmp/x/admin.kubeconfig
        ADMIN_TOKEN=a=b
        PROXY_TOKEN=p
        ALICE_TOKEN=al
        BOB_TOKEN=bo
        CAROL_TOKEN=ca
        PKI_DIR=/tmp/x/pki
        KUBECTL_1_20=/cache/kubectl
        """

    @Test("a complete file gives typed values, and values may contain '='")
    func parsesCompleteFile() throws {
        let description = try ClusterDescription(envFileContents: Self.complete)
        #expect(description.apiserverPort == 6443)
        #expect(description.nodeAgentPort == 10250)
        #expect(description.token(for: .admin) == "a=b")
        #expect(description.token(for: .carol) == "ca")
        #expect(description.kubeconfig(for: "alice").path == "/tmp/x/alice.kubeconfig")
    }

    @Test("a missing key is an error that names the key")
    func missingKey() {
        let text = Self.complete.replacingOccurrences(of: "PROXY_TOKEN=p\n", with: "")
        #expect {
            try ClusterDescription(envFileContents: text)
        } throws: { error in
            (error as? SandboxError)?.message == "missing PROXY_TOKEN"
        }
    }

    @Test("a line that is not KEY=value is an error with its line number")
    func malformedLine() {
        #expect {
            try ClusterDescription(envFileContents: Self.complete + "\nnot a pair")
        } throws: { error in
            (error as? SandboxError)?.message == "line 15 is not KEY=value: not a pair"
        }
    }
}

@Suite("finding scripts/testenv")
struct TestEnvironmentScriptsTests {
    @Test("found from a subdirectory of the checkout")
    func foundFromSubdirectory() throws {
        let root = try makeCheckout()
        let nested = root.appendingPathComponent("a/b")
        try FileManager.default.createDirectory(at: nested, withIntermediateDirectories: true)
        let scripts = try TestEnvironmentScripts.locate(environment: [:], currentDirectory: nested, executable: nil)
        #expect(
            scripts.directory.standardizedFileURL == root.appendingPathComponent("scripts/testenv").standardizedFileURL)
    }

    @Test("outside a checkout the error says how to point at the scripts")
    func notFound() {
        let outside = FileManager.default.temporaryDirectory.appendingPathComponent("nowhere-\(UUID())")
        #expect {
            try TestEnvironmentScripts.locate(environment: [:], currentDirectory: outside, executable: nil)
        } throws: { error in
            (error as? SandboxError)?.kind == .scriptsNotFound
                && "\(error)".contains("PORTCULLIS_TESTENV_SCRIPTS")
        }
    }

    private func makeCheckout() throws -> URL {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("checkout-\(UUID())")
        let scripts = root.appendingPathComponent("scripts/testenv")
        try FileManager.default.createDirectory(at: scripts, withIntermediateDirectories: true)
        for name in ["testenv.sh", "build.sh"] {
            try Data().write(to: scripts.appendingPathComponent(name))
        }
        return root
    }
}
