import Foundation
import Policy
import Webhook

/// `portcullis sandbox`: a local cluster with Portcullis in front of it, and everything needed to
/// try it written to `.sandbox/` in the current directory.
///
/// The test cluster's supervisor runs two proxy replicas and the webhook as more of its components
/// (the same `portcullis` binary), so they start after the cluster is seeded and stop first. The
/// policies are `AccessPolicy` objects in the cluster, applied while it is seeded and watched by
/// all three, as in a real deployment; the two replicas share one port (SO_REUSEPORT), so the
/// kernel spreads connections between them as a Service would.
///
/// Files:
/// - `kubeconfig`: alice (group `developers`) through the proxy;
/// - `approver.kubeconfig`: bob (group `sre`) through the proxy;
/// - `admin.kubeconfig`: cluster-admin, straight to the apiserver;
/// - `audit.jsonl`: the proxies' audit log; `recordings/`: asciicast files of exec and attach
///   sessions; `proxy.yaml`: the proxies' configuration;
/// - `pki/`: the CA and serving certificate of the proxy and webhook;
/// - `sandbox.env`: the ports; `cluster/`: the test cluster's state (PKI, logs, `cluster.env`).
public struct PortcullisSandbox: Sendable {
    public let directory: URL
    public let scripts: TestEnvironmentScripts
    /// The `portcullis` binary the proxy and webhook run as.
    public let executable: URL

    public init(directory: URL, scripts: TestEnvironmentScripts, executable: URL) {
        self.directory = directory.standardizedFileURL
        self.scripts = scripts
        self.executable = executable
    }

    public var adminKubeconfig: URL { file("admin.kubeconfig") }
    public var userKubeconfig: URL { file("kubeconfig") }
    public var approverKubeconfig: URL { file("approver.kubeconfig") }
    public var auditLog: URL { file("audit.jsonl") }
    public var proxyConfiguration: URL { file("proxy.yaml") }
    public var pkiDirectory: URL { file("pki") }
    /// One asciicast file per exec and attach session through the proxy.
    public var recordingsDirectory: URL { file("recordings") }
    var settingsFile: URL { file("sandbox.env") }
    var clusterDirectory: URL { file("cluster") }

    /// The namespace where held requests wait as AccessRequests.
    public static let approvalsNamespace = "portcullis-system"

    /// The example policies, plus the sandbox's own (an approval to try without a database),
    /// applied to the cluster as it is seeded.
    public var policyDirectories: [URL] {
        let manifests = scripts.directory.deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("manifests/policies")
        return [manifests.appendingPathComponent("examples"), manifests.appendingPathComponent("sandbox")]
    }

    /// The cluster alone: enough to ask for its status or stop it.
    public var cluster: LocalCluster { LocalCluster(stateDirectory: clusterDirectory, scripts: scripts) }

    /// Chooses ports and writes the PKI and the proxy's configuration, then returns the cluster
    /// with the proxy and webhook as components. A sandbox that is already running keeps its
    /// ports and certificates, so a second `--detach` changes nothing.
    public func prepare() async throws -> (cluster: LocalCluster, settings: SandboxSettings) {
        let settings: SandboxSettings
        if let running = try? String(contentsOf: settingsFile, encoding: .utf8),
            let existing = try? SandboxSettings(envFileContents: running), try await cluster.status().ready
        {
            settings = existing
        } else {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            settings = try SandboxSettings.freePorts()
            let bundle = try CertificateBundle.generate(
                commonName: "127.0.0.1", dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"],
                caName: "portcullis-sandbox-ca")
            try bundle.write(to: pkiDirectory)
            try FileManager.default.createDirectory(at: recordingsDirectory, withIntermediateDirectories: true)
            try Data(proxyConfigurationText(settings).utf8).write(to: proxyConfiguration, options: .atomic)
            try Data(settings.envFileContents.utf8).write(to: settingsFile, options: .atomic)
        }
        var cluster = self.cluster
        cluster.components = components(settings)
        cluster.manifests = policyDirectories
        return (cluster, settings)
    }

    /// The webhook and the two proxy replicas. A replica counts as started once its management
    /// port answers (it opens after the shared proxy port), since the shared port would answer for
    /// the second replica as soon as the first listens.
    func components(_ settings: SandboxSettings) -> [LocalCluster.Component] {
        let binary = Self.quoted(executable.path)
        let pki = pkiDirectory.path
        let proxy = "exec \(binary) proxy --config \(Self.quoted(proxyConfiguration.path))"
        return [
            .init(
                name: "webhook",
                command: "exec \(binary) webhook serve --host 127.0.0.1 --port \(settings.webhookPort) "
                    + "--tls-cert \(Self.quoted(pki + "/tls.crt")) --tls-key \(Self.quoted(pki + "/tls.key")) "
                    + "--cluster-policies --kubeconfig \(Self.quoted(proxyKubeconfig.path)) "
                    + "--proxy-user portcullis-proxy",
                port: settings.webhookPort),
            .init(name: "proxy-1", command: proxy, port: settings.managementPort),
            .init(
                name: "proxy-2", command: proxy + " --management-port \(settings.secondManagementPort)",
                port: settings.secondManagementPort),
        ]
    }

    /// The proxies' identity upstream (`portcullis-proxy`, allowed to impersonate); the webhook
    /// watches AccessPolicies with it too.
    var proxyKubeconfig: URL { clusterDirectory.appendingPathComponent("proxy.kubeconfig") }

    /// The proxy's configuration: the cluster's own CA for client certificates, its token file for
    /// the test identities, TokenReview for ServiceAccounts, and the `portcullis-proxy` identity
    /// (allowed to impersonate) upstream.
    func proxyConfigurationText(_ settings: SandboxSettings) -> String {
        func path(_ url: URL) -> String { Self.jsonString(url.path) }
        let clusterPKI = clusterDirectory.appendingPathComponent("pki")
        return """
            # Written by `portcullis sandbox`; see docs/proxy.md.
            listen: {host: 127.0.0.1, port: \(settings.proxyPort), reusePort: true}
            tls:
              certFile: \(path(pkiDirectory.appendingPathComponent("tls.crt")))
              keyFile: \(path(pkiDirectory.appendingPathComponent("tls.key")))
              clientCAFile: \(path(clusterPKI.appendingPathComponent("ca.crt")))
            upstream: {kubeconfig: \(path(proxyKubeconfig))}
            policies: {cluster: true}
            authentication:
              clientCertificates: true
              staticTokenFile: \(path(clusterPKI.appendingPathComponent("tokens.csv")))
              tokenReview: {enabled: true}
            approvals: {namespace: \(Self.approvalsNamespace)}
            audit: {path: \(path(auditLog))}
            recordings: {directory: \(path(recordingsDirectory))}
            management: {host: 127.0.0.1, port: \(settings.managementPort)}

            """
    }

    /// Once the cluster is ready: registers the webhook with the apiserver and writes the
    /// kubeconfigs.
    public func configure(for description: ClusterDescription, settings: SandboxSettings) async throws {
        let caPEM = try String(contentsOf: pkiDirectory.appendingPathComponent("ca.crt"), encoding: .utf8)
        let policies = try PolicyLoader.load(paths: policyDirectories.map(\.path))
        let webhooks = WebhookConfigurationGenerator(
            name: "portcullis-sandbox", endpoint: .url("https://127.0.0.1:\(settings.webhookPort)"),
            caBundlePEM: caPEM
        ).manifests(for: policies)
        guard let kubectl = description.values["KUBECTL_1_20"] else {
            throw SandboxError(.malformedClusterDescription, "missing KUBECTL_1_20")
        }
        let applied = try await ProcessRunner.run(
            URL(fileURLWithPath: kubectl),
            arguments: ["--kubeconfig", description.adminKubeconfig.path, "apply", "-f", "-"],
            environment: ["HOME": clusterDirectory.path, "PATH": "/usr/bin:/bin"], standardInput: Data(webhooks.utf8))
        guard applied.succeeded else {
            throw SandboxError(.scriptFailed, "registering the webhook failed:\n\(applied.standardError)")
        }

        try writePrivately(Data(contentsOf: description.adminKubeconfig), to: adminKubeconfig)
        let proxyURL = "https://127.0.0.1:\(settings.proxyPort)"
        for (identity, file) in [(TestIdentity.alice, userKubeconfig), (.bob, approverKubeconfig)] {
            let text = Self.kubeconfig(
                server: proxyURL, caPEM: caPEM, user: identity.rawValue, token: description.token(for: identity))
            try writePrivately(Data(text.utf8), to: file)
        }
    }

    /// Removes the files that describe a running sandbox (logs, audit and PKI stay for inspection).
    public func removeFiles() {
        for file in [adminKubeconfig, userKubeconfig, approverKubeconfig, settingsFile] {
            try? FileManager.default.removeItem(at: file)
        }
    }

    /// What to print once the sandbox is up: where things are and three commands that show what
    /// Portcullis does.
    public func welcome(for description: ClusterDescription, settings: SandboxSettings, detached: Bool) -> String {
        let here = FileManager.default.currentDirectoryPath + "/"
        func shown(_ url: URL) -> String {
            url.path.hasPrefix(here) ? String(url.path.dropFirst(here.count)) : url.path
        }
        let portcullis = Self.displayName(of: executable, currentDirectory: here)
        let alice = "kubectl --kubeconfig \(shown(userKubeconfig))"
        let bob = "kubectl --kubeconfig \(shown(approverKubeconfig))"
        let lines = [
            "Portcullis sandbox is ready.",
            "  apiserver:  \(description.apiserverURL) (kube-apiserver v1.20.2, etcd, node agent on 127.0.0.1)",
            "  proxy:      https://127.0.0.1:\(settings.proxyPort) (two replicas sharing the port; metrics: "
                + "http://127.0.0.1:\(settings.managementPort)/metrics and :\(settings.secondManagementPort)/metrics)",
            "  webhook:    https://127.0.0.1:\(settings.webhookPort) (the same policies at admission)",
            "  policies:   AccessPolicy objects in the cluster, from \(policyDirectories.map(shown).joined(separator: ", ")) "
                + "(kubectl --kubeconfig \(shown(adminKubeconfig)) get accesspolicies)",
            "  audit log:  \(shown(auditLog)); session recordings: \(shown(recordingsDirectory))/",
            "  kubeconfig: \(shown(userKubeconfig)) (alice, group developers, through the proxy)",
            "              \(shown(approverKubeconfig)) (bob, group sre, through the proxy)",
            "              \(shown(adminKubeconfig)) (cluster-admin, straight to the apiserver)",
            "",
            "Try:",
            "  # allowed: alice may exec in dev",
            "  \(alice) -n dev exec web -c app -- uname -a",
            "  # blocked: recursive deletes are refused in prod, even for sre",
            "  \(bob) -n prod exec web -c app -- rm -rf /tmp/portcullis-demo",
            "  # held for approval: alice asks, bob (sre) approves, alice runs it again",
            "  \(alice) -n dev exec web -c app -- printenv HOSTNAME",
            "  \(portcullis) approve -n \(Self.approvalsNamespace) --kubeconfig \(shown(approverKubeconfig)) NAME",
            "  \(alice) -n dev exec web -c app -- printenv HOSTNAME",
            "  (NAME is the AccessRequest named in the first answer)",
            "",
            detached ? "Stop it with: \(portcullis) sandbox down" : "Press Ctrl-C to stop it.",
        ]
        return lines.joined(separator: "\n")
    }

    // MARK: - Helpers

    private func file(_ name: String) -> URL { directory.appendingPathComponent(name) }

    private func writePrivately(_ data: Data, to file: URL) throws {
        try data.write(to: file, options: .atomic)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file.path)
    }

    static func kubeconfig(server: String, caPEM: String, user: String, token: String) -> String {
        """
        apiVersion: v1
        kind: Config
        clusters:
        - name: portcullis-sandbox
          cluster: {server: "\(server)", certificate-authority-data: \(Data(caPEM.utf8).base64EncodedString())}
        users:
        - name: \(user)
          user: {token: "\(token)"}
        contexts:
        - name: \(user)@portcullis-sandbox
          context: {cluster: portcullis-sandbox, user: \(user)}
        current-context: \(user)@portcullis-sandbox

        """
    }

    /// How to call the binary in printed commands: relative when it lives below the current
    /// directory (`.build/debug/portcullis`), bare when it is the one on PATH.
    static func displayName(of executable: URL, currentDirectory: String) -> String {
        let path = executable.path
        if path.hasPrefix(currentDirectory) { return String(path.dropFirst(currentDirectory.count)) }
        let onPath = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").contains {
            URL(fileURLWithPath: String($0)).appendingPathComponent("portcullis").resolvingSymlinksInPath().path
                == executable.resolvingSymlinksInPath().path
        }
        return onPath ? "portcullis" : path
    }

    static func quoted(_ argument: String) -> String {
        "'" + argument.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    static func jsonString(_ text: String) -> String {
        let data = (try? JSONEncoder().encode(text)) ?? Data("\"\"".utf8)
        return String(decoding: data, as: UTF8.self).replacingOccurrences(of: "\\/", with: "/")
    }
}
