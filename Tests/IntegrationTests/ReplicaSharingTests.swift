import Foundation
import KubeProxy
import Policy
import Sandbox
import TestSupport
import Testing
import Webhook

/// Two proxy replicas and a webhook, each watching the cluster's AccessPolicy objects, as a
/// Deployment would run them: what is applied with kubectl takes effect in all of them, and an
/// approval given through one replica releases the request held through the other.
@Suite("Replicas share policies and approvals through the cluster", .serialized, .timeLimit(.minutes(5)))
struct ReplicaSharingTests {
    /// The limit the deployment issue sets for a policy change to reach every replica.
    static let propagationLimit: Duration = .seconds(2)

    struct Running: Sendable {
        let cluster: ClusterDescription
        let id: String
        let directory: URL
        let replicas: [ProxyRuntime]
        let webhookPolicies: PolicyStore
        let approvalsNamespace: String

        /// A kubeconfig for `identity` through replica `index` (0 or 1).
        func kubeconfig(_ identity: TestIdentity, replica index: Int) throws -> URL {
            let file = directory.appendingPathComponent("\(identity.rawValue)-replica-\(index).kubeconfig")
            try """
            apiVersion: v1
            kind: Config
            clusters: [{name: portcullis, cluster: {server: "https://127.0.0.1:\(replicas[index].port)", certificate-authority: "\(directory.path)/ca.crt"}}]
            users: [{name: \(identity.rawValue), user: {token: "\(cluster.token(for: identity))"}}]
            contexts: [{name: portcullis, context: {cluster: portcullis, user: \(identity.rawValue)}}]
            current-context: portcullis
            """.write(to: file, atomically: true, encoding: .utf8)
            return file
        }

        /// Every policy store that enforces cluster objects: both replicas' and the webhook's.
        var stores: [PolicyStore] { replicas.map(\.policies) + [webhookPolicies] }
    }

    actor Fixture {
        static let shared = Fixture()
        private var running: Running?
        private var webhook: WebhookServer?
        private var watchers: ClusterStateWatchers?

        func start() async throws -> Running {
            if let running { return running }
            let cluster = try await TestCluster.shared()
            let id = UUID().uuidString.prefix(8).lowercased()
            let directory = try Paths.makeScratchDirectory("replicas")
            let bundle = try CertificateBundle.generate(
                commonName: "127.0.0.1", dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"])
            try bundle.write(to: directory)
            let approvalsNamespace = "replicas-\(id)"

            // The webhook: cluster policies only, as `portcullis webhook serve --cluster-policies`.
            let namespaces = NamespaceDirectory()
            let webhookPolicies = PolicyStore(PolicyEngine(policies: [], options: .init(namespaces: namespaces)))
            let webhookSources = PolicySources(store: webhookPolicies, files: [])
            let upstream = try UpstreamConfiguration.kubeconfig(cluster.kubeconfig(for: "proxy").path)
            watchers = try await ClusterStateWatchers.start(
                client: try KubernetesClient(configuration: upstream), sources: webhookSources,
                directory: namespaces, logger: .init(label: "test.webhook"))
            let webhook = WebhookServer(
                configuration: .init(
                    host: "127.0.0.1", port: 0, certificateChainFile: directory.appendingPathComponent("tls.crt").path,
                    privateKeyFile: directory.appendingPathComponent("tls.key").path),
                handler: AdmissionHandler(policies: webhookPolicies, options: .init(proxyUsers: ["portcullis-proxy"])))
            let webhookPort = try await webhook.start()
            self.webhook = webhook
            // The configuration names the resources of the policy the test applies later, and is
            // confined to this suite's namespace.
            let configuration = WebhookConfigurationGenerator(
                name: "replicas-\(id)", endpoint: .url("https://127.0.0.1:\(webhookPort)"),
                caBundlePEM: bundle.caCertificatePEM, onlyNamespacesLabelled: ["portcullis-replicas": String(id)]
            ).manifests(for: try PolicyLoader.parse(ReplicaSharingTests.webhookPolicy(id: id), file: "policy"))
            let applied = try await ReplicaSharingTests.admin(
                ["apply", "-f", "-"],
                input: """
                    apiVersion: v1
                    kind: Namespace
                    metadata: {name: \(approvalsNamespace), labels: {portcullis-replicas: "\(id)"}}
                    ---

                    """ + configuration)
            guard applied.succeeded else { throw TestSupportError("webhook setup failed: \(applied.standardError)") }

            var replicas: [ProxyRuntime] = []
            for index in 0..<2 {
                let file = directory.appendingPathComponent("proxy-\(index).yaml")
                try """
                listen: {host: 127.0.0.1, port: 0}
                tls: {certFile: "\(directory.path)/tls.crt", keyFile: "\(directory.path)/tls.key"}
                upstream: {kubeconfig: "\(cluster.kubeconfig(for: "proxy").path)"}
                policies: {cluster: true}
                authentication: {staticTokenFile: "\(cluster.pkiDirectory.path)/tokens.csv"}
                approvals: {namespace: \(approvalsNamespace), store: cluster}
                audit: {path: "\(directory.path)/audit-\(index).jsonl"}
                """.write(to: file, atomically: true, encoding: .utf8)
                replicas.append(
                    try await ProxyRuntime.start(
                        try ProxyConfiguration.load(file.path), logger: .init(label: "test.replica-\(index)")))
            }
            // Lets the apiserver pick up the new webhook configuration.
            try await Task.sleep(for: .seconds(2))
            let running = Running(
                cluster: cluster, id: String(id), directory: directory, replicas: replicas,
                webhookPolicies: webhookPolicies, approvalsNamespace: approvalsNamespace)
            self.running = running
            return running
        }
    }

    static func webhookPolicy(id: some StringProtocol) -> String {
        """
        apiVersion: portcullis.dev/v1alpha1
        kind: AccessPolicy
        metadata: {name: replicas-\(id)-webhook}
        spec:
          match: {namespaces: [replicas-\(id)], resources: [configmaps], operations: [CREATE]}
          rules:
          - {name: no-blocked, action: Deny, expression: "request.name.startsWith('blocked-')", message: "replicas \(id): blocked configmaps are refused"}
        """
    }

    static func admin(_ arguments: [String], input: String? = nil) async throws -> ProcessResult {
        let cluster = try await TestCluster.shared()
        return try await Kubectl.named("1.33").run(
            arguments, kubeconfig: cluster.adminKubeconfig, home: try Paths.makeScratchDirectory("home"),
            standardInput: input.map { Data($0.utf8) })
    }

    static func kubectl(_ arguments: [String], as identity: TestIdentity, replica: Int) async throws -> ProcessResult {
        let running = try await Fixture.shared.start()
        return try await Kubectl.named("1.33").run(
            arguments, kubeconfig: try running.kubeconfig(identity, replica: replica),
            home: try Paths.makeScratchDirectory("home"))
    }

    /// Applies `yaml` with kubectl and returns how long it took, from kubectl's return, until every
    /// store satisfies `condition`.
    static func applyAndWait(
        _ arguments: [String], input: String? = nil, until condition: @escaping @Sendable (PolicyEngine) -> Bool
    ) async throws -> Duration {
        let running = try await Fixture.shared.start()
        let applied = try await admin(arguments, input: input)
        #expect(applied.succeeded, "\(applied.standardError)")
        let started = ContinuousClock.now
        while !running.stores.allSatisfy({ condition($0.engine) }) {
            guard ContinuousClock.now - started < .seconds(30) else {
                throw TestSupportError("the change did not reach every replica within 30 s")
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        return ContinuousClock.now - started
    }

    static func has(_ name: String, message: String? = nil) -> @Sendable (PolicyEngine) -> Bool {
        { engine in
            engine.policies.contains { compiled in
                compiled.policy.name == name
                    && (message.map { message in compiled.policy.rules.contains { $0.message == message } } ?? true)
            }
        }
    }

    @Test("a policy applied, changed and deleted with kubectl takes effect in both replicas and the webhook within 2 s")
    func policyChangesPropagate() async throws {
        let running = try await Fixture.shared.start()
        let name = "replicas-\(running.id)-configmaps"
        let list = ["-n", "dev", "get", "configmaps"]
        for replica in 0..<2 {
            let before = try await Self.kubectl(list, as: .alice, replica: replica)
            #expect(before.exitCode == 0, "replica \(replica): \(before.standardError)")
        }

        func policy(message: String) -> String {
            """
            apiVersion: portcullis.dev/v1alpha1
            kind: AccessPolicy
            metadata: {name: \(name)}
            spec:
              match: {namespaces: [dev], resources: [configmaps], subjects: [{user: alice}]}
              rules:
              - {name: no-listing, action: Deny, expression: "request.verb == 'list'", message: "\(message)"}
            """
        }
        let first = "replicas \(running.id): listing configmaps is refused"
        let created = try await Self.applyAndWait(
            ["apply", "-f", "-"], input: policy(message: first), until: Self.has(name, message: first))
        #expect(created < Self.propagationLimit, "created: \(created)")
        print("an applied AccessPolicy reached both replicas and the webhook in \(created)")
        for replica in 0..<2 {
            let denied = try await Self.kubectl(list, as: .alice, replica: replica)
            #expect(denied.exitCode == 1)
            #expect(denied.standardError.contains(first), "replica \(replica): \(denied.standardError)")
        }

        let second = "replicas \(running.id): still refused, with a new reason"
        let changed = try await Self.applyAndWait(
            ["apply", "-f", "-"], input: policy(message: second), until: Self.has(name, message: second))
        #expect(changed < Self.propagationLimit, "changed: \(changed)")
        print("a changed AccessPolicy reached both replicas and the webhook in \(changed)")
        for replica in 0..<2 {
            let denied = try await Self.kubectl(list, as: .alice, replica: replica)
            #expect(denied.standardError.contains(second), "replica \(replica): \(denied.standardError)")
        }

        let deleted = try await Self.applyAndWait(
            ["delete", "accesspolicy", name], until: { !Self.has(name)($0) })
        #expect(deleted < Self.propagationLimit, "deleted: \(deleted)")
        print("a deleted AccessPolicy left both replicas and the webhook in \(deleted)")
        for replica in 0..<2 {
            let after = try await Self.kubectl(list, as: .alice, replica: replica)
            #expect(after.exitCode == 0, "replica \(replica): \(after.standardError)")
        }
    }

    @Test("the webhook enforces an AccessPolicy applied after it started")
    func webhookEnforcesClusterPolicy() async throws {
        let running = try await Fixture.shared.start()
        let name = "replicas-\(running.id)-webhook"
        let took = try await Self.applyAndWait(
            ["apply", "-f", "-"], input: Self.webhookPolicy(id: running.id), until: Self.has(name))
        #expect(took < Self.propagationLimit, "\(took)")
        let refused = try await Self.admin([
            "-n", running.approvalsNamespace, "create", "configmap", "blocked-one", "--from-literal=a=b",
        ])
        #expect(refused.exitCode == 1)
        #expect(refused.standardError.contains("blocked configmaps are refused"), "\(refused.standardError)")
        let accepted = try await Self.admin([
            "-n", running.approvalsNamespace, "create", "configmap", "fine-one", "--from-literal=a=b",
        ])
        #expect(accepted.exitCode == 0, "\(accepted.standardError)")
        _ = try await Self.admin(["delete", "accesspolicy", name])
    }

    @Test("a namespace labelled with kubectl comes under a namespaceSelector policy in both replicas and the webhook")
    func namespaceLabelsAreWatched() async throws {
        let running = try await Fixture.shared.start()
        let name = "replicas-\(running.id)-locked"
        let namespace = running.approvalsNamespace
        let took = try await Self.applyAndWait(
            ["apply", "-f", "-"],
            input: """
                apiVersion: portcullis.dev/v1alpha1
                kind: AccessPolicy
                metadata: {name: \(name)}
                spec:
                  match: {namespaceSelector: {matchLabels: {replicas-locked: "\(running.id)"}}, resources: [configmaps]}
                  rules:
                  - {name: locked, action: Deny, expression: "request.verb in ['list', 'create']", message: "replicas \(running.id): this namespace is locked"}
                """, until: Self.has(name))
        #expect(took < Self.propagationLimit, "\(took)")
        defer { Task { _ = try? await Self.admin(["delete", "accesspolicy", name]) } }
        let list = ["-n", namespace, "get", "configmaps"]
        let locked = "this namespace is locked"
        for replica in 0..<2 {
            let open = try await Self.kubectl(list, as: .alice, replica: replica)
            #expect(!open.standardError.contains(locked), "not labelled yet: \(open.standardError)")
        }

        let labelled = try await Self.admin(["label", "namespace", namespace, "replicas-locked=\(running.id)"])
        #expect(labelled.exitCode == 0, "\(labelled.standardError)")
        let started = ContinuousClock.now
        for replica in 0..<2 {
            var answer = try await Self.kubectl(list, as: .alice, replica: replica)
            while !answer.standardError.contains(locked), ContinuousClock.now - started < Self.propagationLimit {
                answer = try await Self.kubectl(list, as: .alice, replica: replica)
            }
            #expect(answer.standardError.contains(locked), "replica \(replica): \(answer.standardError)")
        }
        var created = try await Self.admin(["-n", namespace, "create", "configmap", "after-lock", "--from-literal=a=b"])
        while !created.standardError.contains(locked), ContinuousClock.now - started < Self.propagationLimit {
            created = try await Self.admin(["-n", namespace, "create", "configmap", "after-lock", "--from-literal=a=b"])
        }
        #expect(created.standardError.contains(locked), "the webhook knows the label: \(created.standardError)")
        _ = try await Self.admin(["label", "namespace", namespace, "replicas-locked-"])
    }

    @Test("an approval given through one replica releases the request held through the other")
    func approvalsAreShared() async throws {
        let running = try await Fixture.shared.start()
        let name = "replicas-\(running.id)-review"
        let configMap = "reviewed-\(running.id)"
        let made = try await Self.admin(["-n", "dev", "create", "configmap", configMap, "--from-literal=a=b"])
        #expect(made.exitCode == 0, "\(made.standardError)")
        let took = try await Self.applyAndWait(
            ["apply", "-f", "-"],
            input: """
                apiVersion: portcullis.dev/v1alpha1
                kind: AccessPolicy
                metadata: {name: \(name)}
                spec:
                  match: {namespaces: [dev], resources: [configmaps], subjects: [{user: alice}]}
                  rules:
                  - name: reading-needs-approval
                    action: Review
                    expression: "request.verb == 'get' && request.name == '\(configMap)'"
                    message: reading \(configMap) needs an approval
                    review: {approvers: {groups: [sre]}, grantFor: 10m}
                """, until: Self.has(name))
        #expect(took < Self.propagationLimit, "\(took)")
        defer { Task { _ = try? await Self.admin(["delete", "accesspolicy", name]) } }

        let read = ["-n", "dev", "get", "configmap", configMap, "-o", "jsonpath={.data.a}"]
        let held = try await Self.kubectl(read, as: .alice, replica: 0)
        #expect(held.exitCode == 1)
        #expect(held.standardError.contains("reading \(configMap) needs an approval"), "\(held.standardError)")
        let request = try #require(held.standardError.firstMatch(of: /AccessRequest (ar-[a-z0-9]+)/)?.1).description

        let stillHeld = try await Self.kubectl(read, as: .alice, replica: 1)
        #expect(stillHeld.exitCode == 1)
        #expect(
            stillHeld.standardError.contains(request), "replica 1 sees the same request: \(stillHeld.standardError)")

        let approved = try await ProcessRunner.run(
            Paths.productsDirectory.appendingPathComponent("portcullis"),
            arguments: [
                "approve", "-n", running.approvalsNamespace, request, "--kubeconfig",
                try running.kubeconfig(.bob, replica: 1).path,
            ],
            environment: ["HOME": try Paths.makeScratchDirectory("home").path, "PATH": "/usr/bin:/bin"])
        #expect(approved.exitCode == 0, "\(approved.standardError)")

        for replica in [1, 0] {
            let released = try await Self.kubectl(read, as: .alice, replica: replica)
            #expect(released.exitCode == 0, "replica \(replica): \(released.standardError)")
            #expect(released.standardOutput == "b")
        }
    }
}
