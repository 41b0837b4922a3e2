/// The proxy's authentication step: a list of authenticators tried in order.
///
/// The first authenticator that answers ``AuthenticationResult/authenticated(_:)`` wins and the
/// rest are not asked; ``AuthenticationResult/notApplicable`` passes the credentials on. If no
/// authenticator succeeds the request is unauthenticated (the proxy answers every such request
/// with the same `401 Unauthorized` `Status`) and every rejection is kept for the audit log.
/// Credentials that no authenticator recognises are unauthenticated too: the proxy has no
/// anonymous user.
///
/// A rejection is final by default: an authenticator rejects only credentials it recognises as its
/// own (the OIDC authenticator, a JWT naming its issuer), so passing them on could only let a later,
/// laxer authenticator accept what this one refused. For example, an ID token that fails the
/// proxy's audience or required-claim checks would otherwise go to the apiserver in a
/// `TokenReview`, which may accept it under its own OIDC settings, and the user's identity-provider
/// token would leave the proxy. `continueAfterRejection` restores the apiserver's union behaviour.
public struct AuthenticatorChain: Sendable {
    public let authenticators: [any Authenticator]
    /// Whether authenticators after a rejection are still asked (the apiserver's union
    /// authenticator does so). Off by default; see the type's documentation.
    public let continueAfterRejection: Bool

    public init(_ authenticators: [any Authenticator], continueAfterRejection: Bool = false) {
        self.authenticators = authenticators
        self.continueAfterRejection = continueAfterRejection
    }

    public func authenticate(_ credentials: Credentials) async -> AuthenticationOutcome {
        var failures: [AuthenticationFailure] = []
        for authenticator in authenticators {
            if let outcome = settle(await authenticator.authenticate(credentials), failures: &failures) {
                return outcome
            }
        }
        return Self.unanswered(credentials, failures: failures)
    }

    /// The chain's outcome when every authenticator it asks can answer without waiting (see
    /// ``Authenticator/authenticateImmediately(_:)``); nil as soon as one cannot, and then
    /// ``authenticate(_:)`` must be called.
    public func authenticateImmediately(_ credentials: Credentials) -> AuthenticationOutcome? {
        var failures: [AuthenticationFailure] = []
        for authenticator in authenticators {
            guard let result = authenticator.authenticateImmediately(credentials) else { return nil }
            if let outcome = settle(result, failures: &failures) { return outcome }
        }
        return Self.unanswered(credentials, failures: failures)
    }

    /// One authenticator's answer: the chain's outcome when it decides, nil to ask the next.
    private func settle(
        _ result: AuthenticationResult, failures: inout [AuthenticationFailure]
    ) -> AuthenticationOutcome? {
        switch result {
        case .authenticated(let identity):
            return .authenticated(identity)
        case .notApplicable:
            return nil
        case .rejected(let failure):
            failures.append(failure)
            return continueAfterRejection ? nil : .unauthenticated(failures)
        }
    }

    /// No authenticator accepted the credentials.
    private static func unanswered(
        _ credentials: Credentials, failures: [AuthenticationFailure]
    ) -> AuthenticationOutcome {
        var failures = failures
        if failures.isEmpty {
            let presented: String
            switch (credentials.bearerToken, credentials.clientCertificateChain.isEmpty) {
            case (nil, true): presented = "no credentials were presented"
            case (.some(let token), true): presented = "no authenticator recognised the bearer token \(Redacted(token))"
            case (nil, false): presented = "no authenticator recognised the client certificate"
            case (.some(let token), false):
                presented = "no authenticator recognised the bearer token \(Redacted(token)) or the client certificate"
            }
            failures.append(AuthenticationFailure(.noCredentials, method: .chain, detail: presented))
        }
        return .unauthenticated(failures)
    }
}

/// The result of running the whole chain on one request.
public enum AuthenticationOutcome: Sendable {
    /// The caller is this identity.
    case authenticated(Identity)
    /// Answer 401. The failures (never empty) are for the audit log only.
    case unauthenticated([AuthenticationFailure])

    /// The identity, when authenticated.
    public var identity: Identity? {
        if case .authenticated(let identity) = self { return identity }
        return nil
    }

    /// The failures, when unauthenticated; empty otherwise.
    public var failures: [AuthenticationFailure] {
        if case .unauthenticated(let failures) = self { return failures }
        return []
    }

    /// One line for the audit log: the failures joined with `; `, or empty when authenticated.
    public var auditDetail: String {
        failures.map(\.description).joined(separator: "; ")
    }
}
