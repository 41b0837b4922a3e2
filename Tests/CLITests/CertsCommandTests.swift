import Foundation
import Sandbox
import TestSupport
import Testing

/// `portcullis certs`, run as the real binary; its certificates are checked by openssl.
@Suite("portcullis certs", .timeLimit(.minutes(5)))
struct CertsCommandTests {
    @Test(
        "certs --service writes the CA and serving pair, keys mode 0600, for the Service's in-cluster names and the names asked for"
    )
    func serviceCertificate() async throws {
        let directory = try Paths.makeScratchDirectory("certs-service").appendingPathComponent("webhook")
        let made = try await portcullis([
            "certs", "--service", "portcullis-webhook", "--namespace", "portcullis-system", "--dns-name",
            "portcullis.example.com", "--ip-address", "10.0.0.7", "--output-dir", directory.path,
        ])
        #expect(made.exitCode == 0, "\(made.standardError)")
        for (name, mode) in [("ca.crt", 0o644), ("ca.key", 0o600), ("tls.crt", 0o644), ("tls.key", 0o600)] {
            let attributes = try FileManager.default.attributesOfItem(
                atPath: directory.appendingPathComponent(name).path)
            #expect((attributes[.posixPermissions] as? Int) == mode, "\(name)")
        }
        #expect(try await verify(certificate: "tls.crt", against: "ca.crt", in: directory))
        let names = try await openssl(["x509", "-noout", "-ext", "subjectAltName", "-in", path(directory, "tls.crt")])
        #expect(
            names.standardOutput.contains(
                "DNS:portcullis-webhook, DNS:portcullis-webhook.portcullis-system, "
                    + "DNS:portcullis-webhook.portcullis-system.svc, "
                    + "DNS:portcullis-webhook.portcullis-system.svc.cluster.local, DNS:portcullis.example.com, "
                    + "IP Address:10.0.0.7"), "\(names.standardOutput)")
        let text = try await openssl(["x509", "-noout", "-text", "-in", path(directory, "tls.crt")])
        #expect(text.standardOutput.contains("TLS Web Server Authentication"))
        #expect(text.standardOutput.contains("CA:FALSE"))
        let ca = try await openssl(["x509", "-noout", "-text", "-in", path(directory, "ca.crt")])
        #expect(ca.standardOutput.contains("CA:TRUE"))
    }

    @Test("certs refuses to overwrite existing files unless --force, which replaces them with a new CA")
    func overwrite() async throws {
        let directory = try Paths.makeScratchDirectory("certs-force")
        let arguments = ["certs", "--service", "portcullis-proxy", "--output-dir", directory.path]
        #expect(try await portcullis(arguments).exitCode == 0)
        let firstCA = try String(contentsOf: directory.appendingPathComponent("ca.crt"), encoding: .utf8)

        let refused = try await portcullis(arguments)
        #expect(refused.exitCode == 1)
        #expect(refused.standardError.contains("refusing to overwrite \(directory.path)/ca.crt"))
        #expect(refused.standardError.contains("pass --force to replace them"))
        #expect(try String(contentsOf: directory.appendingPathComponent("ca.crt"), encoding: .utf8) == firstCA)

        let forced = try await portcullis(arguments + ["--force"])
        #expect(forced.exitCode == 0, "\(forced.standardError)")
        #expect(try String(contentsOf: directory.appendingPathComponent("ca.crt"), encoding: .utf8) != firstCA)
        #expect(try await verify(certificate: "tls.crt", against: "ca.crt", in: directory))
        let attributes = try FileManager.default.attributesOfItem(atPath: path(directory, "tls.key"))
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
    }

    @Test("certs --secret-name prints a kubernetes.io/tls Secret whose certificate verifies against its ca.crt")
    func secret() async throws {
        let printed = try await portcullis([
            "certs", "--service", "portcullis-webhook", "--secret-name", "portcullis-webhook-tls", "--namespace",
            "tools",
        ])
        #expect(printed.exitCode == 0, "\(printed.standardError)")
        let text = printed.standardOutput
        #expect(text.contains("kind: Secret\nmetadata:\n  name: portcullis-webhook-tls\n  namespace: tools\n"))
        #expect(text.contains("type: kubernetes.io/tls"))
        #expect(!text.contains("ca.key"), "the CA key stays out of the cluster")
        let directory = try Paths.makeScratchDirectory("certs-secret")
        for key in ["ca.crt", "tls.crt", "tls.key"] {
            let line = try #require(text.split(separator: "\n").first { $0.hasPrefix("  \(key): ") })
            let data = try #require(Data(base64Encoded: String(line.dropFirst(key.count + 4))))
            try data.write(to: directory.appendingPathComponent(key))
        }
        #expect(try await verify(certificate: "tls.crt", against: "ca.crt", in: directory))
        let names = try await openssl(["x509", "-noout", "-ext", "subjectAltName", "-in", path(directory, "tls.crt")])
        #expect(names.standardOutput.contains("DNS:portcullis-webhook.tools.svc,"))
    }

    /// A refused input: its arguments, exit code (64 for a wrong combination of options, which
    /// also prints the usage) and the message.
    static let refusals: [([String], Int32, String)] = [
        (["--output-dir", "OUT"], 1, "the certificate would name nothing: give --service NAME"),
        (
            ["--dns-name", "10.0.0.1", "--output-dir", "OUT"], 1,
            "--dns-name \"10.0.0.1\" is an IP address; give it with --ip-address"
        ),
        (
            ["--dns-name", "under_score.example", "--output-dir", "OUT"], 1,
            "--dns-name \"under_score.example\" is not a DNS name"
        ),
        (["--ip-address", "300.1.1.1", "--output-dir", "OUT"], 1, "\"300.1.1.1\" is not an IPv4 or IPv6 address"),
        (["--service", "9-lives", "--output-dir", "OUT"], 1, "--service \"9-lives\" is not a Service name"),
        (
            ["--service", "proxy", "--namespace", "Portcullis", "--output-dir", "OUT"], 1,
            "--namespace \"Portcullis\" is not a namespace name"
        ),
        (["--service", "proxy", "--secret-name", "Proxy_TLS"], 1, "--secret-name \"Proxy_TLS\" is not a Secret name"),
        (["--service", "proxy", "--output-dir", "FILE"], 1, "--output-dir FILE exists and is not a directory"),
        (["--service", "proxy"], 64, "give exactly one of --output-dir (write PEM files) or --secret-name"),
        (["--service", "proxy", "--output-dir", "OUT", "--secret-name", "x"], 64, "give exactly one of --output-dir"),
        (["--service", "proxy", "--secret-name", "x", "--force"], 64, "--force replaces files in --output-dir"),
    ]

    @Test(
        "certs refuses what it cannot put in a certificate, naming the option, and writes nothing", arguments: refusals)
    func refusal(arguments: [String], exitCode: Int32, message: String) async throws {
        let scratch = try Paths.makeScratchDirectory("certs-refused")
        let output = scratch.appendingPathComponent("out")
        let file = scratch.appendingPathComponent("file")
        try Data("not a directory".utf8).write(to: file)
        let substituted = arguments.map { $0 == "OUT" ? output.path : $0 == "FILE" ? file.path : $0 }
        let result = try await portcullis(["certs"] + substituted)
        let expected = message.replacingOccurrences(of: "FILE", with: file.path)
        #expect(result.exitCode == exitCode, "\(result.standardError)")
        #expect(result.standardError.contains(expected), "\(result.standardError)")
        #expect(result.standardOutput.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: output.path))
    }

    private func verify(certificate: String, against ca: String, in directory: URL) async throws -> Bool {
        let result = try await openssl([
            "verify", "-purpose", "sslserver", "-CAfile", path(directory, ca), path(directory, certificate),
        ])
        return result.exitCode == 0 && result.standardOutput.hasSuffix(": OK\n")
    }

    private func path(_ directory: URL, _ name: String) -> String { directory.appendingPathComponent(name).path }

    private func openssl(_ arguments: [String]) async throws -> ProcessResult {
        try await ProcessRunner.run(URL(fileURLWithPath: "/usr/bin/openssl"), arguments: arguments)
    }

    private func portcullis(_ arguments: [String]) async throws -> ProcessResult {
        try await ProcessRunner.run(Paths.productsDirectory.appendingPathComponent("portcullis"), arguments: arguments)
    }
}
