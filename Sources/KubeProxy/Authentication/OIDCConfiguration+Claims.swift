import Foundation

extension OIDCConfiguration {
    /// Why a claims set was refused (`kind` and a message without the token).
    struct ClaimsFailure: Swift.Error, Sendable, Hashable {
        var kind: AuthenticationFailure.Kind
        var detail: String
    }

    /// Checks a verified token's claims and maps them to an identity, returning also the time
    /// after which the token is no longer valid (`exp` plus the clock skew).
    ///
    /// * `exp` is required, a number, and `now` is at most `exp + clockSkew`;
    /// * `nbf` and `iat`, when present, are numbers no later than `now + clockSkew`;
    /// * `aud` (a string or an array of strings) contains ``clientID`` or one of ``audiences``;
    /// * each ``requiredClaims`` entry is present with exactly that string value;
    /// * ``usernameClaim`` is a non-empty string; for `email`, `email_verified`, when present, is true;
    /// * ``groupsClaim``, when configured and present, is a string or an array of strings;
    /// * ``uidClaim``, when configured, is a string;
    /// * unless ``allowSystemIdentities``, neither the user name nor a group begins with `system:`.
    ///
    /// `iss` is checked by the authenticator before the signature.
    func identity(
        from claims: [String: JSONValue], now: Date
    ) -> Result<(Identity, expires: Date), ClaimsFailure> {
        func fail(
            _ kind: AuthenticationFailure.Kind, _ detail: String
        ) -> Result<(Identity, expires: Date), ClaimsFailure> {
            .failure(ClaimsFailure(kind: kind, detail: detail))
        }
        let skew = AuthenticationTime.interval(clockSkew)
        let seconds = now.timeIntervalSince1970

        guard let expiryClaim = claims["exp"] else { return fail(.invalidClaims, "the token has no \"exp\"") }
        guard let expiry = expiryClaim.numberValue else {
            return fail(.invalidClaims, "\"exp\" is a \(expiryClaim.typeName), not a number")
        }
        guard seconds <= expiry + skew else {
            return fail(.expired, "expired at \(Self.timestamp(expiry)), now is \(Self.timestamp(seconds))")
        }
        for name in ["nbf", "iat"] {
            guard let claim = claims[name] else { continue }
            guard let value = claim.numberValue else {
                return fail(.invalidClaims, "\"\(name)\" is a \(claim.typeName), not a number")
            }
            guard value <= seconds + skew else {
                let what = name == "nbf" ? "not valid before" : "issued at"
                return fail(.notYetValid, "\(what) \(Self.timestamp(value)), now is \(Self.timestamp(seconds))")
            }
        }

        let audiences: [String]
        switch claims["aud"] {
        case .string(let value): audiences = [value]
        case .array(let values):
            audiences = values.compactMap(\.stringValue)
            guard audiences.count == values.count else { return fail(.invalidAudience, "\"aud\" holds a non-string") }
        case nil: return fail(.invalidAudience, "the token has no \"aud\"")
        case .some(let other): return fail(.invalidAudience, "\"aud\" is a \(other.typeName)")
        }
        let accepted = acceptedAudiences
        guard audiences.contains(where: { accepted.contains($0) }) else {
            let shown = audiences.prefix(5).map(AuthenticationDetail.quote).joined(separator: ", ")
            return fail(.invalidAudience, "\"aud\" [\(shown)] does not include the client ID")
        }

        for (name, expected) in requiredClaims.sorted(by: { $0.key < $1.key }) {
            guard claims[name]?.stringValue == expected else {
                return fail(
                    .invalidClaims, "the required claim \(AuthenticationDetail.quote(name)) is missing or differs")
            }
        }

        guard let usernameValue = claims[usernameClaim] else {
            return fail(.invalidClaims, "the username claim \(AuthenticationDetail.quote(usernameClaim)) is missing")
        }
        guard let username = usernameValue.stringValue, !username.isEmpty else {
            return fail(
                .invalidClaims,
                "the username claim \(AuthenticationDetail.quote(usernameClaim)) is not a non-empty string")
        }
        if usernameClaim == "email", let verified = claims["email_verified"], verified != .bool(true) {
            return fail(.invalidClaims, "\"email_verified\" is not true")
        }

        var groups: [String] = []
        if let groupsClaim, let value = claims[groupsClaim] {
            switch value {
            case .string(let single): groups = [single]
            case .array(let values):
                groups = values.compactMap(\.stringValue)
                guard groups.count == values.count else {
                    return fail(
                        .invalidClaims, "the groups claim \(AuthenticationDetail.quote(groupsClaim)) holds a non-string"
                    )
                }
            case .null: groups = []
            default:
                return fail(
                    .invalidClaims, "the groups claim \(AuthenticationDetail.quote(groupsClaim)) is a \(value.typeName)"
                )
            }
        }

        var uid = ""
        if let uidClaim {
            guard let value = claims[uidClaim]?.stringValue else {
                return fail(
                    .invalidClaims, "the UID claim \(AuthenticationDetail.quote(uidClaim)) is missing or not a string")
            }
            uid = value
        }

        let name = effectiveUsernamePrefix + username
        let prefixedGroups = groups.filter { !$0.isEmpty }.map { groupsPrefix + $0 }
        if !allowSystemIdentities {
            if name.hasPrefix("system:") {
                return fail(.forbiddenIdentity, "the user name \(AuthenticationDetail.quote(name)) is reserved")
            }
            if let group = prefixedGroups.first(where: { $0.hasPrefix("system:") }) {
                return fail(.forbiddenIdentity, "the group \(AuthenticationDetail.quote(group)) is reserved")
            }
        }
        let identity = Identity(name: name, uid: uid, groups: prefixedGroups, method: .oidc)
        return .success((identity, Date(timeIntervalSince1970: expiry + skew)))
    }

    private static func timestamp(_ seconds: TimeInterval) -> String {
        guard seconds.isFinite, abs(seconds) < 1e11 else { return "\(seconds)" }
        return Date(timeIntervalSince1970: seconds).formatted(.iso8601)
    }
}
