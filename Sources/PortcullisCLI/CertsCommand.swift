import ArgumentParser
import Foundation
import Webhook

/// `portcullis certs`: a private CA and a serving certificate for the webhook or the proxy, as PEM
/// files (for a kustomize `secretGenerator`, or a process run by hand) or as a `kubernetes.io/tls`
/// Secret manifest.
///
/// Every input is checked before anything is generated or written, and existing files are kept
/// unless `--force`: a new CA invalidates the old one wherever it is trusted (a webhook
/// configuration's `caBundle`, users' kubeconfigs), so replacing it must be deliberate.
struct CertsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "certs", abstract: "Create a CA and a serving certificate for the webhook or the proxy.",
        discussion: """
            With --service, the certificate names the Service inside the cluster (NAME, \
            NAME.NAMESPACE, NAME.NAMESPACE.svc and NAME.NAMESPACE.svc.CLUSTER-DOMAIN); add the \
            names users reach it by with --dns-name and --ip-address. For the portcullis-certs \
            kustomize overlay:

              portcullis certs --service portcullis-webhook --output-dir manifests/overlays/portcullis-certs/webhook
              portcullis certs --service portcullis-proxy --dns-name portcullis.example.com \\
                --output-dir manifests/overlays/portcullis-certs/proxy
            """)

    @Option(help: "The Service the certificate is for; adds its in-cluster DNS names.") var service: String?
    @Option(help: "Namespace of the Service and of the Secret.") var namespace = "portcullis-system"
    @Option(help: "The cluster's DNS domain, for the Service's fully qualified name.") var clusterDomain =
        "cluster.local"
    @Option(help: "A DNS name in the certificate (repeatable), e.g. portcullis.example.com.")
    var dnsName: [String] = []
    @Option(
        name: [.customLong("ip-address"), .customLong("ip")], help: "An IP address in the certificate (repeatable).")
    var ipAddress: [String] = []
    @Option(
        name: [.customLong("output-dir"), .customLong("out")],
        help: "Write ca.crt, ca.key, tls.crt and tls.key here (keys mode 0600).")
    var outputDirectory: String?
    @Option(
        name: [.customLong("secret-name"), .customLong("secret")],
        help: "Print a kubernetes.io/tls Secret of this name (with ca.crt; the CA key is not kept) instead.")
    var secretName: String?
    @Flag(help: "Replace existing files in --output-dir.") var force = false

    func validate() throws {
        guard (outputDirectory == nil) != (secretName == nil) else {
            throw ValidationError(
                "give exactly one of --output-dir (write PEM files) or --secret-name (print a Secret manifest)")
        }
        if force && outputDirectory == nil {
            throw ValidationError("--force replaces files in --output-dir; a printed Secret replaces nothing")
        }
    }

    func run() throws {
        let request: CertificateRequest
        do {
            request = try CertificateRequest(
                service: service, namespace: namespace, clusterDomain: clusterDomain, dnsNames: dnsName,
                ipAddresses: ipAddress, secretName: secretName)
            if let outputDirectory {
                try CertificateRequest.checkOutputDirectory(outputDirectory, force: force)
            }
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
        let bundle: CertificateBundle
        do {
            bundle = try CertificateBundle.generate(
                commonName: request.commonName, dnsNames: request.dnsNames, ipAddresses: request.ipAddresses)
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
        if let outputDirectory {
            do {
                try bundle.write(to: URL(fileURLWithPath: outputDirectory))
            } catch {
                printError("error: \(error)")
                throw ExitCode(1)
            }
            let names = request.dnsNames.map { "DNS:\($0)" } + request.ipAddresses.map { "IP:\($0)" }
            print(
                "wrote \(outputDirectory)/{ca.crt,ca.key,tls.crt,tls.key} for \(names.joined(separator: ", "))")
        } else if let secretName {
            print(bundle.secretManifest(name: secretName, namespace: namespace), terminator: "")
        }
    }
}

/// The checked inputs of `portcullis certs`: which names the certificate carries.
struct CertificateRequest: Equatable {
    var dnsNames: [String]
    var ipAddresses: [String]

    /// The subject's common name: informative only (clients check the alternative names).
    var commonName: String { dnsNames.first ?? ipAddresses.first ?? "portcullis" }

    init(
        service: String?, namespace: String, clusterDomain: String, dnsNames: [String], ipAddresses: [String],
        secretName: String?
    ) throws(CertsRefusal) {
        guard Self.isLabel(namespace) else {
            throw CertsRefusal(
                "--namespace \"\(namespace)\" is not a namespace name (lower-case letters, digits and '-', at most 63)"
            )
        }
        if let secretName, !Self.isSubdomain(secretName) {
            throw CertsRefusal(
                "--secret-name \"\(secretName)\" is not a Secret name (lower-case letters, digits, '-' and '.', at most 253)"
            )
        }
        var names: [String] = []
        if let service {
            guard Self.isLabel(service), service.first?.isLetter == true else {
                throw CertsRefusal(
                    "--service \"\(service)\" is not a Service name (a lower-case letter, then letters, digits and '-', at most 63)"
                )
            }
            guard Self.isHostName(clusterDomain) else {
                throw CertsRefusal("--cluster-domain \"\(clusterDomain)\" is not a DNS domain")
            }
            names = [
                service, "\(service).\(namespace)", "\(service).\(namespace).svc",
                "\(service).\(namespace).svc.\(clusterDomain)",
            ]
        }
        for name in dnsNames {
            if Self.isIPAddress(name) {
                throw CertsRefusal(
                    "--dns-name \"\(name)\" is an IP address; give it with --ip-address")
            }
            guard Self.isHostName(name.hasPrefix("*.") ? String(name.dropFirst(2)) : name) else {
                throw CertsRefusal(
                    "--dns-name \"\(name)\" is not a DNS name (labels of letters, digits and '-', separated by dots; a leading *. for a wildcard)"
                )
            }
            if !names.contains(name.lowercased()) { names.append(name.lowercased()) }
        }
        for address in ipAddresses where !Self.isIPAddress(address) {
            throw CertsRefusal("\"\(address)\" is not an IPv4 or IPv6 address (--ip-address)")
        }
        guard !names.isEmpty || !ipAddresses.isEmpty else {
            throw CertsRefusal(
                "the certificate would name nothing: give --service NAME (its in-cluster names), --dns-name or --ip-address"
            )
        }
        self.dnsNames = names
        self.ipAddresses = ipAddresses
    }

    /// Refuses a path that is not a directory, and existing output files unless `force`.
    static func checkOutputDirectory(_ path: String, force: Bool) throws(CertsRefusal) {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw CertsRefusal("--output-dir \(path) exists and is not a directory")
        }
        let existing = CertificateBundle.files.map { "\(path)/\($0.name)" }.filter {
            FileManager.default.fileExists(atPath: $0)
        }
        if !existing.isEmpty && !force {
            throw CertsRefusal(
                """
                refusing to overwrite \(existing.joined(separator: ", ")): a new CA replaces the one \
                trusted today (the webhook's caBundle, users' kubeconfigs); pass --force to replace them
                """)
        }
    }

    /// An RFC 1123 label: what namespace and Service names are.
    static func isLabel(_ text: String) -> Bool {
        !text.isEmpty && text.count <= 63 && text.first != "-" && text.last != "-"
            && text.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-") }
    }

    /// An RFC 1123 subdomain: what most Kubernetes object names are.
    static func isSubdomain(_ text: String) -> Bool {
        text.count <= 253
            && text.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { isLabel(String($0)) }
    }

    /// A host name of any case, as a certificate may carry it.
    static func isHostName(_ text: String) -> Bool {
        isSubdomain(text.lowercased())
    }

    static func isIPAddress(_ text: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }
}

/// An input `portcullis certs` refuses, with what to give instead.
struct CertsRefusal: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
