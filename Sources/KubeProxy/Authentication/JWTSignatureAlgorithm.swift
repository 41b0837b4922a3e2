/// The JWS signature algorithms (RFC 7518 §3.1) the OIDC authenticator may accept.
///
/// Deliberately a closed enum of asymmetric algorithms only: `none` and the HMAC family (`HS256`…)
/// cannot be expressed, so no configuration can enable them. HMAC with a public key as the secret is
/// the classic algorithm-confusion attack (a forger "signs" with the issuer's published RSA key);
/// here it fails at the header, before any key is touched. Each algorithm also names the key type
/// (and curve) it needs, and a key is only used with a matching algorithm.
public enum JWTSignatureAlgorithm: String, Sendable, Hashable, CaseIterable {
    case rs256 = "RS256"
    case rs384 = "RS384"
    case rs512 = "RS512"
    case es256 = "ES256"
    case es384 = "ES384"

    /// The JWK `kty` a key for this algorithm has.
    var keyType: String {
        switch self {
        case .rs256, .rs384, .rs512: "RSA"
        case .es256, .es384: "EC"
        }
    }

    /// The JWK `crv` an EC key for this algorithm has; nil for RSA.
    var curve: String? {
        switch self {
        case .rs256, .rs384, .rs512: nil
        case .es256: "P-256"
        case .es384: "P-384"
        }
    }
}
