import Foundation

/// A running test cluster, as described by the `cluster.env` file that `scripts/testenv/testenv.sh`
/// writes once the cluster is ready: where the apiserver listens, where the PKI and kubeconfigs
/// are, and the credentials of the test identities.
public struct ClusterDescription: Sendable, Equatable {
    /// The raw `KEY=value` pairs of `cluster.env`.
    public let values: [String: String]

    /// Parses the `KEY=value` lines of a `cluster.env` file; `#` starts a comment line.
    public init(envFileContents: String) throws(SandboxError) {
        var values: [String: String] = [:]
        for (index, line) in envFileContents.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            guard let equals = trimmed.firstIndex(of: "=") else {
                throw SandboxError(.malformedClusterDescription, "line \(index + 1) is not KEY=value: \(trimmed)")
            }
            values[String(trimmed[..<equals])] = String(trimmed[trimmed.index(after: equals)...])
        }
        self.values = values
        for key in Self.requiredKeys where values[key] == nil {
            throw SandboxError(.malformedClusterDescription, "missing \(key)")
        }
    }

    public init(contentsOf file: URL) throws(SandboxError) {
        let contents: String
        do {
            contents = try String(contentsOf: file, encoding: .utf8)
        } catch {
            throw SandboxError(.malformedClusterDescription, "cannot read \(file.path): \(error)")
        }
        try self.init(envFileContents: contents)
    }

    static let requiredKeys = [
        "TESTENV_DIR", "APISERVER_URL", "APISERVER_PORT", "NODE_AGENT_PORT", "CA_FILE", "ADMIN_KUBECONFIG",
        "ADMIN_TOKEN", "PROXY_TOKEN", "ALICE_TOKEN", "BOB_TOKEN", "CAROL_TOKEN", "PKI_DIR", "KUBECTL_1_20",
    ]

    private func value(_ key: String) -> String { values[key] ?? "" }

    public var directory: URL { URL(fileURLWithPath: value("TESTENV_DIR")) }
    public var apiserverURL: String { value("APISERVER_URL") }
    public var apiserverPort: Int { Int(value("APISERVER_PORT")) ?? 0 }
    public var nodeAgentPort: Int { Int(value("NODE_AGENT_PORT")) ?? 0 }
    public var caFile: URL { URL(fileURLWithPath: value("CA_FILE")) }
    public var pkiDirectory: URL { URL(fileURLWithPath: value("PKI_DIR")) }
    public var adminKubeconfig: URL { URL(fileURLWithPath: value("ADMIN_KUBECONFIG")) }
    /// The node agent's binary, for a test that runs an agent of its own (one it may kill); nil
    /// in a description written before the key existed.
    public var nodeAgentBinary: URL? { values["NODE_AGENT_BIN"].map { URL(fileURLWithPath: $0) } }

    /// The kubeconfig of one of the test identities (`admin`, `alice`, `bob`, `proxy`).
    public func kubeconfig(for identity: String) -> URL {
        directory.appendingPathComponent("\(identity).kubeconfig")
    }

    /// A bearer token from the cluster's token file, by identity.
    public func token(for identity: TestIdentity) -> String { value(identity.tokenKey) }
}

/// The identities every test cluster is created with (see `scripts/testenv/cluster.yaml`).
public enum TestIdentity: String, Sendable, CaseIterable {
    /// `system:masters`.
    case admin
    /// The proxy's own credential: may impersonate and create token/subject access reviews.
    case proxy
    /// Group `developers`: may exec in namespace `dev`, only read in `prod`.
    case alice
    /// Group `sre`: may exec everywhere.
    case bob
    /// No permissions at all.
    case carol

    var tokenKey: String { "\(rawValue.uppercased())_TOKEN" }
}
