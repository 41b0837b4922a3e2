import Crypto
import Foundation
import SwiftASN1
import X509

#if canImport(Glibc)
    import Glibc
#endif

/// A private CA and a serving certificate signed by it: what the apiserver needs to call the
/// webhook (the CA goes into the webhook configuration's `caBundle`) and what the proxy serves.
///
/// ECDSA P-256 keys; the serving certificate names every DNS name and IP it is reached by,
/// because Go clients (the apiserver) ignore the common name and check only subject
/// alternative names.
public struct CertificateBundle: Sendable {
    public let caCertificatePEM: String
    public let caKeyPEM: String
    public let certificatePEM: String
    public let keyPEM: String

    /// Default lifetimes: long for the CA, a year for the serving certificate. `portcullis certs`
    /// always makes a new CA, so renewing means replacing the CA wherever it is trusted too (the
    /// webhook's `caBundle`, users' kubeconfigs); cert-manager renews without that.
    public static let caValidity: TimeInterval = 10 * 365 * 24 * 3600
    public static let servingValidity: TimeInterval = 365 * 24 * 3600

    /// Makes a new CA and a serving certificate for `dnsNames` and `ipAddresses`.
    public static func generate(
        commonName: String, dnsNames: [String], ipAddresses: [String], caName: String = "portcullis-ca",
        now: Date = Date()
    ) throws -> CertificateBundle {
        let caKey = P256.Signing.PrivateKey()
        let caSubject = try DistinguishedName { CommonName(caName) }
        let ca = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(caKey.publicKey),
            notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(caValidity),
            issuer: caSubject, subject: caSubject, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: .init(caKey.publicKey))
            },
            issuerPrivateKey: .init(caKey))
        let key = P256.Signing.PrivateKey()
        var names: [GeneralName] = dnsNames.map { .dnsName($0) }
        for address in ipAddresses {
            guard let bytes = ipAddressBytes(address) else {
                throw CertificateBundleError(message: "\"\(address)\" is not an IPv4 or IPv6 address")
            }
            names.append(.ipAddress(ASN1OctetString(contentBytes: bytes[...])))
        }
        guard !names.isEmpty else {
            throw CertificateBundleError(message: "a serving certificate needs at least one DNS name or IP address")
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
            notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(servingValidity),
            issuer: caSubject, subject: try DistinguishedName { CommonName(commonName) },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames(names)
                AuthorityKeyIdentifier(keyIdentifier: SubjectKeyIdentifier(hash: .init(caKey.publicKey)).keyIdentifier)
            },
            issuerPrivateKey: .init(caKey))
        return CertificateBundle(
            caCertificatePEM: try ca.serializeAsPEM().pemString + "\n", caKeyPEM: caKey.pemRepresentation + "\n",
            certificatePEM: try certificate.serializeAsPEM().pemString + "\n", keyPEM: key.pemRepresentation + "\n")
    }

    /// The files ``write(to:)`` creates, and their modes: keys are readable by the owner only.
    public static let files: [(name: String, mode: mode_t)] = [
        ("ca.crt", 0o644), ("ca.key", 0o600), ("tls.crt", 0o644), ("tls.key", 0o600),
    ]

    /// Writes `ca.crt`, `ca.key`, `tls.crt` and `tls.key`, replacing files of those names.
    ///
    /// Each file is first written to a new temporary file created with its final mode and then
    /// renamed into place, so a key is never readable by others, not even between its creation and
    /// a `chmod`, and a reader never sees half a file.
    public func write(to directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let texts = ["ca.crt": caCertificatePEM, "ca.key": caKeyPEM, "tls.crt": certificatePEM, "tls.key": keyPEM]
        for (name, mode) in Self.files {
            try Self.writeFile(directory.appendingPathComponent(name).path, text: texts[name] ?? "", mode: mode)
        }
    }

    private static func writeFile(_ path: String, text: String, mode: mode_t) throws {
        let temporary = "\(path).\(getpid())-\(UInt32.random(in: 0...UInt32.max)).tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard descriptor >= 0 else {
            throw CertificateBundleError(message: "cannot create \(temporary): \(errnoText())")
        }
        var failure: String?
        // The umask may have removed bits from `mode`; certificates stay readable as asked.
        if fchmod(descriptor, mode) != 0 { failure = "cannot set the mode of \(temporary): \(errnoText())" }
        var bytes = Array(text.utf8)[...]
        while failure == nil, !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                failure = "cannot write \(temporary): \(errnoText())"
            } else {
                bytes = bytes.dropFirst(written)
            }
        }
        if failure == nil, fsync(descriptor) != 0 { failure = "cannot sync \(temporary): \(errnoText())" }
        close(descriptor)
        if failure == nil, rename(temporary, path) != 0 { failure = "cannot replace \(path): \(errnoText())" }
        if let failure {
            unlink(temporary)
            throw CertificateBundleError(message: failure)
        }
    }

    private static func errnoText() -> String { String(cString: strerror(errno)) }

    /// A `kubernetes.io/tls` Secret holding the serving pair and the CA (the CA key stays out).
    public func secretManifest(name: String, namespace: String) -> String {
        func base64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }
        return """
            apiVersion: v1
            kind: Secret
            metadata:
              name: \(name)
              namespace: \(namespace)
            type: kubernetes.io/tls
            data:
              ca.crt: \(base64(caCertificatePEM))
              tls.crt: \(base64(certificatePEM))
              tls.key: \(base64(keyPEM))

            """
    }

    static func ipAddressBytes(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: v6) { Array($0) } }
        return nil
    }
}

public struct CertificateBundleError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
