import NIOSSL
import Policy

extension AuthenticatorChain {
    /// The chain as the proxy gate calls it: the bearer token and the TLS client chain in, the
    /// caller's identity (or why not) out.
    public var callerAuthenticator: CallerAuthenticator {
        { bearerToken, certificates in
            let credentials: Credentials
            do {
                credentials = try Credentials(
                    bearerToken: bearerToken, clientCertificateChainDER: try certificates.map { try $0.toDERBytes() })
            } catch {
                return .rejected(detail: "the client certificate chain cannot be read")
            }
            if bearerToken == nil && certificates.isEmpty { return .anonymous }
            switch await authenticate(credentials) {
            case .authenticated(let identity):
                var groups = identity.groups
                if !groups.contains("system:authenticated") { groups.append("system:authenticated") }
                return .authenticated(
                    RequestAttributes.UserInfo(
                        name: identity.name, uid: identity.uid, groups: groups, extra: identity.extra),
                    method: identity.method.rawValue)
            case .unauthenticated(let outcome):
                return .rejected(detail: AuthenticationOutcome.unauthenticated(outcome).auditDetail)
            }
        }
    }
}
