import Foundation
import Logging
import NIOPosix
import Policy

/// A running proxy assembled from a ``ProxyConfiguration``: policies, upstream, the
/// authenticator chain (client certificates, static tokens, OIDC issuers, TokenReview, in that
/// order), approvals, audit, the API listener and the management listener.
public final class ProxyRuntime: Sendable {
    public let configuration: ProxyConfiguration
    public let policies: PolicyStore
    /// Files and, with `policies.cluster`, the AccessPolicy objects: what `policies` is made of.
    public let sources: PolicySources
    /// Watches the cluster's AccessPolicies and namespaces (nil without `policies.cluster`).
    public let clusterState: ClusterStateWatchers?
    public let port: Int
    public let managementPort: Int?
    private let server: ProxyServer
    private let management: ManagementServer?
    private let logger: Logger

    public static func start(
        _ configuration: ProxyConfiguration, logger: Logger = Logger(label: "portcullis.proxy")
    )
        async throws -> ProxyRuntime
    {
        guard let defaultOutcome = Decision.Outcome(rawValue: configuration.policies.defaultOutcome) else {
            throw ProxyConfiguration.Error(description: "policies.defaultOutcome must be Allow or Deny")
        }
        let files: [AccessPolicy]
        let engine: PolicyEngine
        let namespaces = configuration.policies.cluster ? NamespaceDirectory() : nil
        do {
            files = try PolicyLoader.load(paths: configuration.policies.paths)
            engine = PolicyEngine(
                policies: try PolicyCompiler.compile(files),
                options: .init(defaultOutcome: defaultOutcome, namespaces: namespaces))
        } catch {
            throw ProxyConfiguration.Error(description: "the policies do not load:\n\(error)")
        }
        let upstream: UpstreamConfiguration =
            if let kubeconfig = configuration.upstream.kubeconfig {
                try .kubeconfig(kubeconfig, context: configuration.upstream.context)
            } else {
                try .inCluster()
            }
        let policies = PolicyStore(engine)
        let sources = PolicySources(store: policies, files: files)
        var watchers: ClusterStateWatchers?
        if let namespaces {
            watchers = try await ClusterStateWatchers.start(
                client: try KubernetesClient(configuration: upstream), sources: sources, directory: namespaces,
                logger: logger)
        }
        let clusterState = watchers
        let chain = AuthenticatorChain(
            try await authenticators(configuration.authentication, upstream: upstream, logger: logger))
        let approvals = try await approvalStore(configuration.approvals, upstream: upstream, logger: logger)
        let metrics = ProxyMetrics()
        let server = try ProxyServer(
            configuration: .init(
                host: configuration.listen.host, port: configuration.listen.port,
                certificateChainFile: configuration.tls.certFile, privateKeyFile: configuration.tls.keyFile,
                clientCAFile: configuration.authentication.clientCertificates == true
                    ? configuration.tls.clientCAFile : nil,
                idleTimeout: .seconds(configuration.listen.idleTimeoutSeconds),
                keepAliveTimeout: .seconds(configuration.listen.keepAliveTimeoutSeconds),
                reusePort: configuration.listen.reusePort),
            upstream: upstream, policies: policies, authenticate: chain.callerAuthenticator,
            approvals: approvals, audit: try AuditLog(path: configuration.audit.path),
            recordings: configuration.recordings?.settings,
            lineChecks: configuration.approvals?.lineChecks ?? LineCheckSettings(), metrics: metrics, logger: logger)
        let port = try await server.start()
        var management: ManagementServer?
        var managementPort: Int?
        if let settings = configuration.management {
            // Ready once the cluster's policies have been applied (always, since start waited for
            // that); a later watch failure keeps the last set in force rather than taking every
            // replica out of its Service at once.
            let listener = ManagementServer(
                host: settings.host, port: settings.port, metrics: metrics,
                ready: { clusterState?.synced ?? true })
            managementPort = try await listener.start()
            management = listener
        }
        logger.info(
            "proxy ready",
            metadata: [
                "port": "\(port)", "policies": "\(policies.engine.policies.count)",
                "upstream": "\(upstream.host):\(upstream.port)",
            ])
        return ProxyRuntime(
            configuration: configuration, policies: policies, sources: sources, clusterState: clusterState,
            port: port, managementPort: managementPort, server: server,
            management: management, logger: logger)
    }

    private init(
        configuration: ProxyConfiguration, policies: PolicyStore, sources: PolicySources,
        clusterState: ClusterStateWatchers?, port: Int, managementPort: Int?,
        server: ProxyServer, management: ManagementServer?, logger: Logger
    ) {
        self.configuration = configuration
        self.policies = policies
        self.sources = sources
        self.clusterState = clusterState
        self.port = port
        self.managementPort = managementPort
        self.server = server
        self.management = management
        self.logger = logger
    }

    /// The approvals store the settings ask for; `auto` asks the apiserver (API discovery, with the
    /// proxy's identity) whether it serves AccessRequests, once, at startup.
    public static func approvalStore(
        _ settings: ProxyConfiguration.Approvals?, upstream: UpstreamConfiguration,
        logger: Logger = Logger(label: "portcullis.proxy")
    ) async throws -> (any ApprovalStore)? {
        guard let settings else { return nil }
        let client = try KubernetesClient(configuration: upstream)
        var store = settings.store
        if store == .auto {
            do {
                store = try await ClusterApprovals.isServed(by: client) ? .cluster : .local
            } catch {
                throw ProxyConfiguration.Error(
                    description: "approvals.store auto cannot tell whether the cluster serves AccessRequests: \(error)")
            }
        }
        switch store {
        case .local:
            logger.warning(
                "approvals are kept in this proxy's memory: one replica only, lost on restart; install the AccessRequest CRD for the cluster store",
                metadata: ["namespace": "\(settings.namespace)"])
            return LocalApprovals(namespace: settings.namespace)
        case .cluster, .auto:
            return ClusterApprovals(client: client, namespace: settings.namespace)
        }
    }

    static func authenticators(
        _ settings: ProxyConfiguration.Authentication, upstream: UpstreamConfiguration, logger: Logger
    ) async throws -> [any Authenticator] {
        var authenticators: [any Authenticator] = []
        if settings.clientCertificates == true { authenticators.append(ClientCertificateAuthenticator()) }
        if let file = settings.staticTokenFile {
            do {
                authenticators.append(try StaticTokenAuthenticator(contentsOf: file))
            } catch {
                throw ProxyConfiguration.Error(description: "authentication.staticTokenFile: \(error)")
            }
        }
        for issuer in settings.oidc ?? [] {
            let caBundle = try issuer.caFile.map { try String(contentsOfFile: $0, encoding: .utf8) }
            let oidc = try OIDCAuthenticator(
                configuration: OIDCConfiguration(
                    issuerURL: issuer.issuerURL, clientID: issuer.clientID,
                    usernameClaim: issuer.usernameClaim ?? "sub",
                    usernamePrefix: issuer.usernamePrefix, groupsClaim: issuer.groupsClaim,
                    groupsPrefix: issuer.groupsPrefix ?? "", caBundlePEM: caBundle),
                logger: logger)
            do {
                try await oidc.refreshKeys()
            } catch {
                // Not fatal: keys are fetched again on the first token.
                logger.warning("OIDC keys for \(issuer.issuerURL) not available yet: \(error)")
            }
            authenticators.append(oidc)
        }
        if let review = settings.tokenReview, review.enabled {
            authenticators.append(
                TokenReviewAuthenticator(
                    client: UpstreamTokenReviewClient(client: try KubernetesClient(configuration: upstream)),
                    audiences: review.audiences))
        }
        guard !authenticators.isEmpty else {
            throw ProxyConfiguration.Error(
                description: "no authentication is configured; every request would be refused")
        }
        return authenticators
    }

    /// Reloads the policy files (the cluster's objects stay); on any error the previous policies
    /// stay in force.
    @discardableResult
    public func reloadPolicies() throws(PolicyLoadErrors) -> Int {
        try sources.reloadFiles(paths: configuration.policies.paths).policies.count
    }

    /// Stops accepting, lets requests and sessions in flight finish within `listen.shutdownGraceSeconds`,
    /// then ends the sessions still open.
    public func shutdown() async throws {
        try await server.shutdown(gracePeriod: .seconds(configuration.listen.shutdownGraceSeconds))
        await clusterState?.stop()
        try await management?.shutdown()
    }
}
