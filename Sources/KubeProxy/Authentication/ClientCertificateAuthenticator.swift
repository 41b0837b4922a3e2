import X509

/// Authenticates a TLS client certificate the way the apiserver's `--client-ca-file` does: the
/// leaf's subject common name (CN) is the user name and each organization (O) is a group.
///
/// The TLS layer has already verified the chain against the client CA; this authenticator only maps
/// the leaf to an identity, and refuses leaves it cannot map unambiguously: no CN, more than one CN,
/// a CN or O that is not a printable or UTF-8 string, or (with ``requireClientAuthUsage``) an
/// extended key usage extension that does not allow client authentication (the apiserver verifies
/// with `ExtKeyUsageClientAuth`). Without a certificate the result is
/// ``AuthenticationResult/notApplicable``.
public struct ClientCertificateAuthenticator: Authenticator {
    /// Whether a leaf whose extended key usage extension lacks `clientAuth` (and `anyExtendedKeyUsage`)
    /// is refused. A leaf without the extension is accepted either way.
    public var requireClientAuthUsage: Bool

    public init(requireClientAuthUsage: Bool = true) {
        self.requireClientAuthUsage = requireClientAuthUsage
    }

    public func authenticate(_ credentials: Credentials) async -> AuthenticationResult {
        authenticateNow(credentials)
    }

    public func authenticateImmediately(_ credentials: Credentials) -> AuthenticationResult? {
        authenticateNow(credentials)
    }

    private func authenticateNow(_ credentials: Credentials) -> AuthenticationResult {
        guard let leaf = credentials.clientCertificateChain.first else { return .notApplicable }
        switch identity(for: leaf) {
        case .success(let identity): return .authenticated(identity)
        case .failure(let failure): return .rejected(failure)
        }
    }

    /// Maps a verified leaf certificate to an identity.
    public func identity(for leaf: Certificate) -> Result<Identity, AuthenticationFailure> {
        let subject = String(describing: leaf.subject)
        func failure(_ message: String) -> Result<Identity, AuthenticationFailure> {
            .failure(
                AuthenticationFailure(
                    .invalidCertificate, method: .clientCertificate,
                    detail: "client certificate \"\(subject)\" (serial \(leaf.serialNumber)): \(message)"))
        }
        if requireClientAuthUsage {
            do {
                if let usage = try leaf.extensions.extendedKeyUsage,
                    !usage.contains(.clientAuth), !usage.contains(.any)
                {
                    return failure("its extended key usage does not allow client authentication")
                }
            } catch {
                return failure("its extended key usage extension cannot be decoded")
            }
        }
        var commonNames: [String] = []
        var organizations: [String] = []
        for relativeName in leaf.subject {
            for attribute in relativeName {
                switch attribute.type {
                case .RDNAttributeType.commonName:
                    guard let value = String(attribute.value) else { return failure("its CN is not a text string") }
                    commonNames.append(value)
                case .RDNAttributeType.organizationName:
                    guard let value = String(attribute.value) else { return failure("an O is not a text string") }
                    organizations.append(value)
                default:
                    continue
                }
            }
        }
        guard commonNames.count == 1, let name = commonNames.first else {
            return failure(commonNames.isEmpty ? "it has no CN" : "it has \(commonNames.count) CNs")
        }
        guard !name.isEmpty else { return failure("its CN is empty") }
        let groups = organizations.filter { !$0.isEmpty }
        return .success(Identity(name: name, groups: groups, method: .clientCertificate))
    }
}
