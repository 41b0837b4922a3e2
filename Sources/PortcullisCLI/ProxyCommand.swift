import ArgumentParser
import Foundation
import KubeProxy
import Logging
import Sandbox

#if canImport(Glibc)
    import Glibc
#endif

struct ProxyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "proxy", abstract: "Run the authenticating, policy-enforcing Kubernetes API proxy.",
        discussion: """
            Settings come from --config (see docs/proxy.md); the flags override the common ones. \
            SIGHUP reloads the policy files (a bad set is reported and the old one kept); SIGTERM \
            drains: new connections are refused, requests and sessions in flight get \
            listen.shutdownGraceSeconds (20) to finish, then open sessions are ended with a failure \
            status and their recordings closed.
            """)

    @Option(help: "The proxy's YAML configuration file.") var config: String
    @Option(help: "Port to listen on (overrides listen.port).") var port: Int?
    @Option(help: "Port of /healthz, /readyz and /metrics (overrides management.port).") var managementPort: Int?
    @Option(help: "Policy files or directories (repeatable; replace policies.paths).") var policies: [String] = []
    @Option(help: "Reach the apiserver with this kubeconfig (overrides upstream).") var kubeconfig: String?
    @Option(help: "Write audit events to this file (overrides audit.path).") var auditLog: String?

    func run() async throws {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        var settings: ProxyConfiguration
        do {
            settings = try ProxyConfiguration.load(config)
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
        if let port { settings.listen.port = port }
        if let managementPort {
            var management = settings.management ?? ProxyConfiguration.Management()
            management.port = managementPort
            settings.management = management
        }
        if !policies.isEmpty { settings.policies.paths = policies }
        if let kubeconfig { settings.upstream = .init(kubeconfig: kubeconfig) }
        if let auditLog { settings.audit.path = auditLog }
        let logger = Logger(label: "portcullis.proxy")
        let signals = SignalWaiter(signals: [SIGINT, SIGTERM, SIGHUP])
        let runtime: ProxyRuntime
        do {
            runtime = try await ProxyRuntime.start(settings, logger: logger)
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
        print(
            "portcullis proxy listening on https://\(settings.listen.host):\(runtime.port)"
                + (runtime.managementPort.map { " (health and metrics on port \($0))" } ?? ""))
        fflush(nil)
        while let signal = await signals.next() {
            guard signal == SIGHUP else { break }
            do {
                let count = try runtime.reloadPolicies()
                logger.info("policies reloaded", metadata: ["count": "\(count)"])
            } catch {
                logger.error("reload failed; the previous policies stay in force:\n\(error)")
            }
        }
        logger.info("draining")
        try await runtime.shutdown()
    }
}
