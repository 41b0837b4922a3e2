import NIOSSL
import Policy

extension AuthenticatorChain {
    /// The chain as the proxy gate calls it: the bearer token and the TLS client chain in, the
    /// caller's identity (or why not) out.
    public var callerAuthenticator: CallerAuthenticator {
        CallerAuthenticator(
            immediately: { bearerToken, certificates in
                Self.credentials(bearerToken, certificates).settled { credentials in
                    authenticateImmediately(credentials).map(Self.caller)
                }
            },
            eventually: { bearerToken, certificates in
                switch Self.credentials(bearerToken, certificates) {
                case .settled(let answer): return answer
                case .ask(let credentials): return Self.caller(await authenticate(credentials))
                }
            })
    }

    private enum Presented {
        /// Nothing to ask the authenticators: no credentials, or a chain that cannot be read.
        case settled(CallerAuthentication)
        case ask(Credentials)

        func settled(_ ask: (Credentials) -> CallerAuthentication?) -> CallerAuthentication? {
            switch self {
            case .settled(let answer): answer
            case .ask(let credentials): ask(credentials)
            }
        }
    }

    private static func credentials(_ bearerToken: String?, _ certificates: [NIOSSLCertificate]) -> Presented {
        if bearerToken == nil && certificates.isEmpty { return .settled(.anonymous) }
        do {
            return .ask(
                try Credentials(
                    bearerToken: bearerToken, clientCertificateChainDER: try certificates.map { try $0.toDERBytes() }))
        } catch {
            return .settled(.rejected(detail: "the client certificate chain cannot be read"))
        }
    }

    private static func caller(_ outcome: AuthenticationOutcome) -> CallerAuthentication {
        switch outcome {
        case .authenticated(let identity):
            var groups = identity.groups
            if !groups.contains("system:authenticated") { groups.append("system:authenticated") }
            return .authenticated(
                RequestAttributes.UserInfo(
                    name: identity.name, uid: identity.uid, groups: groups, extra: identity.extra),
                method: identity.method.rawValue)
        case .unauthenticated:
            return .rejected(detail: outcome.auditDetail)
        }
    }
}
