import Foundation
import NIOSSL
import Yams

/// A kubeconfig that points one user's kubectl at the proxy (`portcullis kubeconfig`).
///
/// With OIDC, kubectl gets its token from an exec credential plugin: `kubectl oidc-login` (the
/// int128/kubelogin plugin, the usual one) signs the user in through the browser, caches the ID
/// token and refreshes it, so the file holds no secret of the user's. A token is for service
/// accounts and automation; `tokenFile` keeps even that out of the kubeconfig.
public struct UserKubeconfig: Sendable, Equatable {
    public enum Credential: Sendable, Equatable {
        case oidc(issuer: String, clientID: String, clientSecret: String?, extraScopes: [String])
        case token(String)
        case tokenFile(String)
    }

    /// The proxy's address (`https://host[:port]`).
    public var server: String
    /// The CA that signed the proxy's serving certificate; nil: the system's trust store.
    public var certificateAuthorityPEM: String?
    /// The name of the cluster, user and context entries.
    public var name: String
    public var namespace: String?
    public var credential: Credential

    public struct InvalidSetting: Error, CustomStringConvertible {
        public let description: String
    }

    /// Checks every setting, so that a kubeconfig that cannot work is never printed.
    public init(
        server: String, certificateAuthorityPEM: String?, name: String, namespace: String?, credential: Credential
    ) throws(InvalidSetting) {
        try Self.checkHTTPS(server, what: "the server")
        if let pem = certificateAuthorityPEM {
            guard (try? NIOSSLCertificate.fromPEMBytes(Array(pem.utf8)))?.isEmpty == false else {
                throw InvalidSetting(description: "the certificate authority is not a PEM certificate")
            }
        }
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.@".contains($0) }) else {
            throw InvalidSetting(description: "the name \"\(name)\" may only hold letters, digits and - _ . @")
        }
        switch credential {
        case .oidc(let issuer, let clientID, _, _):
            try Self.checkHTTPS(issuer, what: "the OIDC issuer")
            guard !clientID.isEmpty else { throw InvalidSetting(description: "the OIDC client ID is empty") }
        case .token(let token):
            guard !token.isEmpty, !token.contains(where: \.isWhitespace) else {
                throw InvalidSetting(description: "the token is empty or contains whitespace")
            }
        case .tokenFile(let path):
            guard path.hasPrefix("/") else {
                throw InvalidSetting(description: "the token file \"\(path)\" must be an absolute path")
            }
        }
        self.server = server
        self.certificateAuthorityPEM = certificateAuthorityPEM
        self.name = name
        self.namespace = namespace
        self.credential = credential
    }

    private static func checkHTTPS(_ text: String, what: String) throws(InvalidSetting) {
        guard let url = URL(string: text), url.scheme == "https", let host = url.host, !host.isEmpty else {
            throw InvalidSetting(description: "\(what) must be an https:// URL, not \"\(text)\"")
        }
    }

    /// The exec plugin's arguments for `kubectl oidc-login get-token`.
    var oidcLoginArguments: [String]? {
        guard case .oidc(let issuer, let clientID, let clientSecret, let extraScopes) = credential else { return nil }
        return ["oidc-login", "get-token", "--oidc-issuer-url=\(issuer)", "--oidc-client-id=\(clientID)"]
            + (clientSecret.map { ["--oidc-client-secret=\($0)"] } ?? [])
            + extraScopes.map { "--oidc-extra-scope=\($0)" }
    }

    /// The kubeconfig as YAML, every string quoted.
    public func yaml() throws -> String {
        var cluster: [(String, Node)] = [("server", Self.string(server))]
        if let certificateAuthorityPEM {
            cluster.append(
                ("certificate-authority-data", Self.string(Data(certificateAuthorityPEM.utf8).base64EncodedString())))
        }
        let user: [(String, Node)]
        switch credential {
        case .oidc:
            let exec: [(String, Node)] = [
                ("apiVersion", "client.authentication.k8s.io/v1beta1"), ("command", "kubectl"),
                ("args", Node((oidcLoginArguments ?? []).map(Self.string))),
            ]
            user = [("exec", Self.mapping(exec))]
        case .token(let token): user = [("token", Self.string(token))]
        case .tokenFile(let path): user = [("tokenFile", Self.string(path))]
        }
        var context: [(String, Node)] = [("cluster", Self.string(name)), ("user", Self.string(name))]
        if let namespace { context.append(("namespace", Self.string(namespace))) }
        let document: [(String, Node)] = [
            ("apiVersion", "v1"), ("kind", "Config"),
            ("clusters", [Self.mapping([("name", Self.string(name)), ("cluster", Self.mapping(cluster))])]),
            ("users", [Self.mapping([("name", Self.string(name)), ("user", Self.mapping(user))])]),
            ("contexts", [Self.mapping([("name", Self.string(name)), ("context", Self.mapping(context))])]),
            ("current-context", Self.string(name)),
        ]
        return try Yams.serialize(node: Self.mapping(document))
    }

    /// A string scalar, double-quoted: kubectl reads YAML 1.1, where a plain `yes`, `null` or
    /// `0x1F` is not a string, and the emitter does not quote those by itself.
    private static func string(_ value: String) -> Node {
        Node(value, Tag(.str), .doubleQuoted)
    }

    private static func mapping(_ pairs: [(String, Node)]) -> Node {
        Node(pairs.map { (Node($0.0), $0.1) })
    }
}
