import Foundation
import Policy
import Sandbox
import TestSupport
import Testing
import Webhook

/// Bad requests straight at the webhook over real TLS on loopback, sent by curl and openssl (not by
/// our own client code): each gets a clear 4xx with a message, and the server goes on serving,
/// on the same keep-alive connection where HTTP allows it.
@Suite("Webhook server under bad input", .timeLimit(.minutes(5)))
struct WebhookServerInputTests {
    static let policy = """
        apiVersion: portcullis.dev/v1alpha1
        kind: AccessPolicy
        metadata: {name: blocked-configmaps}
        spec:
          match: {resources: [configmaps]}
          rules:
          - {name: blocked, action: Deny, expression: "object.metadata.name == 'blocked'", message: "this name is blocked"}
        """

    /// A webhook on a free loopback port, with its scratch directory.
    static func startServer() async throws -> (server: WebhookServer, port: Int) {
        let directory = try Paths.makeScratchDirectory("webhook-input")
        let bundle = try CertificateBundle.generate(
            commonName: "127.0.0.1", dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"])
        try bundle.write(to: directory)
        let engine = PolicyEngine(policies: try PolicyCompiler.compile(try PolicyLoader.parse(policy, file: "p.yaml")))
        let server = WebhookServer(
            configuration: .init(
                host: "127.0.0.1", port: 0, certificateChainFile: directory.appendingPathComponent("tls.crt").path,
                privateKeyFile: directory.appendingPathComponent("tls.key").path),
            handler: AdmissionHandler(policies: PolicyStore(engine)))
        return (server, try await server.start())
    }

    static func review(uid: String? = "u-1", apiVersion: String = "admission.k8s.io/v1", name: String) -> String {
        let uidField = uid.map { #""uid":"\#($0)","# } ?? ""
        return #"""
            {"apiVersion":"\#(apiVersion)","kind":"AdmissionReview","request":{\#(uidField)"kind":{"group":"","version":"v1","kind":"ConfigMap"},"resource":{"group":"","version":"v1","resource":"configmaps"},"name":"\#(name)","namespace":"dev","operation":"CREATE","userInfo":{"username":"alice"},"object":{"metadata":{"name":"\#(name)"}}}}
            """#
    }

    /// One request of a curl command line that sends several over one connection.
    struct Exchange {
        var name: String
        var method = "POST"
        var contentType = "application/json"
        var body: String?
        var status: Int
        var message: String

        var curlArguments: [String] {
            var arguments = ["-sS", "-k", "--http1.1", "-X", method, "-H", "content-type: \(contentType)"]
            if let body { arguments += ["--data-binary", body] }
            return arguments + ["-w", "\n@@%{http_code} %{num_connects}\n"]
        }
    }

    static let exchanges: [Exchange] = [
        .init(name: "malformed JSON", body: "{\"apiVersion\":", status: 400, message: "the body is not valid JSON"),
        .init(
            name: "wrong apiVersion", body: review(apiVersion: "admission.k8s.io/v1beta1", name: "a"), status: 400,
            message: "apiVersion must be admission.k8s.io/v1 (configure admissionReviewVersions: [v1])"),
        .init(name: "missing uid", body: review(uid: nil, name: "a"), status: 400, message: "request.uid is missing"),
        .init(
            name: "wrong content type", contentType: "text/plain", body: review(name: "a"), status: 415,
            message: #"AdmissionReviews are application/json, not "text/plain""#),
        .init(name: "wrong method", method: "GET", status: 405, message: "GET is not allowed on /validate"),
        .init(
            name: "a good review afterwards", body: review(name: "blocked"), status: 200, message: #""allowed":false"#),
    ]

    @Test("bad reviews get a 4xx naming the problem, all on one keep-alive connection that keeps serving")
    func badRequestsKeepTheConnection() async throws {
        let (server, port) = try await Self.startServer()
        let url = "https://127.0.0.1:\(port)/validate"
        var arguments: [String] = []
        for (index, exchange) in Self.exchanges.enumerated() {
            arguments += (index == 0 ? [] : ["--next"]) + exchange.curlArguments + [url]
        }
        let result = try await ProcessRunner.run(URL(fileURLWithPath: "/usr/bin/curl"), arguments: arguments)
        #expect(result.exitCode == 0, "\(result.standardError)")
        // Each response is its body, then "@@<status> <new connections>\n".
        let segments = result.standardOutput.components(separatedBy: "@@")
        try #require(segments.count == Self.exchanges.count + 1, "\(result.standardOutput)")
        for (index, exchange) in Self.exchanges.enumerated() {
            let body = index == 0 ? segments[0] : String(segments[index].drop { $0 != "\n" })
            let summary = segments[index + 1].prefix { $0 != "\n" }.split(separator: " ")
            #expect(summary.first.map(String.init) == "\(exchange.status)", "\(exchange.name): \(body)")
            #expect(body.contains(exchange.message), "\(exchange.name): \(body)")
            #expect(summary.last.map(String.init) == (index == 0 ? "1" : "0"), "\(exchange.name) used a new connection")
        }
        try await server.shutdown()
    }

    @Test("a body declared over 8 MiB is refused with 413 before it is sent, and a new connection is served")
    func oversizedBody() async throws {
        let (server, port) = try await Self.startServer()
        let declared = AdmissionRequest.maximumBodyBytes + 1
        // Only 64 KiB of the declared body is ever sent: a server waiting for the rest would hang
        // until `timeout` kills openssl (exit 124).
        let request =
            "POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            + "Content-Length: \(declared)\r\n\r\n" + String(repeating: " ", count: 64 * 1024)
        let result = try await ProcessRunner.run(
            URL(fileURLWithPath: "/usr/bin/timeout"),
            arguments: ["20", "/usr/bin/openssl", "s_client", "-quiet", "-connect", "127.0.0.1:\(port)"],
            standardInput: Data(request.utf8))
        #expect(result.exitCode != 124, "the server waited for the whole body")
        #expect(result.standardOutput.hasPrefix("HTTP/1.1 413 Payload Too Large\r\n"), "\(result.standardOutput)")
        #expect(
            result.standardOutput.contains(
                "the request declares \(declared) bytes; the limit is \(AdmissionRequest.maximumBodyBytes)"))
        #expect(result.standardOutput.lowercased().contains("connection: close"))

        let next = try await ProcessRunner.run(
            URL(fileURLWithPath: "/usr/bin/curl"),
            arguments: [
                "-sS", "-k", "-H", "content-type: application/json", "--data-binary", Self.review(name: "ok"),
                "https://127.0.0.1:\(port)/validate",
            ])
        #expect(next.standardOutput.contains(#""allowed":true"#), "\(next.standardOutput)\(next.standardError)")
        try await server.shutdown()
    }
}
