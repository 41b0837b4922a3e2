/// A JWS in compact serialization (RFC 7515 §7.1), split and decoded but not yet verified.
///
/// Parsing is strict: exactly three segments, each strict base64url without padding, header and
/// payload JSON objects. Nothing here trusts the content; ``OIDCAuthenticator`` checks the
/// algorithm, the signature and the claims.
struct JSONWebToken: Sendable {
    /// The decoded JOSE header.
    var header: [String: JSONValue]
    /// The decoded claims set.
    var claims: [String: JSONValue]
    /// The bytes the signature covers: the ASCII of `header.payload`, exactly as received.
    var signingInput: [UInt8]
    /// The decoded signature (empty for an unsigned `alg: none` token).
    var signature: [UInt8]

    enum ParseResult: Sendable {
        /// Not three dot-separated segments: some other kind of token.
        case notJWT
        /// Three segments, but the payload is not a base64url JSON object, so whose token it is
        /// cannot be told.
        case unreadableClaims(String)
        /// The claims are readable (so `iss` can route it) but the token is not a well-formed JWS.
        case malformed(String, claims: [String: JSONValue])
        case parsed(JSONWebToken)
    }

    /// Whether `token` has the shape of a compact JWS: exactly two dots.
    static func hasJWTShape(_ token: some StringProtocol) -> Bool {
        var dots = 0
        for byte in token.utf8 where byte == UInt8(ascii: ".") { dots += 1 }
        return dots == 2
    }

    static func parse(_ token: String) -> ParseResult {
        guard hasJWTShape(token) else { return .notJWT }
        let segments = token.split(separator: ".", omittingEmptySubsequences: false)
        guard segments.count == 3 else { return .notJWT }
        guard let payloadBytes = Base64URL.decode(segments[1]) else {
            return .unreadableClaims("the payload is not unpadded base64url")
        }
        guard let claims = JSONValue.object(from: payloadBytes) else {
            return .unreadableClaims("the payload is not a JSON object")
        }
        guard let headerBytes = Base64URL.decode(segments[0]) else {
            return .malformed("the header is not unpadded base64url", claims: claims)
        }
        guard let header = JSONValue.object(from: headerBytes) else {
            return .malformed("the header is not a JSON object", claims: claims)
        }
        guard let signature = Base64URL.decode(segments[2]) else {
            return .malformed("the signature is not unpadded base64url", claims: claims)
        }
        let signingInput = Array(token.utf8[..<segments[2].startIndex].dropLast())
        return .parsed(JSONWebToken(header: header, claims: claims, signingInput: signingInput, signature: signature))
    }
}
