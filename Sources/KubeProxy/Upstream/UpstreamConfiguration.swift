import Foundation
import NIOSSL
import Yams

/// How the proxy reaches the real apiserver, with its own credential: from a kubeconfig, or from
/// the in-cluster ServiceAccount. The proxy never forwards a caller's credential; this identity,
/// allowed to impersonate, is the only one the apiserver sees on the wire.
public struct UpstreamConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// The name the server certificate must carry (SNI and verification).
    public var serverName: String
    public var trustRoots: [NIOSSLCertificate]
    public var credential: Credential

    public enum Credential: Sendable {
        /// A bearer token, re-read from its file when it changes (projected ServiceAccount tokens
        /// rotate hourly).
        case tokenFile(String)
        case token(String)
        case clientCertificate(chain: [NIOSSLCertificate], key: NIOSSLPrivateKey)
    }

    public struct Error: Swift.Error, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    public init(host: String, port: Int, serverName: String, trustRoots: [NIOSSLCertificate], credential: Credential) {
        self.host = host
        self.port = port
        self.serverName = serverName
        self.trustRoots = trustRoots
        self.credential = credential
    }

    /// The in-cluster configuration: `KUBERNETES_SERVICE_HOST`/`PORT`, the mounted ServiceAccount
    /// token and CA.
    public static func inCluster(
        environment: [String: String] = ProcessInfo.processInfo.environment,
        serviceAccountDirectory: String = "/var/run/secrets/kubernetes.io/serviceaccount"
    ) throws -> UpstreamConfiguration {
        guard let host = environment["KUBERNETES_SERVICE_HOST"], let portText = environment["KUBERNETES_SERVICE_PORT"],
            let port = Int(portText)
        else { throw Error(message: "not running in a cluster: KUBERNETES_SERVICE_HOST/PORT are not set") }
        let roots = try NIOSSLCertificate.fromPEMFile(serviceAccountDirectory + "/ca.crt")
        return UpstreamConfiguration(
            host: host, port: port, serverName: "kubernetes.default.svc", trustRoots: roots,
            credential: .tokenFile(serviceAccountDirectory + "/token"))
    }

    /// Reads the current context of a kubeconfig. Paths in it are relative to its directory.
    public static func kubeconfig(_ path: String, context requested: String? = nil) throws -> UpstreamConfiguration {
        let base = URL(fileURLWithPath: path).deletingLastPathComponent()
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw Error(message: "cannot read kubeconfig \(path): \(error.localizedDescription)")
        }
        guard let root = try Yams.load(yaml: text) as? [String: Any] else {
            throw Error(message: "\(path) is not a kubeconfig")
        }
        func named(_ list: String, _ name: String) throws -> [String: Any] {
            let entries = root[list] as? [[String: Any]] ?? []
            guard let entry = entries.first(where: { $0["name"] as? String == name }) else {
                throw Error(message: "\(path): no \(list) entry named \"\(name)\"")
            }
            return entry[String(list.dropLast())] as? [String: Any] ?? [:]
        }
        guard let contextName = requested ?? root["current-context"] as? String else {
            throw Error(message: "\(path) has no current-context")
        }
        let context = try named("contexts", contextName)
        guard let clusterName = context["cluster"] as? String, let userName = context["user"] as? String else {
            throw Error(message: "\(path): context \(contextName) lacks a cluster or user")
        }
        let cluster = try named("clusters", clusterName)
        let user = try named("users", userName)
        guard let server = cluster["server"] as? String, let url = URL(string: server), url.scheme == "https",
            let host = url.host
        else { throw Error(message: "\(path): the cluster server must be an https:// URL") }
        func file(_ key: String) -> String? {
            (cluster[key] ?? user[key]).flatMap { $0 as? String }.map {
                $0.hasPrefix("/") ? $0 : base.appendingPathComponent($0).path
            }
        }
        func data(_ key: String) throws -> [UInt8]? {
            guard let encoded = (cluster[key] ?? user[key]) as? String else { return nil }
            guard let decoded = Data(base64Encoded: encoded) else {
                throw Error(message: "\(path): \(key) is not base64")
            }
            return Array(decoded)
        }
        let roots: [NIOSSLCertificate]
        if let bytes = try data("certificate-authority-data") {
            roots = try NIOSSLCertificate.fromPEMBytes(bytes)
        } else if let caFile = file("certificate-authority") {
            roots = try NIOSSLCertificate.fromPEMFile(caFile)
        } else {
            throw Error(
                message: "\(path): the cluster has no certificate-authority; the proxy never skips verification")
        }
        let credential: Credential
        if let token = user["token"] as? String {
            credential = .token(token)
        } else if let tokenFile = user["tokenFile"] as? String {
            credential = .tokenFile(tokenFile.hasPrefix("/") ? tokenFile : base.appendingPathComponent(tokenFile).path)
        } else if let certificate = try data("client-certificate-data"), let key = try data("client-key-data") {
            credential = .clientCertificate(
                chain: try NIOSSLCertificate.fromPEMBytes(certificate),
                key: try NIOSSLPrivateKey(bytes: key, format: .pem))
        } else if let certificateFile = file("client-certificate"), let keyFile = file("client-key") {
            credential = .clientCertificate(
                chain: try NIOSSLCertificate.fromPEMFile(certificateFile),
                key: try NIOSSLPrivateKey(file: keyFile, format: .pem))
        } else {
            throw Error(message: "\(path): user \(userName) has no token or client certificate")
        }
        return UpstreamConfiguration(
            host: host, port: url.port ?? 443, serverName: cluster["tls-server-name"] as? String ?? host,
            trustRoots: roots, credential: credential)
    }

    /// The client TLS context: verification always on, HTTP/1.1 only (upgrades need it).
    func makeTLSContext() throws -> NIOSSLContext {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates(trustRoots)
        tls.minimumTLSVersion = .tlsv12
        tls.applicationProtocols = ["http/1.1"]
        if case .clientCertificate(let chain, let key) = credential {
            tls.certificateChain = chain.map { .certificate($0) }
            tls.privateKey = .privateKey(key)
        }
        return try NIOSSLContext(configuration: tls)
    }
}

/// Supplies the `Authorization` value for upstream requests, re-reading a token file when it
/// changes so rotated ServiceAccount tokens are picked up without a restart.
final class UpstreamAuthorization: Sendable {
    private let credential: UpstreamConfiguration.Credential
    private let cached = LockedValue<(read: Date, value: String?)>((.distantPast, nil))
    static let tokenFileRefresh: TimeInterval = 60

    init(_ credential: UpstreamConfiguration.Credential) {
        self.credential = credential
    }

    /// nil when the client certificate is the credential.
    func headerValue(now: Date = Date()) -> String? {
        switch credential {
        case .token(let token): return "Bearer \(token)"
        case .clientCertificate: return nil
        case .tokenFile(let path):
            return cached.withValue { cache in
                if now.timeIntervalSince(cache.read) > Self.tokenFileRefresh || cache.value == nil,
                    let token = try? String(contentsOfFile: path, encoding: .utf8)
                {
                    cache = (now, "Bearer " + token.trimmingCharacters(in: .whitespacesAndNewlines))
                }
                return cache.value
            }
        }
    }
}

/// A value behind a lock.
final class LockedValue<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func withValue<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
