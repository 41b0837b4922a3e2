import Crypto
import Foundation
import SwiftASN1
import X509

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

    /// Default lifetimes: long for the CA, a year for the serving certificate (rotate by re-running
    /// `portcullis certs` with the same CA).
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

    /// Writes `ca.crt`, `ca.key`, `tls.crt` and `tls.key` (keys readable by the owner only).
    public func write(to directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        for (name, text, mode) in [
            ("ca.crt", caCertificatePEM, 0o644), ("ca.key", caKeyPEM, 0o600), ("tls.crt", certificatePEM, 0o644),
            ("tls.key", keyPEM, 0o600),
        ] {
            let file = directory.appendingPathComponent(name)
            try Data(text.utf8).write(to: file, options: .atomic)
            try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: file.path)
        }
    }

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
