import Foundation

/// `portcullis sandbox`: a local cluster to try Portcullis on, with everything it needs written to
/// `.sandbox/` in the current directory.
///
/// Files:
/// - `.sandbox/admin.kubeconfig`: cluster-admin, straight to the apiserver;
/// - `.sandbox/cluster/`: the test cluster's state (PKI, logs, `cluster.env`).
public struct PortcullisSandbox: Sendable {
    public let directory: URL
    public let cluster: LocalCluster

    public init(directory: URL, scripts: TestEnvironmentScripts) {
        self.directory = directory.standardizedFileURL
        self.cluster = LocalCluster(stateDirectory: directory.appendingPathComponent("cluster"), scripts: scripts)
    }

    public var adminKubeconfig: URL { directory.appendingPathComponent("admin.kubeconfig") }

    /// Writes the sandbox's files for a running cluster.
    public func writeFiles(for description: ClusterDescription) throws {
        let kubeconfig = try Data(contentsOf: description.adminKubeconfig)
        try kubeconfig.write(to: adminKubeconfig, options: .atomic)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: adminKubeconfig.path)
    }

    /// Removes the files that describe a running sandbox (the cluster's logs stay for inspection).
    public func removeFiles() {
        try? FileManager.default.removeItem(at: adminKubeconfig)
    }

    /// What to print once the sandbox is up.
    public func welcome(for description: ClusterDescription, detached: Bool) -> String {
        let relative = adminKubeconfig.path.replacingOccurrences(
            of: FileManager.default.currentDirectoryPath + "/", with: "")
        var lines = [
            "Portcullis sandbox is ready.",
            "  apiserver:  \(description.apiserverURL) (kube-apiserver v1.20.2, etcd, node agent on 127.0.0.1)",
            "  kubeconfig: \(relative) (cluster-admin, straight to the apiserver)",
            "",
            "Try:",
            "  kubectl --kubeconfig \(relative) get ns",
            "  kubectl --kubeconfig \(relative) -n dev exec web -c app -- uname -a",
        ]
        lines.append("")
        lines.append(
            detached
                ? "Stop it with: portcullis sandbox down"
                : "Press Ctrl-C to stop it.")
        return lines.joined(separator: "\n")
    }
}
