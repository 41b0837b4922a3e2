import ArgumentParser
import Foundation
import KubeProxy
import Logging
import Policy
import Sandbox
import Webhook

#if canImport(Glibc)
    import Glibc
#endif

struct WebhookCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "webhook", abstract: "The admission webhook that enforces AccessPolicies at admission.",
        subcommands: [Serve.self, Config.self], defaultSubcommand: Serve.self)

    struct PolicyOptions: ParsableArguments {
        @Option(name: .customLong("policies"), help: "Policy files or directories (repeatable).")
        var policyPaths: [String] = []
    }

    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "serve", abstract: "Serve /validate and /mutate over HTTPS (the default).",
            discussion: "SIGHUP reloads the policy files (a bad set is reported and the old one kept); SIGTERM drains.")

        @OptionGroup var policies: PolicyOptions
        @Option(help: "Address to listen on.") var host = "0.0.0.0"
        @Option(help: "Port to listen on.") var port = 9443
        @Option(help: "Serving certificate chain (PEM).") var tlsCert: String
        @Option(help: "Serving private key (PEM).") var tlsKey: String
        @Option(help: "Outcome when no rule decides: Allow or Deny.") var defaultOutcome = "Allow"
        @Flag(help: "Refuse exec, attach and port-forward that do not come through the Portcullis proxy.")
        var requireProxy = false
        @Option(help: "A user exempt from --require-proxy (repeatable).") var proxyExemptUser: [String] = []
        @Option(help: "A user allowed to create AccessRequests for others: the proxy (repeatable).")
        var proxyUser: [String] = []
        @Flag(help: "Also enforce the AccessPolicy objects in the cluster, and know namespaces' labels (both watched).")
        var clusterPolicies = false
        @Option(help: "With --cluster-policies: reach the apiserver with this kubeconfig (default: in-cluster).")
        var kubeconfig: String?

        func run() async throws {
            LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
            var logger = Logger(label: "portcullis.webhook")
            logger.logLevel = .info
            guard let outcome = Decision.Outcome(rawValue: defaultOutcome), outcome != .review else {
                throw ValidationError("--default-outcome must be Allow or Deny")
            }
            let files: [AccessPolicy]
            let engine: PolicyEngine
            let namespaces = clusterPolicies ? NamespaceDirectory() : nil
            do {
                files = try PolicyLoader.load(paths: policies.policyPaths)
                engine = PolicyEngine(
                    policies: try PolicyCompiler.compile(files),
                    options: .init(defaultOutcome: outcome, namespaces: namespaces))
            } catch {
                for problem in error.errors { printError(problem.description) }
                throw ExitCode(1)
            }
            logger.info("policies loaded", metadata: ["count": "\(engine.policies.count)"])
            let store = PolicyStore(engine)
            let sources = PolicySources(store: store, files: files)
            var clusterState: ClusterStateWatchers?
            if let namespaces {
                do {
                    let upstream: UpstreamConfiguration =
                        if let kubeconfig { try .kubeconfig(kubeconfig) } else { try .inCluster() }
                    clusterState = try await ClusterStateWatchers.start(
                        client: try KubernetesClient(configuration: upstream), sources: sources,
                        directory: namespaces, logger: logger)
                } catch {
                    printError("error: \(error)")
                    throw ExitCode(1)
                }
            }
            let handler = AdmissionHandler(
                policies: store,
                options: .init(
                    requireProxyExtraKey: requireProxy ? AdmissionHandler.proxySessionExtraKey : nil,
                    proxyExemptUsers: proxyExemptUser, proxyUsers: proxyUser))
            let server = WebhookServer(
                configuration: .init(host: host, port: port, certificateChainFile: tlsCert, privateKeyFile: tlsKey),
                handler: handler, logger: logger)
            try await server.start()
            let signals = SignalWaiter(signals: [SIGINT, SIGTERM, SIGHUP])
            while let signal = await signals.next() {
                guard signal == SIGHUP else { break }
                do {
                    let reloaded = try sources.reloadFiles(paths: policies.policyPaths)
                    logger.info("policies reloaded", metadata: ["count": "\(reloaded.policies.count)"])
                } catch {
                    logger.error("reload failed; the previous policies stay in force: \(error)")
                }
            }
            logger.info("draining")
            try await server.shutdown()
            await clusterState?.stop()
        }
    }

    struct Config: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "config",
            abstract: "Print the Validating and Mutating WebhookConfigurations for a set of policies.")

        @OptionGroup var policies: PolicyOptions
        @Option(help: "Reach the webhook at this URL (out of cluster).") var url: String?
        @Option(help: "Reach the webhook through this Service: namespace/name[:port].") var service: String?
        @Option(help: "The CA that signed the webhook's serving certificate (PEM).") var caFile: String
        @Option(help: "Name of the configurations.") var name = "portcullis"
        @Flag(help: "Also refuse exec, attach and port-forward that bypass the proxy.") var requireProxy = false

        func run() throws {
            let endpoint: WebhookConfigurationGenerator.Endpoint
            switch (url, service) {
            case (let url?, nil):
                endpoint = .url(url)
            case (nil, let service?):
                let (reference, port) =
                    service.split(separator: ":").count == 2
                    ? (String(service.split(separator: ":")[0]), Int(service.split(separator: ":")[1]) ?? 443)
                    : (service, 443)
                let parts = reference.split(separator: "/")
                guard parts.count == 2 else { throw ValidationError("--service is namespace/name[:port]") }
                endpoint = .service(namespace: String(parts[0]), name: String(parts[1]), port: port)
            default:
                throw ValidationError("give exactly one of --url or --service")
            }
            let loaded: [AccessPolicy]
            do {
                loaded = try PolicyLoader.load(paths: policies.policyPaths)
            } catch {
                for problem in error.errors { printError(problem.description) }
                throw ExitCode(1)
            }
            let ca = try String(contentsOfFile: caFile, encoding: .utf8)
            let generator = WebhookConfigurationGenerator(
                name: name, endpoint: endpoint, caBundlePEM: ca, requireProxy: requireProxy)
            print(generator.manifests(for: loaded), terminator: "")
        }
    }
}
