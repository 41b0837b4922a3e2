import Crypto
import CryptoExtras

/// One public signing key from an issuer's JWKS (RFC 7517), already converted to a key that
/// swift-crypto can verify with.
///
/// Only keys that can verify one of ``JWTSignatureAlgorithm``'s algorithms are kept: RSA keys of at
/// least 2048 bits, EC keys on P-256 or P-384. Symmetric (`oct`) keys, encryption keys
/// (`use: enc`), keys whose `key_ops` exclude `verify` and keys with an algorithm outside that list
/// are skipped, so a JWKS can never supply an HMAC secret.
struct JSONWebKey: Sendable {
    enum PublicKey: Sendable {
        case rsa(_RSA.Signing.PublicKey)
        case p256(P256.Signing.PublicKey)
        case p384(P384.Signing.PublicKey)
    }

    /// `kid`, if the key has one.
    var keyID: String?
    /// The key's own `alg`, if it declares one: then only that algorithm may use it.
    var algorithm: JWTSignatureAlgorithm?
    var publicKey: PublicKey

    /// Whether a token signed with `algorithm` may be verified with this key: the key type and
    /// curve match the algorithm, and the key's own `alg`, if any, is the same algorithm.
    func canVerify(_ algorithm: JWTSignatureAlgorithm) -> Bool {
        if let own = self.algorithm, own != algorithm { return false }
        switch (publicKey, algorithm) {
        case (.rsa, .rs256), (.rsa, .rs384), (.rsa, .rs512): return true
        case (.p256, .es256): return true
        case (.p384, .es384): return true
        default: return false
        }
    }

    /// Verifies a JWS signature over `signingInput` (the ASCII of `header.payload`). False when the
    /// key cannot be used with `algorithm` or the signature has the wrong shape.
    func isValidSignature(_ signature: [UInt8], for signingInput: [UInt8], algorithm: JWTSignatureAlgorithm) -> Bool {
        guard canVerify(algorithm) else { return false }
        switch (publicKey, algorithm) {
        case (.rsa(let key), .rs256):
            return key.isValidSignature(
                _RSA.Signing.RSASignature(rawRepresentation: signature), for: SHA256.hash(data: signingInput),
                padding: .insecurePKCS1v1_5)
        case (.rsa(let key), .rs384):
            return key.isValidSignature(
                _RSA.Signing.RSASignature(rawRepresentation: signature), for: SHA384.hash(data: signingInput),
                padding: .insecurePKCS1v1_5)
        case (.rsa(let key), .rs512):
            return key.isValidSignature(
                _RSA.Signing.RSASignature(rawRepresentation: signature), for: SHA512.hash(data: signingInput),
                padding: .insecurePKCS1v1_5)
        case (.p256(let key), .es256):
            // JWS uses the fixed-size R || S form (RFC 7518 §3.4), 64 bytes for P-256.
            guard signature.count == 64, let parsed = try? P256.Signing.ECDSASignature(rawRepresentation: signature)
            else { return false }
            return key.isValidSignature(parsed, for: SHA256.hash(data: signingInput))
        case (.p384(let key), .es384):
            guard signature.count == 96, let parsed = try? P384.Signing.ECDSASignature(rawRepresentation: signature)
            else { return false }
            return key.isValidSignature(parsed, for: SHA384.hash(data: signingInput))
        default:
            return false
        }
    }
}

/// A parsed JWKS document: the usable keys, and why the others were skipped (for the logs).
struct JSONWebKeySet: Sendable {
    var keys: [JSONWebKey]
    var skipped: [String]

    struct ParseError: Error, Sendable, CustomStringConvertible {
        var description: String
    }

    /// Parses `{"keys": [...]}`. Throws only when the document itself is not a JWKS; single keys
    /// that cannot be used are skipped.
    static func parse(_ bytes: some Sequence<UInt8>) throws(ParseError) -> JSONWebKeySet {
        guard let document = JSONValue.object(from: bytes) else {
            throw ParseError(description: "the JWKS is not a JSON object")
        }
        guard let entries = document["keys"]?.arrayValue else {
            throw ParseError(description: "the JWKS has no \"keys\" array")
        }
        var set = JSONWebKeySet(keys: [], skipped: [])
        for (index, entry) in entries.enumerated() {
            guard let object = entry.objectValue else {
                set.skipped.append("key \(index): not an object")
                continue
            }
            switch key(from: object) {
            case .success(let key): set.keys.append(key)
            case .failure(let reason):
                let name = object["kid"]?.stringValue.map { "key \(index) (kid \($0))" } ?? "key \(index)"
                set.skipped.append("\(name): \(reason.description)")
            }
        }
        return set
    }

    private static func key(from object: [String: JSONValue]) -> Result<JSONWebKey, ParseError> {
        func skip(_ reason: String) -> Result<JSONWebKey, ParseError> { .failure(ParseError(description: reason)) }
        if let use = object["use"], use.stringValue != "sig" { return skip("\"use\" is not \"sig\"") }
        if let operations = object["key_ops"] {
            guard let list = operations.arrayValue, list.contains(.string("verify")) else {
                return skip("\"key_ops\" does not include \"verify\"")
            }
        }
        var algorithm: JWTSignatureAlgorithm?
        if let value = object["alg"] {
            guard let name = value.stringValue, let known = JWTSignatureAlgorithm(rawValue: name) else {
                return skip("unsupported \"alg\"")
            }
            algorithm = known
        }
        let keyID: String?
        switch object["kid"] {
        case nil: keyID = nil
        case .string(let value): keyID = value
        default: return skip("\"kid\" is not a string")
        }
        func field(_ name: String) -> [UInt8]? {
            guard var text = object[name]?.stringValue else { return nil }
            // RFC 7518 forbids padding here; some issuers add it anyway, and the JWKS is trusted.
            while text.hasSuffix("=") { text.removeLast() }
            return Base64URL.decode(text)
        }
        switch object["kty"]?.stringValue {
        case "RSA":
            guard let modulus = field("n"), let exponent = field("e") else {
                return skip("RSA key without valid \"n\" and \"e\"")
            }
            guard let key = try? _RSA.Signing.PublicKey(n: modulus, e: exponent) else {
                return skip("RSA key rejected (fewer than 2048 bits or invalid)")
            }
            if let algorithm, algorithm.keyType != "RSA" { return skip("\"alg\" does not fit an RSA key") }
            return .success(JSONWebKey(keyID: keyID, algorithm: algorithm, publicKey: .rsa(key)))
        case "EC":
            guard let x = field("x"), let y = field("y") else { return skip("EC key without valid \"x\" and \"y\"") }
            let point = [0x04] + x + y
            let publicKey: JSONWebKey.PublicKey
            switch object["crv"]?.stringValue {
            case "P-256":
                guard x.count == 32, y.count == 32, let key = try? P256.Signing.PublicKey(x963Representation: point)
                else { return skip("invalid P-256 point") }
                publicKey = .p256(key)
            case "P-384":
                guard x.count == 48, y.count == 48, let key = try? P384.Signing.PublicKey(x963Representation: point)
                else { return skip("invalid P-384 point") }
                publicKey = .p384(key)
            default:
                return skip("unsupported EC curve")
            }
            let key = JSONWebKey(keyID: keyID, algorithm: algorithm, publicKey: publicKey)
            if let algorithm, !key.canVerify(algorithm) { return skip("\"alg\" does not fit the EC curve") }
            return .success(key)
        case .some(let type):
            return skip("unsupported key type \"\(type)\"")
        case nil:
            return skip("no \"kty\"")
        }
    }
}
