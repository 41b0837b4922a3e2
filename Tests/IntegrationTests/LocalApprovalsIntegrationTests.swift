import Foundation
import KubeProxy
import Policy
import Sandbox
import TestSupport
import Testing
import Webhook

/// Approvals without the AccessRequest CRD: the proxy runs with its local store (forced, since the
/// test cluster has the CRD), files held requests in memory and serves the AccessRequest API
/// paths itself, so real kubectl and `portcullis approve` work through it unchanged.
@Suite("Proxy with the local approvals store, in front of the real apiserver", .serialized, .timeLimit(.minutes(5)))
struct LocalApprovalsIntegrationTests {
    actor Fixture {
        static let shared = Fixture()
        private var running: ProxyIntegrationTests.Running?
        private var server: ProxyServer?

        func start() async throws -> ProxyIntegrationTests.Running {
            if let running { return running }
            let cluster = try await TestCluster.shared()
            let directory = try Paths.makeScratchDirectory("proxy-local-approvals")
            let bundle = try CertificateBundle.generate(
                commonName: "127.0.0.1", dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"])
            try bundle.write(to: directory)
            let engine = try PolicyEngine(paths: [
                Paths.packageRoot.appendingPathComponent("manifests/policies/examples").path,
                Paths.packageRoot.appendingPathComponent("Tests/IntegrationTests/Fixtures/proxy-policies.yaml").path,
            ])
            let upstream = try UpstreamConfiguration.kubeconfig(cluster.kubeconfig(for: "proxy").path)
            let chain = AuthenticatorChain([
                try StaticTokenAuthenticator(contentsOf: cluster.pkiDirectory.appendingPathComponent("tokens.csv").path)
            ])
            // A namespace that does not exist in the cluster: nothing of this lives there.
            let namespace = "local-approvals-\(UUID().uuidString.prefix(6).lowercased())"
            let auditFile = directory.appendingPathComponent("audit.jsonl")
            let server = try ProxyServer(
                configuration: .init(
                    host: "127.0.0.1", port: 0, certificateChainFile: directory.appendingPathComponent("tls.crt").path,
                    privateKeyFile: directory.appendingPathComponent("tls.key").path),
                upstream: upstream, policies: PolicyStore(engine), authenticate: chain.callerAuthenticator,
                approvals: LocalApprovals(namespace: namespace), audit: try AuditLog(path: auditFile.path))
            let port = try await server.start()
            self.server = server
            let running = ProxyIntegrationTests.Running(
                cluster: cluster, port: port, directory: directory, caFile: directory.appendingPathComponent("ca.crt"),
                auditFile: auditFile, approvalsNamespace: namespace,
                recordings: directory.appendingPathComponent("recordings"))
            self.running = running
            return running
        }
    }

    static func kubectl(_ arguments: [String], as identity: TestIdentity) async throws -> ProcessResult {
        let running = try await Fixture.shared.start()
        return try await Kubectl.named("1.33").run(
            arguments, kubeconfig: try running.kubeconfig(identity), home: try Paths.makeScratchDirectory("home"))
    }

    static func decide(_ verb: String, _ name: String, as identity: TestIdentity) async throws -> ProcessResult {
        let running = try await Fixture.shared.start()
        return try await ProxyIntegrationTests.portcullis([
            verb, "-n", running.approvalsNamespace, name, "--kubeconfig", try running.kubeconfig(identity).path,
        ])
    }

    static func accessRequest(_ name: String, as identity: TestIdentity) async throws -> [String: Any] {
        let running = try await Fixture.shared.start()
        let shown = try await kubectl(
            [
                "get", "--raw",
                "/apis/portcullis.dev/v1alpha1/namespaces/\(running.approvalsNamespace)/accessrequests/\(name)",
            ],
            as: identity)
        #expect(shown.exitCode == 0, "\(shown.standardError)")
        return (try? JSONSerialization.jsonObject(with: Data(shown.standardOutput.utf8))) as? [String: Any] ?? [:]
    }

    @Test("a held exec waits in the proxy's store until an approver who is not the requester approves it")
    func approvalRoundTrip() async throws {
        let running = try await Fixture.shared.start()
        let command = ["-n", "dev", "exec", "web", "-c", "app", "--", "psql", "--version"]
        let held = try await Self.kubectl(command, as: .alice)
        #expect(held.exitCode == 1)
        #expect(held.standardError.contains("psql in dev needs an approval: "), "\(held.standardError)")
        let name = try #require(held.standardError.firstMatch(of: /AccessRequest (ar-[a-z0-9]+)/)?.1).description
        #expect(
            held.standardError.contains(
                "runs through this proxy: kubectl portcullis approve -n \(running.approvalsNamespace) \(name)"),
            "\(held.standardError)")

        let again = try await Self.kubectl(command, as: .alice)
        #expect(again.standardError.contains("waiting for approval of AccessRequest \(name)"), "\(again.standardError)")
        let pending = try await Self.accessRequest(name, as: .bob)
        #expect((pending["status"] as? [String: Any])?["state"] as? String == "Pending")
        #expect(
            ((pending["spec"] as? [String: Any])?["request"] as? [String: Any])?["command"] as? String
                == "psql --version")

        // Nothing reached the cluster: the request exists only in the proxy.
        let direct = try await ProxyIntegrationTests.admin(["get", "accessrequests", "-A", "-o", "name"])
        #expect(!direct.standardOutput.contains(name), "\(direct.standardOutput)")

        let own = try await Self.decide("approve", name, as: .alice)
        #expect(own.exitCode == 1)
        #expect(
            own.standardError.contains("alice requested this access and cannot approve or deny it"),
            "\(own.standardError)")
        let outsider = try await Self.decide("approve", name, as: .carol)
        #expect(outsider.exitCode == 1)
        #expect(
            outsider.standardError.contains("carol is not an approver of this request"), "\(outsider.standardError)")
        let stillHeld = try await Self.kubectl(command, as: .alice)
        #expect(stillHeld.exitCode == 1)

        let approved = try await Self.decide("approve", name, as: .bob)
        #expect(approved.exitCode == 0, "\(approved.standardError)")
        #expect(approved.standardOutput.contains("approved \(running.approvalsNamespace)/\(name)"))
        let stamped = try #require(try await Self.accessRequest(name, as: .alice)["status"] as? [String: Any])
        #expect(stamped["state"] as? String == "Approved")
        #expect(stamped["decidedBy"] as? String == "bob")
        let expiresAt = try #require((stamped["expiresAt"] as? String).flatMap(AccessRequest.parseTimestamp))
        #expect(abs(expiresAt.timeIntervalSinceNow - 600) < 60, "grantFor is 10m: \(expiresAt)")

        let released = try await Self.kubectl(command, as: .alice)
        #expect(released.exitCode == 0, "\(released.standardError)")
        #expect(released.standardOutput.contains("psql"))

        let other = try await Self.kubectl(
            ["-n", "dev", "exec", "web", "-c", "app", "--", "psql", "-c", "select 1"], as: .alice)
        let otherName = other.standardError.firstMatch(of: /AccessRequest (ar-[a-z0-9]+)/)?.1.description
        #expect(other.exitCode == 1)
        #expect(
            otherName != nil && otherName != name, "an approval covers only the same command: \(other.standardError)")

        let denied = try await Self.decide("deny", try #require(otherName), as: .bob)
        #expect(denied.exitCode == 0, "\(denied.standardError)")
        let decidedTwice = try await Self.decide("approve", try #require(otherName), as: .bob)
        #expect(decidedTwice.exitCode == 1)
        #expect(decidedTwice.standardError.contains("was already Denied"), "\(decidedTwice.standardError)")
    }

    @Test("auto finds the AccessRequest CRD in the test cluster and picks the cluster store")
    func discovery() async throws {
        let cluster = try await TestCluster.shared()
        let upstream = try UpstreamConfiguration.kubeconfig(cluster.kubeconfig(for: "proxy").path)
        #expect(try await ClusterApprovals.isServed(by: KubernetesClient(configuration: upstream)))
        let store = try await ProxyRuntime.approvalStore(.init(namespace: "x"), upstream: upstream)
        #expect(store is ClusterApprovals)
    }
}
