// Admission webhook load: real AdmissionReviews (captured from kube-apiserver, in
// Tests/WebhookTests/Fixtures) posted round-robin over keep-alive TLS at two WebhookServers in this
// process: one with 100 generated policies (300 rules), one with none (allow-all, the same server
// stack doing everything but evaluation). Closed loop at 1, 16 and 64 connections for throughput
// and latency; then an open-loop run paced at 1,000 reviews/s for the p99 target. Run in release:
//   swift run -c release WebhookBenchmark [--duration 10] [--connections 1,16,64] [--rate 1000]
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Policy
import Webhook

struct Settings {
    var duration: Duration = .seconds(10)
    var warmUp: Duration = .seconds(2)
    var connections = [1, 16, 64]
    var rate = 1000
    var pacedConnections = 16

    init(arguments: [String]) {
        var iterator = arguments.dropFirst().makeIterator()
        while let flag = iterator.next() {
            guard let value = iterator.next() else { fatalError("\(flag) needs a value") }
            switch flag {
            case "--duration": duration = .seconds(Int(value)!)
            case "--connections": connections = value.split(separator: ",").map { Int($0)! }
            case "--rate": rate = Int(value)!
            case "--paced-connections": pacedConnections = Int(value)!
            default: fatalError("unknown flag \(flag)")
            }
        }
    }
}

let settings = Settings(arguments: CommandLine.arguments)

/// The captured reviews, each to the endpoint it was captured from.
func loadReviews() throws -> [PreparedReview] {
    let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    let directory = packageRoot.appendingPathComponent("Tests/WebhookTests/Fixtures")
    let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".json") }
        .sorted()
    precondition(!names.isEmpty, "no fixtures in \(directory.path)")
    return try names.map { name in
        let body = try Data(contentsOf: directory.appendingPathComponent(name))
        let path = name.hasSuffix("-mutate.json") ? "/mutate" : "/validate"
        let head = HTTPRequestHead(
            version: .http1_1, method: .POST, uri: path,
            headers: [
                "host": "localhost", "content-type": "application/json", "content-length": String(body.count),
            ])
        return PreparedReview(head: head, body: ByteBuffer(bytes: body))
    }
}

func loadAverage() -> String {
    (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3)
        .joined(separator: " ") ?? "?"
}

func startServer(
    _ policies: [AccessPolicy], certificates: URL, group: any EventLoopGroup
) async throws -> (
    WebhookServer, Int
) {
    var logger = Logger(label: "benchmark.webhook")
    logger.logLevel = .warning  // per-denial info lines would measure the terminal
    let engine = PolicyEngine(policies: try PolicyCompiler.compile(policies))
    let server = WebhookServer(
        configuration: .init(
            host: "127.0.0.1", port: 0, certificateChainFile: certificates.appendingPathComponent("tls.crt").path,
            privateKeyFile: certificates.appendingPathComponent("tls.key").path),
        handler: AdmissionHandler(policies: PolicyStore(engine)), group: group, logger: logger)
    return (server, try await server.start())
}

func row(
    _ label: String, _ result: LoadGenerator.Result, serverCPU: Duration, baseline: LoadGenerator.Result? = nil
) -> String {
    func column(_ text: String, _ width: Int) -> String {
        String(repeating: " ", count: max(0, width - text.count)) + text
    }
    var line = label.padding(toLength: 13, withPad: " ", startingAt: 0)
    line += column("\(result.connections)", 3) + " conn"
    line += column(String(format: "%.0f", result.requestsPerSecond), 9) + " req/s"
    line += "  p50 " + column(result.latencies.p50.milliseconds, 6) + " ms"
    line += "  p99 " + column(result.latencies.p99.milliseconds, 6) + " ms"
    line += "  max " + column(result.latencies.max.milliseconds, 7) + " ms"
    line += String(format: "  server CPU %4.0f µs/review", serverCPU.seconds * 1e6 / Double(max(1, result.completed)))
    line += "  non-200 \(result.failures)"
    if let baseline {
        line += String(format: "  %.1f%% of allow-all", 100 * result.requestsPerSecond / baseline.requestsPerSecond)
    }
    return line
}

let reviews = try loadReviews()
let generated = try GeneratedPolicies.load()
let certificates = FileManager.default.temporaryDirectory.appendingPathComponent("webhook-benchmark-\(getpid())")
try FileManager.default.createDirectory(at: certificates, withIntermediateDirectories: true)
let bundle = try CertificateBundle.generate(
    commonName: "127.0.0.1", dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"])
try bundle.write(to: certificates)
var tls = TLSConfiguration.makeClientConfiguration()
tls.trustRoots = .certificates([try NIOSSLCertificate(bytes: Array(bundle.caCertificatePEM.utf8), format: .pem)])
let clientTLS = try NIOSSLContext(configuration: tls)

// The servers get every core (as in production); the load generator one more thread beside them.
let serverGroup = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
let clientGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let clientLoop = clientGroup.next()
let (policyServer, policyPort) = try await startServer(generated, certificates: certificates, group: serverGroup)
let (allowAllServer, allowAllPort) = try await startServer([], certificates: certificates, group: serverGroup)
let servers = [("100 policies", policyPort), ("allow-all", allowAllPort)]

print("WebhookBenchmark: \(reviews.count) captured reviews round-robin; \(generated.count) policies,")
print(
    "  \(generated.reduce(0) { $0 + $1.rules.count }) rules vs none; \(System.coreCount) cores; load \(loadAverage())")
print("  closed loop \(settings.duration) per point after \(settings.warmUp) warm-up")

// Every review once, to show what the policies decide and that nothing fails.
for (label, port) in servers {
    let probe = try await LoadGenerator.connect(
        count: 1, port: port, tls: clientTLS, reviews: reviews, loop: clientLoop)
    let once = try await probe.paced(rate: 100, for: .milliseconds(10 * reviews.count))
    print("  \(label): \(once.completed) reviews answered, \(once.failures) non-200")
    await probe.close()
}

print("\nClosed loop (as fast as answers come back):")
for count in settings.connections {
    var baseline: LoadGenerator.Result?
    for (label, port) in servers.reversed() {
        let load = try await LoadGenerator.connect(
            count: count, port: port, tls: clientTLS, reviews: reviews, loop: clientLoop)
        _ = try await load.closedLoop(for: settings.warmUp)
        let cpuBefore = try await cpuTime(of: serverGroup)
        let result = try await load.closedLoop(for: settings.duration)
        let serverCPU = try await cpuTime(of: serverGroup) - cpuBefore
        await load.close()
        print(row(label, result, serverCPU: serverCPU, baseline: baseline))
        baseline = baseline ?? result
    }
}

print("\nOpen loop paced at \(settings.rate) reviews/s over \(settings.pacedConnections) connections:")
for (label, port) in servers {
    let load = try await LoadGenerator.connect(
        count: settings.pacedConnections, port: port, tls: clientTLS, reviews: reviews, loop: clientLoop)
    _ = try await load.paced(rate: settings.rate, for: settings.warmUp)
    let cpuBefore = try await cpuTime(of: serverGroup)
    let result = try await load.paced(rate: settings.rate, for: settings.duration)
    let serverCPU = try await cpuTime(of: serverGroup) - cpuBefore
    await load.close()
    print(
        row(label, result, serverCPU: serverCPU)
            + "  (p99 target 5 ms: \(result.latencies.p99 < .milliseconds(5) ? "met" : "missed"))")
}
print("\nload average after: \(loadAverage())")

try await policyServer.shutdown()
try await allowAllServer.shutdown()
try? FileManager.default.removeItem(at: certificates)
