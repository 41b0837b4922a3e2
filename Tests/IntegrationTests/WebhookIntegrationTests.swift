import Foundation
import Policy
import Sandbox
import TestSupport
import Testing
import Webhook

/// The webhook behind the real kube-apiserver: kubectl talks to the apiserver, which sends
/// AdmissionReviews to the webhook running in this process. The generated configuration is
/// confined to one namespace (by label), so the shared test cluster stays usable for other suites.
@Suite("Webhook behind the real apiserver", .serialized, .timeLimit(.minutes(5)))
struct WebhookIntegrationTests {
    /// Every review the suite's webhook received, as the apiserver sent it.
    static let reviews = ReviewLog()

    /// One webhook server and namespace for the whole suite.
    actor Fixture {
        static let shared = Fixture()
        private var started: (namespace: String, port: Int, cluster: ClusterDescription)?
        private var server: WebhookServer?

        func start() async throws -> (namespace: String, port: Int, cluster: ClusterDescription) {
            if let started { return started }
            let cluster = try await TestCluster.shared()
            let id = UUID().uuidString.prefix(8).lowercased()
            let namespace = "webhook-\(id)"
            let directory = try Paths.makeScratchDirectory("webhook")
            let bundle = try CertificateBundle.generate(
                commonName: "127.0.0.1", dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"])
            try bundle.write(to: directory)
            let policyPaths = [
                Paths.packageRoot.appendingPathComponent("manifests/policies/examples").path,
                Paths.packageRoot.appendingPathComponent("Tests/IntegrationTests/Fixtures/webhook-policies.yaml").path,
            ]
            let policies = try PolicyLoader.load(paths: policyPaths)
            let handler = AdmissionHandler(
                policies: PolicyStore(PolicyEngine(policies: try PolicyCompiler.compile(policies))))
            let server = WebhookServer(
                configuration: .init(
                    host: "127.0.0.1", port: 0,
                    certificateChainFile: directory.appendingPathComponent("tls.crt").path,
                    privateKeyFile: directory.appendingPathComponent("tls.key").path),
                handler: handler, recorder: { WebhookIntegrationTests.reviews.record(endpoint: $0, body: $1) })
            let port = try await server.start()
            self.server = server
            let configuration = WebhookConfigurationGenerator(
                name: "test-\(id)", endpoint: .url("https://127.0.0.1:\(port)"), caBundlePEM: bundle.caCertificatePEM,
                onlyNamespacesLabelled: ["portcullis-test": String(id)]
            ).manifests(for: policies)
            let namespaceManifest = """
                apiVersion: v1
                kind: Namespace
                metadata: {name: \(namespace), labels: {portcullis-test: "\(id)"}}
                ---
                apiVersion: v1
                kind: Pod
                metadata: {name: shell, namespace: \(namespace), labels: {team: platform}}
                spec: {nodeName: node-1, containers: [{name: app, image: portcullis/local}]}
                ---

                """
            let applied = try await admin(
                ["apply", "-f", "-"], input: namespaceManifest + configuration, cluster: cluster)
            guard applied.succeeded else {
                throw TestSupportError("applying the webhook setup failed: \(applied.standardError)")
            }
            // The apiserver picks up new webhook configurations asynchronously.
            try await Task.sleep(for: .seconds(2))
            let result = (namespace, port, cluster)
            started = result
            return result
        }
    }

    static func admin(
        _ arguments: [String], input: String? = nil, cluster: ClusterDescription
    ) async throws -> ProcessResult {
        try await run("1.33", arguments, as: "admin", input: input, cluster: cluster)
    }

    static func run(
        _ minor: String, _ arguments: [String], as identity: String, input: String? = nil, cluster: ClusterDescription
    ) async throws -> ProcessResult {
        try await Kubectl.named(minor).run(
            arguments, kubeconfig: cluster.kubeconfig(for: identity), home: try Paths.makeScratchDirectory("home"),
            standardInput: input.map { Data($0.utf8) })
    }

    @Test("a Deployment without a team label is refused with the policy's message, dry run included")
    func requiredLabel() async throws {
        let (namespace, _, cluster) = try await Fixture.shared.start()
        let deployment = """
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: api, namespace: \(namespace)}
            spec:
              selector: {matchLabels: {app: api}}
              template: {metadata: {labels: {app: api}}, spec: {containers: [{name: app, image: portcullis/local}]}}
            """
        for extra in [["--dry-run=server"], []] {
            let refused = try await Self.admin(["apply", "-f", "-"] + extra, input: deployment, cluster: cluster)
            #expect(refused.exitCode == 1)
            #expect(
                refused.standardError.contains(
                    "denied the request: the Deployment api needs a non-empty \"team\" label"))
        }
        let labelled = deployment.replacingOccurrences(
            of: "metadata: {name: api,", with: "metadata: {labels: {team: payments}, name: api,")
        let accepted = try await Self.admin(["apply", "-f", "-"], input: labelled, cluster: cluster)
        #expect(accepted.exitCode == 0, "\(accepted.standardError)")
    }

    /// A pod manifest; `labels` is the inside of a YAML flow mapping.
    static func pod(_ name: String, namespace: String, labels: String, privileged: Bool = false) -> String {
        """
        apiVersion: v1
        kind: Pod
        metadata: {name: \(name), namespace: \(namespace), labels: {\(labels)}}
        spec:
          containers:
          - {name: app, image: portcullis/local, securityContext: {privileged: \(privileged)}}
        """
    }

    @Test("a privileged pod is refused with the example policy's message, with and without --dry-run=server")
    func privilegedPod() async throws {
        let (namespace, _, cluster) = try await Fixture.shared.start()
        let pod = Self.pod("root", namespace: namespace, labels: "team: platform", privileged: true)
        for extra in [["--dry-run=server"], []] {
            let refused = try await Self.admin(["apply", "-f", "-"] + extra, input: pod, cluster: cluster)
            #expect(refused.exitCode == 1)
            #expect(
                refused.standardError.contains("denied the request: privileged containers are not allowed"),
                "\(refused.standardError)")
        }
        let dryRuns = [true, false].map { dryRun in
            Self.reviews.last("validate", operation: "CREATE", resource: "pods", name: "root") {
                $0["dryRun"] as? Bool == dryRun
            }
        }
        #expect(dryRuns.allSatisfy { $0 != nil }, "the webhook saw the dry run and the real create")
        let stored = try await Self.admin(["-n", namespace, "get", "pod", "root"], cluster: cluster)
        #expect(stored.standardError.contains("NotFound"), "\(stored.standardError)")
    }

    @Test("a pod without a team label is refused by the enforced policy, one without a cost-center only warned")
    func enforceAndWarnModes() async throws {
        let (namespace, _, cluster) = try await Fixture.shared.start()
        let unlabelled = try await Self.admin(
            ["apply", "-f", "-"], input: Self.pod("unlabelled", namespace: namespace, labels: "app: web"),
            cluster: cluster)
        #expect(unlabelled.exitCode == 1)
        #expect(
            unlabelled.standardError.contains(
                #"denied the request: the Pod unlabelled needs a non-empty "team" label"#),
            "\(unlabelled.standardError)")
        let warned = try await Self.admin(
            ["apply", "-f", "-"], input: Self.pod("no-cost-center", namespace: namespace, labels: "team: web"),
            cluster: cluster)
        #expect(warned.exitCode == 0, "\(warned.standardError)")
        #expect(
            warned.standardError.contains(
                "Warning: pods need a cost-center label (test-cost-center/cost-center-required, not enforced: mode Warn)"
            ), "\(warned.standardError)")
        let stored = try await Self.admin(
            ["-n", namespace, "get", "pod", "no-cost-center", "-o", "name"], cluster: cluster)
        #expect(stored.standardOutput == "pod/no-cost-center\n", "\(stored.standardError)")
    }

    @Test("an allowed --dry-run=server create is reviewed as a dry run and stores nothing")
    func allowedDryRun() async throws {
        let (namespace, _, cluster) = try await Fixture.shared.start()
        let pod = Self.pod("rehearsal", namespace: namespace, labels: "team: web, cost-center: c1")
        let dryRun = try await Self.admin(["apply", "-f", "-", "--dry-run=server"], input: pod, cluster: cluster)
        #expect(dryRun.exitCode == 0, "\(dryRun.standardError)")
        #expect(dryRun.standardOutput.contains("pod/rehearsal created (server dry run)"), "\(dryRun.standardOutput)")
        let review = Self.reviews.last("validate", operation: "CREATE", resource: "pods", name: "rehearsal")
        #expect(review?.request?["dryRun"] as? Bool == true)
        let stored = try await Self.admin(["-n", namespace, "get", "pod", "rehearsal"], cluster: cluster)
        #expect(stored.exitCode == 1)
        #expect(stored.standardError.contains("NotFound"), "\(stored.standardError)")
    }

    @Test("Warn rules reach kubectl as warnings and Mutate rules change the object")
    func warnAndMutate() async throws {
        let (namespace, _, cluster) = try await Fixture.shared.start()
        let created = try await Self.run(
            "1.33", ["-n", namespace, "create", "configmap", "tmp-cache", "--from-literal=a=b"], as: "bob",
            cluster: cluster)
        #expect(created.exitCode == 0, "\(created.standardError)")
        #expect(created.standardError.contains("Warning: temporary configmaps are deleted nightly"))
        let read = try await Self.admin(
            [
                "-n", namespace, "get", "configmap", "tmp-cache", "-o",
                "jsonpath={.metadata.labels}{' '}{.metadata.annotations}",
            ],
            cluster: cluster)
        #expect(read.standardOutput.contains(#""portcullis.dev/checked":"true""#), "\(read.standardOutput)")
        #expect(read.standardOutput.contains(#""portcullis.dev/created-by":"bob""#))
        // Reinvocation-safe: an update re-runs the mutation and must leave the object as it is.
        let relabelled = try await Self.admin(
            ["-n", namespace, "label", "configmap", "tmp-cache", "x=y"], cluster: cluster)
        #expect(relabelled.exitCode == 0, "\(relabelled.standardError)")
    }

    @Test("kubectl exec straight to the apiserver is checked on its first command", arguments: ["1.27", "1.33"])
    func execConnect(minor: String) async throws {
        let (namespace, _, cluster) = try await Fixture.shared.start()
        let refused = try await Self.run(
            minor, ["-n", namespace, "exec", "shell", "--", "rm", "-rf", "/tmp/x"], as: "admin", cluster: cluster)
        #expect(refused.exitCode == 1)
        #expect(
            refused.standardError.contains("denied the request: rm is not allowed through exec here"),
            "\(refused.standardError)")
        let allowed = try await Self.run(
            minor, ["-n", namespace, "exec", "shell", "--", "echo", "ok"], as: "admin", cluster: cluster)
        #expect(allowed.exitCode == 0, "\(allowed.standardError)")
        #expect(allowed.standardOutput == "ok\n")
    }

    @Test("an AccessPolicy with a CEL error is refused at kubectl apply with its position")
    func policyGuard() async throws {
        let (_, _, cluster) = try await Fixture.shared.start()
        let name = "broken-\(UUID().uuidString.prefix(6).lowercased())"
        let policy = """
            apiVersion: portcullis.dev/v1alpha1
            kind: AccessPolicy
            metadata: {name: \(name)}
            spec:
              rules:
              - {name: r, action: Deny, message: refused, expression: "request.namespace == 'prod' &&"}
            """
        let refused = try await Self.admin(["apply", "-f", "-"], input: policy, cluster: cluster)
        #expect(refused.exitCode == 1)
        #expect(
            refused.standardError.contains(
                "AccessPolicy \(name) spec.rules[0].expression:1:31: error: CEL: Syntax error"),
            "\(refused.standardError)")
        let fixed = policy.replacingOccurrences(of: " &&\"", with: "\"")
        let accepted = try await Self.admin(["apply", "-f", "-"], input: fixed, cluster: cluster)
        #expect(accepted.exitCode == 0, "\(accepted.standardError)")
        _ = try await Self.admin(["delete", "accesspolicy", name], cluster: cluster)
    }

    @Test("only an approver who is not the requester can approve an AccessRequest")
    func approvalGuard() async throws {
        let (namespace, _, cluster) = try await Fixture.shared.start()
        let request = """
            apiVersion: portcullis.dev/v1alpha1
            kind: AccessRequest
            metadata: {name: psql-1, namespace: \(namespace)}
            spec:
              requester: {user: alice, groups: [developers]}
              request: {text: "exec in prod/db-0: psql", verb: create, resource: pods/exec, namespace: prod, name: db-0, command: psql, fingerprint: "0000000000000000"}
              policy: psql-approval
              rule: psql-needs-approval
              message: psql needs approval
              approvers: {groups: [sre]}
              grantFor: 1h
            """
        let created = try await Self.run("1.33", ["create", "-f", "-"], as: "alice", input: request, cluster: cluster)
        #expect(created.exitCode == 0, "\(created.standardError)")
        func decide(_ user: String, _ state: String) async throws -> ProcessResult {
            try await Self.run(
                "1.33",
                [
                    "-n", namespace, "patch", "accessrequest", "psql-1", "--subresource=status", "--type=merge", "-p",
                    #"{"status":{"state":"\#(state)","decidedBy":"\#(user)"}}"#,
                ],
                as: user, cluster: cluster)
        }
        let own = try await decide("alice", "Approved")
        #expect(own.exitCode == 1)
        #expect(own.standardError.contains("alice requested this access and cannot approve or deny it"))
        let approved = try await decide("bob", "Approved")
        #expect(approved.exitCode == 0, "\(approved.standardError)")
        let again = try await decide("bob", "Denied")
        #expect(again.standardError.contains("was already Approved"))
    }

    @Test("the webhook counts reviews in its metrics")
    func metrics() async throws {
        let (_, port, _) = try await Fixture.shared.start()
        let result = try await ProcessRunner.run(
            URL(fileURLWithPath: "/usr/bin/curl"), arguments: ["-sS", "-k", "https://127.0.0.1:\(port)/metrics"])
        #expect(
            result.standardOutput.contains("portcullis_webhook_reviews_total{endpoint=\"validate\""),
            "\(result.standardOutput)")
    }
}
