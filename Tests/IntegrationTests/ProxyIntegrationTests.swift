import Foundation
import KubeProxy
import Policy
import Sandbox
import TestSupport
import Testing
import Webhook

/// The proxy in front of the real kube-apiserver, driven by real kubectl: kubectl → Portcullis
/// (TLS, authentication, policy) → the apiserver as `portcullis-proxy`, impersonating the caller.
@Suite("Proxy in front of the real apiserver", .serialized, .timeLimit(.minutes(5)))
struct ProxyIntegrationTests {
    struct Running: Sendable {
        let cluster: ClusterDescription
        let port: Int
        let directory: URL
        let caFile: URL
        let auditFile: URL
        let approvalsNamespace: String
        /// Exec and attach recordings (input included), one asciicast file per session.
        let recordings: URL

        /// A kubeconfig for `identity` that points at the proxy with that identity's token.
        func kubeconfig(_ identity: TestIdentity) throws -> URL {
            let file = directory.appendingPathComponent("\(identity.rawValue)-via-proxy.kubeconfig")
            try """
            apiVersion: v1
            kind: Config
            clusters: [{name: portcullis, cluster: {server: "https://127.0.0.1:\(port)", certificate-authority: "\(caFile.path)"}}]
            users: [{name: \(identity.rawValue), user: {token: "\(cluster.token(for: identity))"}}]
            contexts: [{name: portcullis, context: {cluster: portcullis, user: \(identity.rawValue)}}]
            current-context: portcullis
            """.write(to: file, atomically: true, encoding: .utf8)
            return file
        }
    }

    actor Fixture {
        static let shared = Fixture()
        private var running: Running?
        private var server: ProxyServer?

        func start() async throws -> Running {
            if let running { return running }
            let cluster = try await TestCluster.shared()
            let directory = try Paths.makeScratchDirectory("proxy")
            let bundle = try CertificateBundle.generate(
                commonName: "127.0.0.1", dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"])
            try bundle.write(to: directory)
            let engine = try PolicyEngine(paths: [
                Paths.packageRoot.appendingPathComponent("manifests/policies/examples").path,
                Paths.packageRoot.appendingPathComponent("Tests/IntegrationTests/Fixtures/proxy-policies.yaml").path,
                Paths.packageRoot.appendingPathComponent(
                    "Tests/IntegrationTests/Fixtures/proxy-portforward-policies.yaml"
                ).path,
            ])
            let upstream = try UpstreamConfiguration.kubeconfig(cluster.kubeconfig(for: "proxy").path)
            let chain = AuthenticatorChain([
                ClientCertificateAuthenticator(),
                try StaticTokenAuthenticator(
                    contentsOf: cluster.pkiDirectory.appendingPathComponent("tokens.csv").path),
                TokenReviewAuthenticator(
                    client: UpstreamTokenReviewClient(client: try KubernetesClient(configuration: upstream))),
            ])
            let approvalsNamespace = try await startApprovalWebhook(
                cluster: cluster, bundle: bundle, directory: directory)
            let auditFile = directory.appendingPathComponent("audit.jsonl")
            let recordings = directory.appendingPathComponent("recordings")
            try FileManager.default.createDirectory(at: recordings, withIntermediateDirectories: true)
            let server = try ProxyServer(
                configuration: .init(
                    host: "127.0.0.1", port: 0, certificateChainFile: directory.appendingPathComponent("tls.crt").path,
                    privateKeyFile: directory.appendingPathComponent("tls.key").path,
                    clientCAFile: cluster.caFile.path),
                upstream: upstream, policies: PolicyStore(engine),
                authenticate: chain.callerAuthenticator, approvalsNamespace: approvalsNamespace,
                audit: try AuditLog(path: auditFile.path),
                recordings: .init(directory: recordings.path, recordInput: true, failClosed: true))
            let port = try await server.start()
            self.server = server
            let running = Running(
                cluster: cluster, port: port, directory: directory, caFile: directory.appendingPathComponent("ca.crt"),
                auditFile: auditFile, approvalsNamespace: approvalsNamespace, recordings: recordings)
            self.running = running
            return running
        }

        private var webhook: WebhookServer?

        /// The webhook guards and stamps AccessRequests; it is confined to a namespace of its own.
        private func startApprovalWebhook(
            cluster: ClusterDescription, bundle: CertificateBundle, directory: URL
        ) async throws -> String {
            let id = UUID().uuidString.prefix(8).lowercased()
            let namespace = "approvals-\(id)"
            let webhook = WebhookServer(
                configuration: .init(
                    host: "127.0.0.1", port: 0, certificateChainFile: directory.appendingPathComponent("tls.crt").path,
                    privateKeyFile: directory.appendingPathComponent("tls.key").path),
                handler: AdmissionHandler(
                    policies: PolicyStore(PolicyEngine(policies: [])), options: .init(proxyUsers: ["portcullis-proxy"]))
            )
            let port = try await webhook.start()
            self.webhook = webhook
            let configuration = WebhookConfigurationGenerator(
                name: "approvals-\(id)", endpoint: .url("https://127.0.0.1:\(port)"),
                caBundlePEM: bundle.caCertificatePEM,
                onlyNamespacesLabelled: ["portcullis-approvals": String(id)]
            ).manifests(for: [])
            let setup = """
                apiVersion: v1
                kind: Namespace
                metadata: {name: \(namespace), labels: {portcullis-approvals: "\(id)"}}
                ---

                """
            let applied = try await ProxyIntegrationTests.admin(["apply", "-f", "-"], input: setup + configuration)
            guard applied.succeeded else { throw TestSupportError("webhook setup failed: \(applied.standardError)") }
            try await Task.sleep(for: .seconds(2))
            return namespace
        }
    }

    static func kubectl(
        _ arguments: [String], as identity: TestIdentity, minor: String = "1.33", input: String? = nil,
        environment: [String: String] = [:]
    ) async throws -> ProcessResult {
        let running = try await Fixture.shared.start()
        return try await Kubectl.named(minor).run(
            arguments, kubeconfig: try running.kubeconfig(identity), home: try Paths.makeScratchDirectory("home"),
            environment: environment, standardInput: input.map { Data($0.utf8) })
    }

    static func admin(_ arguments: [String], input: String? = nil) async throws -> ProcessResult {
        let cluster = try await TestCluster.shared()
        return try await Kubectl.named("1.33").run(
            arguments, kubeconfig: cluster.adminKubeconfig, home: try Paths.makeScratchDirectory("home"),
            standardInput: input.map { Data($0.utf8) })
    }

    @Test("reads work through the proxy for every kubectl version", arguments: ["1.27", "1.30", "1.33", "1.37"])
    func reads(minor: String) async throws {
        let namespaces = try await Self.kubectl(["get", "namespaces", "-o", "name"], as: .alice, minor: minor)
        #expect(namespaces.exitCode == 0, "\(namespaces.standardError)")
        #expect(namespaces.standardOutput.contains("namespace/dev"))
        let pods = try await Self.kubectl(["-n", "prod", "get", "pods"], as: .alice, minor: minor)
        #expect(pods.exitCode == 0, "\(pods.standardError)")
        #expect(pods.standardOutput.contains("web"))
    }

    @Test("RBAC applies to the impersonated user, and the apiserver sees the proxy acting as them")
    func impersonatedRBAC() async throws {
        let refused = try await Self.kubectl(["-n", "prod", "delete", "pod", "web", "--dry-run=server"], as: .alice)
        #expect(refused.exitCode == 1)
        #expect(
            refused.standardError.contains(
                #"User "alice" cannot delete resource "pods" in API group "" in the namespace "prod""#))
        let running = try await Fixture.shared.start()
        let auditLog = try String(contentsOfFile: running.cluster.values["APISERVER_AUDIT_LOG"] ?? "", encoding: .utf8)
        let events = auditLog.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        let deletes = events.filter {
            $0["verb"] as? String == "delete" && ($0["objectRef"] as? [String: Any])?["namespace"] as? String == "prod"
        }
        #expect(!deletes.isEmpty)
        for event in deletes {
            #expect((event["user"] as? [String: Any])?["username"] as? String == "portcullis-proxy")
            #expect((event["impersonatedUser"] as? [String: Any])?["username"] as? String == "alice")
        }
        #expect(
            !auditLog.contains(running.cluster.token(for: .alice)), "the user's token must never reach the apiserver")
    }

    @Test("a denied request shows the policy's message, and a warned one the warning")
    func denyAndWarn() async throws {
        _ = try await Self.admin(["-n", "dev", "create", "configmap", "protected-settings", "--from-literal=a=b"])
        let denied = try await Self.kubectl(["-n", "dev", "delete", "configmap", "protected-settings"], as: .alice)
        #expect(denied.exitCode == 1)
        #expect(
            denied.standardError.contains(
                "Error from server (Forbidden): protected configmaps cannot be deleted; ask the platform team"))
        let listed = try await Self.kubectl(["-n", "dev", "get", "configmaps"], as: .alice)
        #expect(listed.exitCode == 0, "\(listed.standardError)")
        #expect(listed.standardError.contains("Warning: configmap listings are audited"))
    }

    @Test("Secret values are masked in -o yaml, -o json and lists")
    func masking() async throws {
        _ = try await Self.admin(["-n", "dev", "delete", "secret", "db-password", "--ignore-not-found"])
        let created = try await Self.admin([
            "-n", "dev", "create", "secret", "generic", "db-password", "--from-literal=password=hunter2",
        ])
        #expect(created.exitCode == 0, "\(created.standardError)")
        let secretValue = Data("hunter2".utf8).base64EncodedString()
        for format in ["yaml", "json"] {
            let shown = try await Self.kubectl(["-n", "dev", "get", "secret", "db-password", "-o", format], as: .bob)
            #expect(shown.exitCode == 0, "\(shown.standardError)")
            #expect(!shown.standardOutput.contains(secretValue))
            #expect(shown.standardOutput.contains(Data("****".utf8).base64EncodedString()))
        }
        let listed = try await Self.kubectl(["-n", "dev", "get", "secrets", "-o", "json"], as: .bob)
        #expect(!listed.standardOutput.contains(secretValue))
        let table = try await Self.kubectl(["-n", "dev", "get", "secrets"], as: .bob)
        #expect(table.standardOutput.contains("db-password"), "\(table.standardError)")
        let direct = try await Self.admin(["-n", "dev", "get", "secret", "db-password", "-o", "yaml"])
        #expect(direct.standardOutput.contains(secretValue), "straight to the apiserver the value is there")
    }

    @Test("a client's impersonation is refused unless a policy explicitly allows it")
    func clientImpersonation() async throws {
        let refused = try await Self.kubectl(["--as=bob", "get", "namespaces"], as: .alice)
        #expect(refused.exitCode == 1)
        #expect(
            refused.standardError.contains(
                #"alice may not impersonate users "bob" through Portcullis: no policy allows it"#),
            "\(refused.standardError)")

        // The fixture policy lets sre act as alice in group developers, and as nobody else.
        let allowed = try await Self.kubectl(
            ["--as=alice", "--as-group=developers", "-n", "dev", "get", "pods", "-o", "name"], as: .bob)
        #expect(allowed.exitCode == 0, "\(allowed.standardError)")
        #expect(allowed.standardOutput.contains("pod/web"))
        let asAlice = try await Self.kubectl(
            ["--as=alice", "--as-group=developers", "-n", "prod", "delete", "pod", "web", "--dry-run=server"], as: .bob)
        #expect(
            asAlice.standardError.contains(#"User "alice" cannot delete resource "pods""#),
            "RBAC judges the impersonated user: \(asAlice.standardError)")
        let escalation = try await Self.kubectl(
            ["--as=alice", "--as-group=system:masters", "get", "secrets", "-A"], as: .bob)
        #expect(escalation.exitCode == 1)
        #expect(escalation.standardError.contains(#"groups "system:masters""#), "\(escalation.standardError)")

        let running = try await Fixture.shared.start()
        let audit = try String(contentsOf: running.auditFile, encoding: .utf8)
        #expect(
            audit.split(separator: "\n").contains {
                $0.contains(#""user":{"#) && $0.contains(#""username":"bob""#)
                    && $0.contains(#""impersonatedUser":{"#) && $0.contains(#""username":"alice""#)
            }, "the audit line names both the caller and whom they acted as")
    }

    @Test("bad or missing tokens get a plain 401")
    func unauthenticated() async throws {
        let running = try await Fixture.shared.start()
        for token in ["not-a-token", ""] {
            let result = try await ProcessRunner.run(
                URL(fileURLWithPath: "/usr/bin/curl"),
                arguments: [
                    "-sS", "--cacert", running.caFile.path, "-H", "Authorization: Bearer \(token)",
                    "-o", "/dev/stdout", "-w", "\n%{http_code}", "https://127.0.0.1:\(running.port)/api/v1/namespaces",
                ])
            #expect(result.standardOutput.hasSuffix("\n401"), "\(result.standardOutput)")
            #expect(result.standardOutput.contains(#""message":"Unauthorized""#))
            #expect(!result.standardOutput.contains("static token"))
        }
    }

    @Test(
        "ambiguous paths cannot reach a resource",
        arguments: [
            "/api/v1/namespaces/dev/../prod/secrets", "/api/v1/namespaces/prod%2Fsecrets",
            "//api/v1/namespaces/prod/secrets",
        ])
    func pathTricks(path: String) async throws {
        let running = try await Fixture.shared.start()
        let result = try await ProcessRunner.run(
            URL(fileURLWithPath: "/usr/bin/curl"),
            arguments: [
                "-sS", "--path-as-is", "--cacert", running.caFile.path, "-H",
                "Authorization: Bearer \(running.cluster.token(for: .bob))", "-w", "\n%{http_code}",
                "https://127.0.0.1:\(running.port)\(path)",
            ])
        #expect(result.standardOutput.hasSuffix("\n400"), "\(result.standardOutput)")
    }

    @Test(
        "exec passes through with exit codes, over SPDY and after the WebSocket fallback",
        arguments: ["1.27", "1.33", "1.37"])
    func exec(minor: String) async throws {
        let result = try await Self.kubectl(
            ["-n", "dev", "exec", "web", "-c", "app", "--", "sh", "-c", "echo via-proxy; echo err >&2; exit 3"],
            as: .alice, minor: minor)
        #expect(result.exitCode == 3, "\(result.standardError)")
        #expect(result.standardOutput == "via-proxy\n")
        #expect(Kubectl.withoutClientLog(result.standardError).hasPrefix("err\n"), "\(result.standardError)")
    }

    @Test("an exec the policies deny is refused before it starts")
    func execDenied() async throws {
        let result = try await Self.kubectl(["-n", "prod", "exec", "web", "--", "rm", "-rf", "/tmp/data"], as: .bob)
        #expect(result.exitCode == 1)
        #expect(result.standardError.contains("recursive deletes are blocked in production"), "\(result.standardError)")
    }

    @Test("port-forward works through the proxy")
    func portForward() async throws {
        let running = try await Fixture.shared.start()
        let body = Data((0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        let server = try LoopbackServer(.http(body: body))
        let forward = try BackgroundProcess(
            executable: try Kubectl.named("1.33").path,
            arguments: [
                "--kubeconfig", try running.kubeconfig(.alice).path, "-n", "dev", "port-forward", "pod/web",
                ":\(server.port)",
            ],
            environment: Kubectl.environment(home: try Paths.makeScratchDirectory("home")))
        defer { forward.stop() }
        let port = try #require(Int(try await forward.waitForMatch(#"Forwarding from 127\.0\.0\.1:(\d+)"#)))
        #expect(try await LoopbackClient.httpGet(port: port) == body)
    }

    @Test("watches stream events as they happen")
    func watch() async throws {
        let running = try await Fixture.shared.start()
        let name = "watched-\(UUID().uuidString.prefix(6).lowercased())"
        let watch = try BackgroundProcess(
            executable: try Kubectl.named("1.33").path,
            arguments: [
                "--kubeconfig", try running.kubeconfig(.alice).path, "-n", "dev", "get", "configmaps", "-w", "-o",
                "name",
            ],
            environment: Kubectl.environment(home: try Paths.makeScratchDirectory("home")))
        defer { watch.stop() }
        try await Task.sleep(for: .seconds(1))
        _ = try await Self.admin(["-n", "dev", "create", "configmap", name])
        _ = try await watch.waitForMatch("configmap/(\(name))")
    }

    @Test("every request lands in the audit log with the caller and the decision")
    func audit() async throws {
        _ = try await Self.kubectl(["-n", "dev", "delete", "configmap", "protected-audit-check"], as: .alice)
        let running = try await Fixture.shared.start()
        let lines = try String(contentsOf: running.auditFile, encoding: .utf8).split(separator: "\n")
        let events = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let denied = try #require(
            events.last { ($0["objectRef"] as? [String: Any])?["name"] as? String == "protected-audit-check" })
        #expect(denied["apiVersion"] as? String == "audit.k8s.io/v1")
        #expect((denied["user"] as? [String: Any])?["username"] as? String == "alice")
        #expect((denied["responseStatus"] as? [String: Any])?["code"] as? Int == 403)
        let annotations = try #require(denied["annotations"] as? [String: String])
        #expect(annotations["portcullis.dev/decision"] == "Deny")
        #expect(annotations["portcullis.dev/rule"] == "keep-protected")
        #expect(!lines.joined().contains(running.cluster.token(for: .alice)))
    }

    @Test("a Review rule holds a command until an approver who is not the requester approves it")
    func approvalRoundTrip() async throws {
        let running = try await Fixture.shared.start()
        let command = ["-n", "dev", "exec", "web", "-c", "app", "--", "psql", "--version"]
        let held = try await Self.kubectl(command, as: .alice)
        #expect(held.exitCode == 1)
        // kubectl 1.33 tries WebSocket, then SPDY: the second attempt finds the request the first filed.
        #expect(held.standardError.contains("psql in dev needs an approval: "), "\(held.standardError)")
        let name = try #require(held.standardError.firstMatch(of: /AccessRequest (ar-[a-z0-9]+)/)?.1).description
        #expect(held.standardError.contains("kubectl portcullis approve -n \(running.approvalsNamespace) \(name)"))

        let again = try await Self.kubectl(command, as: .alice)
        #expect(again.standardError.contains("waiting for approval of AccessRequest \(name)"))

        let own = try await Self.portcullis([
            "approve", "-n", running.approvalsNamespace, name, "--kubeconfig", try running.kubeconfig(.alice).path,
        ])
        #expect(own.exitCode == 1)
        #expect(
            own.standardError.contains("alice requested this access and cannot approve or deny it"),
            "\(own.standardError)")

        let approved = try await Self.portcullis([
            "approve", "-n", running.approvalsNamespace, name, "--kubeconfig", try running.kubeconfig(.bob).path,
        ])
        #expect(approved.exitCode == 0, "\(approved.standardError)")
        #expect(approved.standardOutput.contains("approved \(running.approvalsNamespace)/\(name)"))

        let stamped = try await Self.admin([
            "-n", running.approvalsNamespace, "get", "accessrequest", name, "-o",
            "jsonpath={.status.state} {.status.decidedBy} {.status.expiresAt}",
        ])
        #expect(stamped.standardOutput.hasPrefix("Approved bob 20"), "\(stamped.standardOutput)")

        let released = try await Self.kubectl(command, as: .alice)
        #expect(released.exitCode == 0, "\(released.standardError)")
        #expect(released.standardOutput.contains("psql"))

        let other = try await Self.kubectl(
            ["-n", "dev", "exec", "web", "-c", "app", "--", "psql", "-c", "select 1"], as: .alice)
        let otherName = other.standardError.firstMatch(of: /AccessRequest (ar-[a-z0-9]+)/)?.1.description
        #expect(other.exitCode == 1)
        #expect(
            otherName != nil && otherName != name, "an approval covers only the same command: \(other.standardError)")
    }

    static func portcullis(_ arguments: [String]) async throws -> ProcessResult {
        try await ProcessRunner.run(
            Paths.productsDirectory.appendingPathComponent("portcullis"), arguments: arguments,
            environment: ["HOME": try Paths.makeScratchDirectory("home").path, "PATH": "/usr/bin:/bin"])
    }

    @Test("client certificates authenticate: CN is the user, O the groups")
    func clientCertificates() async throws {
        let running = try await Fixture.shared.start()
        let kubeconfig = running.directory.appendingPathComponent("alice-certificate.kubeconfig")
        let pki = running.cluster.pkiDirectory.path
        try """
        apiVersion: v1
        kind: Config
        clusters: [{name: portcullis, cluster: {server: "https://127.0.0.1:\(running.port)", certificate-authority: "\(running.caFile.path)"}}]
        users: [{name: alice, user: {client-certificate: "\(pki)/alice.crt", client-key: "\(pki)/alice.key"}}]
        contexts: [{name: portcullis, context: {cluster: portcullis, user: alice}}]
        current-context: portcullis
        """.write(to: kubeconfig, atomically: true, encoding: .utf8)
        let result = try await Kubectl.named("1.33").run(
            ["-n", "dev", "exec", "web", "--", "sh", "-c", "echo certificate"], kubeconfig: kubeconfig,
            home: try Paths.makeScratchDirectory("home"))
        #expect(result.exitCode == 0, "\(result.standardError)")
        #expect(result.standardOutput == "certificate\n")
        let refused = try await Kubectl.named("1.33").run(
            ["-n", "prod", "exec", "web", "--", "true"], kubeconfig: kubeconfig,
            home: try Paths.makeScratchDirectory("home"))
        #expect(refused.standardError.contains(#"User "alice" cannot create resource "pods/exec""#), "RBAC sees alice")
    }

    @Test("ServiceAccount tokens authenticate through TokenReview and are never forwarded")
    func serviceAccountTokens() async throws {
        let running = try await Fixture.shared.start()
        let name = "ci-bot-\(UUID().uuidString.prefix(6).lowercased())"
        let setup = try await Self.admin(
            ["apply", "-f", "-"],
            input: """
                apiVersion: v1
                kind: ServiceAccount
                metadata: {name: \(name), namespace: dev}
                ---
                apiVersion: rbac.authorization.k8s.io/v1
                kind: RoleBinding
                metadata: {name: \(name), namespace: dev}
                roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: portcullis-test:pod-reader}
                subjects: [{kind: ServiceAccount, name: \(name), namespace: dev}]
                """)
        #expect(setup.exitCode == 0, "\(setup.standardError)")
        let request = try await Self.admin(
            ["create", "--raw", "/api/v1/namespaces/dev/serviceaccounts/\(name)/token", "-f", "-"],
            input: #"{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{"expirationSeconds":600}}"#)
        let token = try #require(
            ((try? JSONSerialization.jsonObject(with: Data(request.standardOutput.utf8))) as? [String: Any]).flatMap {
                ($0["status"] as? [String: Any])?["token"] as? String
            }, "\(request.standardError)")
        let listed = try await Kubectl.named("1.33").run(
            ["--token", token, "-n", "dev", "get", "pods", "-o", "name"], kubeconfig: try running.kubeconfig(.carol),
            home: try Paths.makeScratchDirectory("home"))
        #expect(listed.exitCode == 0, "\(listed.standardError)")
        #expect(listed.standardOutput.contains("pod/web"))
        let auditLog = try String(contentsOfFile: running.cluster.values["APISERVER_AUDIT_LOG"] ?? "", encoding: .utf8)
        #expect(
            auditLog.contains(
                #""impersonatedUser":{"groups":["system:serviceaccounts","system:serviceaccounts:dev","system:authenticated"],"uid":"#
            )
                || auditLog.contains("system:serviceaccount:dev:\(name)"))
        #expect(!auditLog.contains(token), "the ServiceAccount token must not reach the apiserver as a credential")
    }
}
