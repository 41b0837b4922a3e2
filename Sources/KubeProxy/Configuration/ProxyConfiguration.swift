import Foundation
import Yams

/// `portcullis proxy --config FILE`: everything the proxy needs, in one YAML file.
///
/// ```yaml
/// listen: {host: 0.0.0.0, port: 8443, reusePort: false, shutdownGraceSeconds: 20, idleTimeoutSeconds: 90, keepAliveTimeoutSeconds: 15}
/// tls: {certFile: /etc/portcullis/tls.crt, keyFile: /etc/portcullis/tls.key, clientCAFile: /etc/portcullis/client-ca.crt}
/// upstream: {inCluster: true}                  # or {kubeconfig: path, context: name}
/// policies: {paths: [/etc/portcullis/policies], cluster: true, defaultOutcome: Allow}   # cluster: watch AccessPolicies
/// authentication:
///   clientCertificates: true                  # needs tls.clientCAFile
///   staticTokenFile: /etc/portcullis/tokens.csv
///   oidc: [{issuerURL: https://issuer, clientID: kubernetes, usernameClaim: email, groupsClaim: groups}]
///   tokenReview: {enabled: true, audiences: []}
/// approvals: {namespace: portcullis-system, store: auto, lineWaitSeconds: 300}   # store: auto | cluster | local
/// audit: {path: /var/log/portcullis/audit.jsonl}
/// recordings: {directory: /var/log/portcullis/sessions, input: false, failClosed: false, portForwardCaptures: false}
/// management: {host: 0.0.0.0, port: 9090}
/// ```
/// Unknown keys are errors (a misspelt setting must not be silently ignored in a security tool).
public struct ProxyConfiguration: Sendable, Codable, Equatable {
    public var listen = Listen()
    public var tls: TLS
    public var upstream = Upstream()
    public var policies = Policies()
    public var authentication = Authentication()
    public var approvals: Approvals?
    public var audit = Audit()
    public var recordings: Recordings?
    public var management: Management?

    public struct Listen: Sendable, Codable, Equatable {
        public var host = "0.0.0.0"
        public var port = 8443
        /// Lets several proxy processes listen on the same port (SO_REUSEPORT), the kernel
        /// spreading connections between them: replicas behind one address without a balancer.
        public var reusePort = false
        /// How long SIGTERM lets open sessions run before ending them. Below Kubernetes' default
        /// 30 s termination grace, so recordings are closed before the kubelet's SIGKILL.
        public var shutdownGraceSeconds = 20
        /// A client connection with no request in flight (or a request that stopped arriving)
        /// is closed after this long without a byte from the client. The same 90 s as Go's
        /// `IdleConnTimeout`, after which kubectl drops its own idle connections anyway; without
        /// a limit, idle connections would hold proxy memory (two TLS buffers each) for ever.
        public var idleTimeoutSeconds = 90
        /// A connection that has had a response and waits for its next request is closed after
        /// this long without a byte (or `idleTimeoutSeconds`, if shorter). kubectl opens a
        /// second connection for every exec, attach and port-forward and leaves the first one in
        /// Go's pool for 90 s, unused: at ~50 KiB of TLS buffers it was a third of what an open
        /// shell cost the proxy. A client that comes back later pays one TLS handshake.
        public var keepAliveTimeoutSeconds = 15
    }

    public struct TLS: Sendable, Codable, Equatable {
        public var certFile: String
        public var keyFile: String
        public var clientCAFile: String?

        public init(certFile: String, keyFile: String, clientCAFile: String? = nil) {
            self.certFile = certFile
            self.keyFile = keyFile
            self.clientCAFile = clientCAFile
        }
    }

    public struct Upstream: Sendable, Codable, Equatable {
        public var inCluster: Bool?
        public var kubeconfig: String?
        public var context: String?

        public init(inCluster: Bool? = nil, kubeconfig: String? = nil, context: String? = nil) {
            self.inCluster = inCluster
            self.kubeconfig = kubeconfig
            self.context = context
        }
    }

    public struct Policies: Sendable, Codable, Equatable {
        public var paths: [String] = []
        /// Also enforce the `AccessPolicy` objects in the cluster, listed and watched with the
        /// proxy's own identity (docs/proxy.md).
        public var cluster = false
        public var defaultOutcome = "Allow"
    }

    public struct Authentication: Sendable, Codable, Equatable {
        public var clientCertificates: Bool?
        public var staticTokenFile: String?
        public var oidc: [OIDC]?
        public var tokenReview: TokenReview?
    }

    public struct OIDC: Sendable, Codable, Equatable {
        public var issuerURL: String
        public var clientID: String
        public var usernameClaim: String?
        public var usernamePrefix: String?
        public var groupsClaim: String?
        public var groupsPrefix: String?
        public var caFile: String?
    }

    public struct TokenReview: Sendable, Codable, Equatable {
        public var enabled = true
        public var audiences: [String] = []
    }

    public struct Approvals: Sendable, Codable, Equatable {
        public var namespace = "portcullis-system"
        public var store = Store.auto
        /// How long a command line typed into an exec session waits for approval (default
        /// ``LineCheckSettings/defaultApprovalTimeout``).
        public var lineWaitSeconds: Int?

        /// Where AccessRequests live.
        public enum Store: String, Sendable, Codable, Equatable, CaseIterable {
            /// `cluster` when the apiserver serves `accessrequests.portcullis.dev`, else `local`.
            case auto
            /// AccessRequest objects in the cluster (needs the CRD and the webhook).
            case cluster
            /// The proxy's memory: one replica only, lost on restart.
            case local
        }

        public init(namespace: String = "portcullis-system", store: Store = .auto, lineWaitSeconds: Int? = nil) {
            self.namespace = namespace
            self.store = store
            self.lineWaitSeconds = lineWaitSeconds
        }

        /// How typed lines are checked, as these settings ask.
        public var lineChecks: LineCheckSettings {
            LineCheckSettings(
                approvalTimeout: lineWaitSeconds.map { .seconds($0) } ?? LineCheckSettings.defaultApprovalTimeout)
        }
    }

    public struct Audit: Sendable, Codable, Equatable {
        public var path: String?
    }

    /// Exec and attach sessions recorded as asciicast v2 files, one per session.
    public struct Recordings: Sendable, Codable, Equatable {
        public var directory: String
        /// Record stdin too (`i` events); off by default, since keystrokes include passwords.
        public var input = false
        /// Refuse a session whose recording cannot be opened.
        public var failClosed = false
        /// Also write each port-forward connection's bytes as a pcap file.
        public var portForwardCaptures = false

        public init(directory: String, input: Bool = false, failClosed: Bool = false, portForwardCaptures: Bool = false)
        {
            self.directory = directory
            self.input = input
            self.failClosed = failClosed
            self.portForwardCaptures = portForwardCaptures
        }

        var settings: SessionRecordingSettings {
            SessionRecordingSettings(
                directory: directory, recordInput: input, failClosed: failClosed,
                capturePortForwards: portForwardCaptures)
        }
    }

    public struct Management: Sendable, Codable, Equatable {
        public var host = "0.0.0.0"
        public var port = 9090

        public init(host: String = "0.0.0.0", port: Int = 9090) {
            self.host = host
            self.port = port
        }
    }

    public struct Error: Swift.Error, CustomStringConvertible {
        public let description: String
    }

    /// Reads and checks a configuration file.
    public static func load(_ path: String) throws -> ProxyConfiguration {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw Error(description: "\(path): cannot read the configuration: \(error.localizedDescription)")
        }
        return try parse(text, file: path)
    }

    public static func parse(_ text: String, file: String) throws -> ProxyConfiguration {
        guard let node = try Yams.compose(yaml: text) else {
            throw Error(description: "\(file): the configuration is empty")
        }
        if let problem = unknownKey(in: node, allowed: allowedKeys, path: "") {
            throw Error(description: "\(file):\(problem)")
        }
        do {
            let configuration = try YAMLDecoder().decode(ProxyConfiguration.self, from: node)
            try configuration.validate()
            return configuration
        } catch let error as Error {
            throw Error(description: "\(file): \(error.description)")
        } catch let DecodingError.keyNotFound(key, context) {
            let path = (context.codingPath.map(\.stringValue) + [key.stringValue]).joined(separator: ".")
            throw Error(description: "\(file): missing required setting \(path)")
        } catch let DecodingError.typeMismatch(_, context) {
            throw Error(
                description:
                    "\(file): \(context.codingPath.map(\.stringValue).joined(separator: ".")) has the wrong type")
        } catch {
            throw Error(description: "\(file): \(error)")
        }
    }

    func validate() throws {
        switch (upstream.inCluster ?? false, upstream.kubeconfig) {
        case (true, nil), (false, .some): break
        default: throw Error(description: "upstream needs exactly one of inCluster: true or kubeconfig: PATH")
        }
        guard ["Allow", "Deny"].contains(policies.defaultOutcome) else {
            throw Error(description: "policies.defaultOutcome must be Allow or Deny, not \(policies.defaultOutcome)")
        }
        if authentication.clientCertificates == true && tls.clientCAFile == nil {
            throw Error(description: "authentication.clientCertificates needs tls.clientCAFile")
        }
        if let recordings, recordings.directory.isEmpty {
            throw Error(description: "recordings.directory must name a directory")
        }
    }

    /// The keys each mapping accepts, by path (`""` is the root; lists use `[]`).
    static let allowedKeys: [String: Set<String>] = [
        "": [
            "listen", "tls", "upstream", "policies", "authentication", "approvals", "audit", "recordings", "management",
        ],
        "listen": [
            "host", "port", "reusePort", "shutdownGraceSeconds", "idleTimeoutSeconds", "keepAliveTimeoutSeconds",
        ],
        "tls": ["certFile", "keyFile", "clientCAFile"],
        "upstream": ["inCluster", "kubeconfig", "context"], "policies": ["paths", "cluster", "defaultOutcome"],
        "authentication": ["clientCertificates", "staticTokenFile", "oidc", "tokenReview"],
        "authentication.oidc[]": [
            "issuerURL", "clientID", "usernameClaim", "usernamePrefix", "groupsClaim", "groupsPrefix", "caFile",
        ],
        "authentication.tokenReview": ["enabled", "audiences"], "approvals": ["namespace", "store", "lineWaitSeconds"],
        "audit": ["path"],
        "recordings": ["directory", "input", "failClosed", "portForwardCaptures"],
        "management": ["host", "port"],
    ]

    static func unknownKey(in node: Node, allowed: [String: Set<String>], path: String) -> String? {
        switch node {
        case .mapping(let mapping):
            guard let keys = allowed[path] else { return nil }
            for (key, value) in mapping {
                let name = key.string ?? ""
                guard keys.contains(name) else {
                    let mark = key.mark.map { "\($0.line):\($0.column)" } ?? "1:1"
                    return "\(mark): unknown setting \"\(name)\"\(path.isEmpty ? "" : " in \(path)")"
                }
                if let problem = unknownKey(in: value, allowed: allowed, path: path.isEmpty ? name : "\(path).\(name)")
                {
                    return problem
                }
            }
        case .sequence(let sequence):
            for item in sequence {
                if let problem = unknownKey(in: item, allowed: allowed, path: path + "[]") { return problem }
            }
        default:
            break
        }
        return nil
    }
}
