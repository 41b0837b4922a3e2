import Foundation
import KubeProxy
import Policy
import Sandbox
import TestSupport
import Testing
import Yams

/// The deployment manifests (`manifests/`): built with kustomize as `kubectl apply -k` builds them,
/// checked for what the deployment promises, and sent to the shared test cluster's apiserver as a
/// server-side dry run. kustomize is kubectl 1.33's (kustomize v5): the kustomize v2 in kubectl 1.20
/// reads none of them (it wants directories under `bases:` and knows neither `patches` nor
/// `replacements`), so the manifests ask for kubectl ≥ 1.27.
@Suite("Manifests: the kustomize base and overlays", .serialized, .timeLimit(.minutes(5)))
struct ManifestTests {
    typealias Object = [String: Any]

    static let manifests = Paths.packageRoot.appendingPathComponent("manifests")

    @Test(
        "kubectl kustomize builds the base and both overlays, each with two restricted, probed replicas of the proxy and the webhook"
    )
    func build() async throws {
        let copy = try await Self.copyWithCertificates()
        for directory in [
            Self.manifests, Self.manifests.appendingPathComponent("overlays/cert-manager"),
            copy.appendingPathComponent("overlays/portcullis-certs"),
        ] {
            let objects = try await Self.kustomize(directory)
            let label = directory.path
            for (kind, name) in [
                ("Namespace", "portcullis-system"), ("CustomResourceDefinition", "accesspolicies.portcullis.dev"),
                ("CustomResourceDefinition", "accessrequests.portcullis.dev"), ("ServiceAccount", "portcullis"),
                ("ServiceAccount", "portcullis-webhook"), ("ClusterRole", "portcullis-proxy"),
                ("ClusterRoleBinding", "portcullis-proxy"), ("ClusterRole", "portcullis-policy-reader"),
                ("ClusterRoleBinding", "portcullis-policy-reader"), ("Role", "portcullis-approvals"),
                ("RoleBinding", "portcullis-approvals"), ("Service", "portcullis-proxy"),
                ("Service", "portcullis-webhook"), ("PodDisruptionBudget", "portcullis-proxy"),
                ("PodDisruptionBudget", "portcullis-webhook"), ("NetworkPolicy", "portcullis-proxy"),
                ("NetworkPolicy", "portcullis-webhook"), ("PersistentVolumeClaim", "portcullis-recordings"),
                ("ValidatingWebhookConfiguration", "portcullis"), ("MutatingWebhookConfiguration", "portcullis"),
            ] {
                #expect(Self.find(objects, kind, name) != nil, "\(label): \(kind) \(name)")
            }
            #expect(
                objects.contains {
                    $0["kind"] as? String == "ConfigMap"
                        && Self.string($0, "metadata", "name")?.hasPrefix("portcullis-proxy-config-") == true
                }, "\(label): the proxy's configuration, named with its content hash")
            for (component, port, scheme, secret) in [
                ("proxy", 9090, "HTTP", "portcullis-proxy-tls"), ("webhook", 9443, "HTTPS", "portcullis-webhook-tls"),
            ] {
                let deployment = try #require(Self.find(objects, "Deployment", "portcullis-\(component)"), "\(label)")
                try Self.checkDeployment(deployment, probePort: port, scheme: scheme, secret: secret, label: label)
                let budget = try #require(Self.find(objects, "PodDisruptionBudget", "portcullis-\(component)"))
                #expect(budget["apiVersion"] as? String == "policy/v1")
                #expect(Self.value(budget, "spec", "minAvailable") as? Int == 1)
            }
            let claim = try #require(Self.find(objects, "PersistentVolumeClaim", "portcullis-recordings"))
            #expect(Self.value(claim, "spec", "accessModes") as? [String] == ["ReadWriteMany"])
            let rules = try #require(
                Self.value(Self.find(objects, "ClusterRole", "portcullis-proxy"), "rules") as? [Object])
            #expect(
                rules.contains {
                    $0["resources"] as? [String] == ["userextras/*"] && $0["verbs"] as? [String] == ["impersonate"]
                }, "the proxy impersonates portcullis.dev/session and the caller's extras")
        }
        let base = try await Self.kustomize(Self.manifests)
        for kind in ["ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"] {
            let webhooks = try #require(Self.value(Self.find(base, kind, "portcullis"), "webhooks") as? [Object])
            #expect(!webhooks.isEmpty)
            #expect(webhooks.allSatisfy { Self.value($0, "clientConfig", "caBundle") == nil }, "overlays set it")
        }
        let certManager = try await Self.kustomize(Self.manifests.appendingPathComponent("overlays/cert-manager"))
        for kind in ["ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"] {
            #expect(
                Self.string(
                    Self.find(certManager, kind, "portcullis"), "metadata", "annotations",
                    "cert-manager.io/inject-ca-from")
                    == "portcullis-system/portcullis-webhook")
        }
        #expect(Self.value(Self.find(certManager, "Certificate", "portcullis-ca"), "spec", "isCA") as? Bool == true)
        for component in ["proxy", "webhook"] {
            let certificate = Self.find(certManager, "Certificate", "portcullis-\(component)")
            #expect(Self.string(certificate, "spec", "secretName") == "portcullis-\(component)-tls")
            #expect(Self.string(certificate, "spec", "issuerRef", "name") == "portcullis-ca")
            #expect(
                (Self.value(certificate, "spec", "dnsNames") as? [String])?.contains(
                    "portcullis-\(component).portcullis-system.svc") == true)
        }
        #expect(Self.find(certManager, "Issuer", "portcullis-ca") != nil)
        #expect(Self.find(certManager, "Issuer", "portcullis-selfsigned") != nil)
    }

    @Test(
        "the portcullis-certs overlay takes the files portcullis certs writes: its Secrets hold them and every caBundle is the webhook's CA"
    )
    func portcullisCertsOverlay() async throws {
        let bare = try Paths.makeScratchDirectory("manifests-bare").appendingPathComponent("manifests")
        try FileManager.default.copyItem(at: Self.manifests, to: bare)
        for generated in ["proxy", "webhook"] {
            try? FileManager.default.removeItem(
                at: bare.appendingPathComponent("overlays/portcullis-certs/\(generated)"))
        }
        let missing = try await Self.kubectl([
            "kustomize", bare.appendingPathComponent("overlays/portcullis-certs").path,
        ])
        #expect(!missing.succeeded, "without the files of portcullis certs, the overlay does not build")
        #expect(missing.standardError.contains("proxy/tls.crt"), "\(missing.standardError)")

        let copy = try await Self.copyWithCertificates()
        let overlay = copy.appendingPathComponent("overlays/portcullis-certs")
        let objects = try await Self.kustomize(overlay)
        func base64(_ component: String, _ file: String) throws -> String {
            try Data(contentsOf: overlay.appendingPathComponent("\(component)/\(file)")).base64EncodedString()
        }
        for component in ["proxy", "webhook"] {
            let secret = try #require(
                objects.first {
                    $0["kind"] as? String == "Secret"
                        && Self.string($0, "metadata", "name")?.hasPrefix("portcullis-\(component)-tls-") == true
                })
            #expect(secret["type"] as? String == "kubernetes.io/tls")
            #expect(Self.string(secret, "metadata", "namespace") == "portcullis-system")
            for file in ["tls.crt", "tls.key", "ca.crt"] {
                #expect(Self.unfolded(Self.string(secret, "data", file)) == (try base64(component, file)), "\(file)")
            }
            let deployment = Self.find(objects, "Deployment", "portcullis-\(component)")
            let volumes = try #require(Self.value(deployment, "spec", "template", "spec", "volumes") as? [Object])
            #expect(
                volumes.contains { Self.string($0, "secret", "secretName") == Self.string(secret, "metadata", "name") },
                "the pods mount the generated Secret, whose hashed name changes with the certificates")
        }
        let webhookCA = try base64("webhook", "ca.crt")
        #expect(webhookCA != (try base64("proxy", "ca.crt")), "each certificate has its own CA")
        for kind in ["ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"] {
            let webhooks = try #require(Self.value(Self.find(objects, kind, "portcullis"), "webhooks") as? [Object])
            #expect(!webhooks.isEmpty)
            for webhook in webhooks {
                #expect(Self.unfolded(Self.string(webhook, "clientConfig", "caBundle")) == webhookCA, "\(kind)")
            }
        }
        let ignored = try await ProcessRunner.run(
            URL(fileURLWithPath: "/usr/bin/git"),
            arguments: [
                "-C", Paths.packageRoot.path, "check-ignore", "manifests/overlays/portcullis-certs/webhook/tls.key",
                "manifests/overlays/portcullis-certs/proxy/ca.key",
            ])
        #expect(ignored.exitCode == 0, "the generated keys are gitignored: \(ignored.standardError)")
    }

    @Test("the base's webhook configurations are what portcullis webhook config prints, without its caBundle")
    func webhookConfigurations() async throws {
        let directory = try Paths.makeScratchDirectory("manifests-webhook-config")
        #expect(
            try await Self.portcullis(["certs", "--ip-address", "127.0.0.1", "--output-dir", directory.path]).succeeded)
        let printed = try await Self.portcullis([
            "webhook", "config", "--service", "portcullis-system/portcullis-webhook:443", "--ca-file",
            directory.appendingPathComponent("ca.crt").path,
        ])
        #expect(printed.succeeded, "\(printed.standardError)")
        let expected = printed.standardOutput.split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.contains("caBundle:") }.joined(separator: "\n")
        let shipped = try String(
            contentsOf: Self.manifests.appendingPathComponent("base/webhook-configurations.yaml"), encoding: .utf8)
        let withoutComments = shipped.split(separator: "\n", omittingEmptySubsequences: false)
            .drop { $0.hasPrefix("#") }.joined(separator: "\n")
        #expect(withoutComments == expected)
    }

    @Test(
        "the proxy's configuration parses as the proxy reads it and matches the pod's ports and mounts; the webhook's flags exist"
    )
    func configurationAndArguments() async throws {
        let objects = try await Self.kustomize(Self.manifests)
        let configMap = try #require(
            objects.first {
                $0["kind"] as? String == "ConfigMap"
                    && Self.string($0, "metadata", "name")?.hasPrefix("portcullis-proxy-config-") == true
            })
        let text = try #require(Self.string(configMap, "data", "proxy.yaml"))
        #expect(text.contains("policies: {cluster: true, defaultOutcome: Allow}"))
        let configuration = try ProxyConfiguration.parse(text, file: "proxy.yaml")
        #expect(configuration.policies.cluster)
        #expect(configuration.upstream.inCluster == true)
        #expect(configuration.approvals?.store == .cluster)
        #expect(configuration.approvals?.namespace == "portcullis-system")
        #expect(configuration.authentication.tokenReview?.enabled == true)

        let proxy = try #require(Self.find(objects, "Deployment", "portcullis-proxy"))
        let container = try #require((Self.value(proxy, "spec", "template", "spec", "containers") as? [Object])?.first)
        let mounts = try #require(container["volumeMounts"] as? [Object])
        func mountPath(_ volume: String) -> String? {
            mounts.first { $0["name"] as? String == volume }?["mountPath"] as? String
        }
        let ports = try #require(container["ports"] as? [Object])
        func port(_ name: String) -> Int? { ports.first { $0["name"] as? String == name }?["containerPort"] as? Int }
        #expect(configuration.listen.port == port("https"))
        #expect(configuration.management?.port == port("management"))
        #expect(configuration.recordings?.directory == mountPath("recordings"))
        #expect(configuration.audit.path?.hasPrefix((mountPath("audit") ?? "-") + "/") == true)
        #expect(configuration.tls.certFile == (mountPath("tls") ?? "") + "/tls.crt")
        #expect(configuration.tls.keyFile == (mountPath("tls") ?? "") + "/tls.key")
        #expect(mountPath("config") == "/etc/portcullis/proxy.yaml")
        #expect(container["args"] as? [String] == ["proxy", "--config", "/etc/portcullis/proxy.yaml"])

        let webhook = try #require(Self.find(objects, "Deployment", "portcullis-webhook"))
        let arguments = try #require(
            (Self.value(webhook, "spec", "template", "spec", "containers") as? [Object])?.first?["args"] as? [String])
        #expect(Array(arguments.prefix(2)) == ["webhook", "serve"])
        let help = try await Self.portcullis(["webhook", "serve", "--help"]).standardOutput
        for flag in arguments.dropFirst(2).map({ String($0.split(separator: "=")[0]) }) {
            #expect(help.contains(flag + " "), "\(flag) is not a flag of portcullis webhook serve")
        }
    }

    /// kube-apiserver 1.20 (the test cluster's) serves PodDisruptionBudget only as policy/v1beta1;
    /// clusters from 1.25 on serve only policy/v1, which the manifests therefore use. So the dry
    /// run expects exactly the two budgets to be refused for their version, with every other object
    /// accepted, and then sends the same budgets as v1beta1 (the same fields) to check their
    /// content. On a cluster that serves policy/v1, everything must be accepted as it is.
    @Test(
        "a server-side dry run of the base is accepted, but for the policy/v1 budgets 1.20 does not serve, which pass as v1beta1"
    )
    func serverDryRun() async throws {
        let cluster = try await TestCluster.shared()
        let home = try Paths.makeScratchDirectory("manifests-home")
        let kubectl = try Kubectl.named("1.33")
        func admin(_ arguments: [String], input: String? = nil) async throws -> ProcessResult {
            try await kubectl.run(
                arguments, kubeconfig: cluster.adminKubeconfig, home: home, standardInput: input.map { Data($0.utf8) })
        }
        // A dry run creates nothing, not even the namespace its objects go into. The test cluster
        // has it (scripts/testenv/cluster.yaml); should it not, it is made for the test and removed.
        let createdNamespace = !(try await admin(["get", "namespace", "portcullis-system"]).succeeded)
        if createdNamespace { #expect(try await admin(["create", "namespace", "portcullis-system"]).succeeded) }
        do {
            try await dryRun(admin)
        } catch {
            if createdNamespace { _ = try? await admin(["delete", "namespace", "portcullis-system", "--wait=false"]) }
            throw error
        }
        if createdNamespace {
            #expect(try await admin(["delete", "namespace", "portcullis-system", "--wait=false"]).succeeded)
        }
    }

    private func dryRun(_ admin: (_ arguments: [String], _ input: String?) async throws -> ProcessResult) async throws {
        let objects = try await Self.kustomize(Self.manifests)
        let servesPolicyV1 = try await admin(["api-versions"], nil).standardOutput.split(separator: "\n").contains(
            "policy/v1")
        let result = try await admin(["apply", "--dry-run=server", "-k", Self.manifests.path], nil)
        let accepted = result.standardOutput.split(separator: "\n").filter { $0.hasSuffix(" (server dry run)") }
        let budgets = objects.filter { $0["kind"] as? String == "PodDisruptionBudget" }
        #expect(budgets.count == 2)
        if servesPolicyV1 {
            #expect(result.succeeded, "\(result.standardError)")
            #expect(accepted.count == objects.count)
            return
        }
        #expect(accepted.count == objects.count - budgets.count, "\(result.standardOutput)\(result.standardError)")
        for object in objects where object["kind"] as? String != "PodDisruptionBudget" {
            let name = Self.string(object, "metadata", "name") ?? ""
            #expect(accepted.contains { $0.contains("/\(name) ") }, "\(object["kind"] ?? "") \(name) was not accepted")
        }
        let refusals = result.standardError.split(separator: "\n").filter { $0.hasPrefix("resource mapping not found") }
        #expect(refusals.count == 2, "\(result.standardError)")
        for name in ["portcullis-proxy", "portcullis-webhook"] {
            #expect(
                refusals.contains {
                    $0.contains("name: \"\(name)\"")
                        && $0.contains("no matches for kind \"PodDisruptionBudget\" in version \"policy/v1\"")
                }, "\(result.standardError)")
        }

        let built = try await Self.kubectl(["kustomize", Self.manifests.path]).standardOutput
        let v1beta1 = built.components(separatedBy: "\n---\n").filter { $0.contains("kind: PodDisruptionBudget\n") }
            .map { $0.replacingOccurrences(of: "apiVersion: policy/v1\n", with: "apiVersion: policy/v1beta1\n") }
        #expect(v1beta1.count == 2)
        let asBeta = try await admin(
            ["apply", "--dry-run=server", "-f", "-"], v1beta1.joined(separator: "\n---\n"))
        #expect(asBeta.succeeded, "\(asBeta.standardError)")
        #expect(asBeta.standardOutput.contains("poddisruptionbudget.policy/portcullis-proxy created (server dry run)"))
        #expect(
            asBeta.standardOutput.contains("poddisruptionbudget.policy/portcullis-webhook created (server dry run)"))
    }

    @Test(
        "the CRD schemas accept every shipped policy and refuse structurally bad policies and requests, naming each field"
    )
    func schemas() async throws {
        let cluster = try await TestCluster.shared()
        let home = try Paths.makeScratchDirectory("manifests-home")
        func admin(_ arguments: [String], input: String? = nil) async throws -> ProcessResult {
            try await Kubectl.named("1.33").run(
                arguments, kubeconfig: cluster.adminKubeconfig, home: home, standardInput: input.map { Data($0.utf8) })
        }
        let policies = Self.manifests.appendingPathComponent("policies")
        let paths = ["examples", "sandbox"].map { policies.appendingPathComponent($0).path }
        let shipped = try await admin(["apply", "--dry-run=server"] + paths.flatMap { ["-f", $0] })
        // The schema is checked before validating webhooks run. A test cluster reused across test
        // runs (PORTCULLIS_TEST_CLUSTER) may still have another run's webhook configuration, whose
        // guard of AccessPolicies is no longer served: a policy refused only by that call has
        // passed the schema.
        let accepted = shipped.standardOutput.split(separator: "\n").filter {
            $0.hasPrefix("accesspolicy.portcullis.dev/") && $0.hasSuffix(" created (server dry run)")
        }
        let problems = shipped.standardError.split(separator: "\n")
        let otherProblems = problems.filter { !$0.contains("failed calling webhook \"guard.") }
        #expect(otherProblems.isEmpty, "\(shipped.standardError)")
        #expect(accepted.count + problems.count == (try PolicyLoader.load(paths: paths)).count, "\(shipped)")
        #expect(!accepted.isEmpty || !problems.isEmpty)

        // --validate=false: the apiserver answers, not kubectl's check against the published schema.
        let bad = try await admin(
            ["apply", "--dry-run=server", "--validate=false", "-f", "-"],
            input: """
                apiVersion: portcullis.dev/v1alpha1
                kind: AccessPolicy
                metadata: {name: structurally-bad}
                spec:
                  mode: Strict
                  match: {subjects: [{user: a, group: b}], resources: [Deployments], operations: [PATCH]}
                  matchConditions: [{name: no-expression}]
                  rules:
                  - {name: r, action: Block, message: m, review: {approvers: {groups: [sre]}, grantFor: soon}}
                  - {name: s, action: Mutate, patch: [{op: move, path: metadata}]}
                  - {name: t, action: Mask, mask: {fields: "data"}}
                """)
        #expect(!bad.succeeded)
        for problem in [
            #"spec.mode: Unsupported value: "Strict""#, #"spec.match.subjects: Invalid value: 1"#,
            #"spec.match.resources: Invalid value: "Deployments""#,
            #"spec.match.operations: Unsupported value: "PATCH""#,
            "spec.matchConditions.expression: Required value", #"spec.rules.action: Unsupported value: "Block""#,
            #"spec.rules.review.grantFor: Invalid value: "soon""#, #"spec.rules.patch.op: Unsupported value: "move""#,
            #"spec.rules.patch.path: Invalid value: "metadata""#, #"spec.rules.mask.fields: Invalid value: "string""#,
        ] {
            #expect(bad.standardError.contains(problem), "\(problem)\n\(bad.standardError)")
        }
        let duplicate = try await admin(
            ["apply", "--dry-run=server", "--validate=false", "-f", "-"],
            input: """
                apiVersion: portcullis.dev/v1alpha1
                kind: AccessPolicy
                metadata: {name: duplicate-rules}
                spec:
                  rules: [{name: r, action: Allow}, {name: r, action: Allow}]
                """)
        #expect(duplicate.standardError.contains("spec.rules[1]: Duplicate value"), "\(duplicate.standardError)")
        let request = try await admin(
            ["apply", "--dry-run=server", "--validate=false", "-f", "-"],
            input: """
                apiVersion: portcullis.dev/v1alpha1
                kind: AccessRequest
                metadata: {name: no-message, namespace: portcullis-system}
                spec:
                  requester: {user: alice}
                  request: {text: t, verb: get, resource: pods, fingerprint: f}
                  policy: p
                  rule: r
                  approvers: {groups: [sre]}
                  grantFor: an hour
                """)
        #expect(request.standardError.contains("spec.message: Required value"), "\(request.standardError)")
        #expect(request.standardError.contains(#"spec.grantFor: Invalid value: "an hour""#), "\(request.standardError)")
    }

    // MARK: - Helpers

    /// A scratch copy of `manifests/` whose portcullis-certs overlay has the files it needs, made as
    /// its kustomization says.
    static func copyWithCertificates() async throws -> URL {
        let copy = try Paths.makeScratchDirectory("manifests").appendingPathComponent("manifests")
        try FileManager.default.copyItem(at: manifests, to: copy)
        let overlay = copy.appendingPathComponent("overlays/portcullis-certs")
        for component in ["proxy", "webhook"] {
            try? FileManager.default.removeItem(at: overlay.appendingPathComponent(component))
            let made = try await portcullis([
                "certs", "--service", "portcullis-\(component)", "--output-dir",
                overlay.appendingPathComponent(component).path,
            ])
            guard made.succeeded else { throw TestSupportError("portcullis certs failed: \(made.standardError)") }
        }
        return copy
    }

    /// The objects `kubectl kustomize` builds from a directory.
    static func kustomize(_ directory: URL) async throws -> [Object] {
        let built = try await kubectl(["kustomize", directory.path])
        guard built.succeeded else {
            throw TestSupportError("kubectl kustomize \(directory.path) failed: \(built.standardError)")
        }
        return try Yams.load_all(yaml: built.standardOutput).compactMap { $0 as? Object }
    }

    static func kubectl(_ arguments: [String]) async throws -> ProcessResult {
        let home = try Paths.makeScratchDirectory("manifests-home")
        return try await ProcessRunner.run(
            try Kubectl.named("1.33").path, arguments: arguments, environment: Kubectl.environment(home: home))
    }

    static func portcullis(_ arguments: [String]) async throws -> ProcessResult {
        try await ProcessRunner.run(Paths.productsDirectory.appendingPathComponent("portcullis"), arguments: arguments)
    }

    static func checkDeployment(
        _ deployment: Object, probePort: Int, scheme: String, secret: String, label: String
    ) throws {
        let name = string(deployment, "metadata", "name") ?? ""
        #expect(value(deployment, "spec", "replicas") as? Int == 2, "\(label) \(name)")
        let pod = try #require(value(deployment, "spec", "template", "spec") as? Object)
        #expect(value(pod, "securityContext", "runAsNonRoot") as? Bool == true)
        #expect(value(pod, "securityContext", "runAsUser") as? Int == 65532)
        #expect(value(pod, "securityContext", "runAsGroup") as? Int == 65532)
        #expect(string(pod, "securityContext", "seccompProfile", "type") == "RuntimeDefault")
        let term = try #require(
            (value(pod, "affinity", "podAntiAffinity", "preferredDuringSchedulingIgnoredDuringExecution") as? [Object])?
                .first)
        #expect(string(term, "podAffinityTerm", "topologyKey") == "kubernetes.io/hostname")
        let container = try #require((pod["containers"] as? [Object])?.first)
        #expect(container["image"] as? String == "ghcr.io/portcullis-dev/portcullis:latest")
        #expect(value(container, "securityContext", "readOnlyRootFilesystem") as? Bool == true)
        #expect(value(container, "securityContext", "allowPrivilegeEscalation") as? Bool == false)
        #expect(value(container, "securityContext", "capabilities", "drop") as? [String] == ["ALL"])
        #expect(string(container, "securityContext", "seccompProfile", "type") == "RuntimeDefault")
        #expect(value(container, "resources", "requests") != nil && value(container, "resources", "limits") != nil)
        let ports = try #require(container["ports"] as? [Object])
        for (probe, path) in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")] {
            #expect(string(container, probe, "httpGet", "path") == path, "\(name) \(probe)")
            #expect((string(container, probe, "httpGet", "scheme") ?? "HTTP") == scheme, "\(name) \(probe)")
            let portName = string(container, probe, "httpGet", "port")
            #expect(
                ports.first { $0["name"] as? String == portName }?["containerPort"] as? Int == probePort,
                "\(name) \(probe) is on port \(probePort)")
        }
        let volumes = try #require(pod["volumes"] as? [Object])
        #expect(volumes.contains { string($0, "secret", "secretName")?.hasPrefix(secret) == true }, "\(label) \(name)")
        if name == "portcullis-proxy" {
            #expect(volumes.contains { string($0, "persistentVolumeClaim", "claimName") == "portcullis-recordings" })
        }
    }

    static func find(_ objects: [Object], _ kind: String, _ name: String) -> Object? {
        objects.first { $0["kind"] as? String == kind && string($0, "metadata", "name") == name }
    }

    static func value(_ object: Any?, _ path: String...) -> Any? {
        path.reduce(object) { ($0 as? Object)?[$1] }
    }

    static func string(_ object: Any?, _ path: String...) -> String? {
        path.reduce(object) { ($0 as? Object)?[$1] } as? String
    }

    /// A base64 value as kustomize writes it, folded over several lines, in one piece.
    static func unfolded(_ text: String?) -> String? {
        text.map { $0.filter { !$0.isWhitespace } }
    }
}
