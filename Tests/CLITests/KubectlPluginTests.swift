import Foundation
import Sandbox
import TestSupport
import Testing

/// `kubectl portcullis …`: kubectl runs any `kubectl-portcullis` on PATH as a plugin, so a symlink
/// to the binary is all an approver needs to type the command the proxy's 403 message names.
@Suite("kubectl plugin form", .timeLimit(.minutes(5)))
struct KubectlPluginTests {
    @Test("a kubectl-portcullis symlink on PATH makes `kubectl portcullis` the portcullis CLI")
    func pluginSymlink() async throws {
        let bin = try Paths.makeScratchDirectory("plugin-bin")
        try FileManager.default.createSymbolicLink(
            at: bin.appendingPathComponent("kubectl-portcullis"),
            withDestinationURL: Paths.productsDirectory.appendingPathComponent("portcullis"))
        var environment = ProcessInfo.processInfo.environment
        environment["PATH"] = bin.path + ":/usr/bin:/bin"
        environment["HOME"] = bin.path

        let kubectl = try Kubectl.named("1.33").path
        let lint = try await ProcessRunner.run(
            kubectl,
            arguments: [
                "portcullis", "policy", "lint",
                Paths.packageRoot.appendingPathComponent("manifests/policies/examples").path,
            ],
            environment: environment)
        #expect(lint.exitCode == 0, "\(lint.standardError)")
        #expect(lint.standardOutput == "8 policies OK\n")

        let help = try await ProcessRunner.run(
            kubectl, arguments: ["portcullis", "approve", "--help"], environment: environment)
        #expect(help.exitCode == 0, "\(help.standardError)")
        #expect(help.standardOutput.contains("--kubeconfig"))

        let list = try await ProcessRunner.run(kubectl, arguments: ["plugin", "list"], environment: environment)
        #expect(list.standardOutput.contains(bin.appendingPathComponent("kubectl-portcullis").path))
    }
}
