import Crypto
import CryptoExtras
import Foundation

/// A test-only JWT minter: builds compact JWS tokens with any header, claims and signature, so the
/// tests can produce valid tokens as well as every kind of forgery.
enum TestJWT {
    /// How a token is signed.
    enum Signer {
        case rsa(_RSA.Signing.PrivateKey, digest: Int = 256)
        case p256(P256.Signing.PrivateKey)
        case p384(P384.Signing.PrivateKey)
        /// HMAC-SHA256 with the given secret (for the algorithm-confusion forgery).
        case hmacSHA256([UInt8])
        /// No signature at all (`alg: none`).
        case unsigned
        /// A fixed signature.
        case raw([UInt8])

        func sign(_ input: [UInt8]) throws -> [UInt8] {
            switch self {
            case .rsa(let key, let digest):
                let signature: _RSA.Signing.RSASignature
                switch digest {
                case 384: signature = try key.signature(for: SHA384.hash(data: input), padding: .insecurePKCS1v1_5)
                case 512: signature = try key.signature(for: SHA512.hash(data: input), padding: .insecurePKCS1v1_5)
                default: signature = try key.signature(for: SHA256.hash(data: input), padding: .insecurePKCS1v1_5)
                }
                return Array(signature.rawRepresentation)
            case .p256(let key):
                return Array(try key.signature(for: SHA256.hash(data: input)).rawRepresentation)
            case .p384(let key):
                return Array(try key.signature(for: SHA384.hash(data: input)).rawRepresentation)
            case .hmacSHA256(let secret):
                return Array(HMAC<SHA256>.authenticationCode(for: input, using: SymmetricKey(data: secret)))
            case .unsigned:
                return []
            case .raw(let bytes):
                return bytes
            }
        }
    }

    static func base64URL(_ bytes: some Sequence<UInt8>) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func json(_ object: [String: Any]) -> [UInt8] {
        Array((try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data())
    }

    /// `base64url(header).base64url(claims).base64url(signature)`.
    static func make(header: [String: Any], claims: [String: Any], signer: Signer) throws -> String {
        try make(headerJSON: json(header), claimsJSON: json(claims), signer: signer)
    }

    static func make(headerJSON: [UInt8], claimsJSON: [UInt8], signer: Signer) throws -> String {
        let input = base64URL(headerJSON) + "." + base64URL(claimsJSON)
        return input + "." + base64URL(try signer.sign(Array(input.utf8)))
    }
}

/// Keys made once per test process (RSA generation is slow in debug builds).
enum TestKeys {
    static let rsa1: _RSA.Signing.PrivateKey = makeRSA()
    static let rsa2: _RSA.Signing.PrivateKey = makeRSA()
    static let p256 = P256.Signing.PrivateKey()
    static let p384 = P384.Signing.PrivateKey()

    private static func makeRSA() -> _RSA.Signing.PrivateKey {
        do {
            return try _RSA.Signing.PrivateKey(keySize: .bits2048)
        } catch {
            fatalError("cannot generate a test RSA key: \(error)")
        }
    }

    /// The JWK of an RSA public key.
    static func jwk(_ key: _RSA.Signing.PublicKey, kid: String?, alg: String? = "RS256") -> [String: Any] {
        var object: [String: Any] = ["kty": "RSA", "use": "sig"]
        if let primitives = try? key.getKeyPrimitives() {
            object["n"] = TestJWT.base64URL(primitives.modulus)
            object["e"] = TestJWT.base64URL(primitives.publicExponent)
        }
        if let kid { object["kid"] = kid }
        if let alg { object["alg"] = alg }
        return object
    }

    /// The JWK of a P-256 public key.
    static func jwk(_ key: P256.Signing.PublicKey, kid: String?, alg: String? = "ES256") -> [String: Any] {
        let raw = Array(key.rawRepresentation)
        var object: [String: Any] = [
            "kty": "EC", "crv": "P-256", "x": TestJWT.base64URL(raw[0..<32]), "y": TestJWT.base64URL(raw[32..<64]),
        ]
        if let kid { object["kid"] = kid }
        if let alg { object["alg"] = alg }
        return object
    }

    /// The JWK of a P-384 public key.
    static func jwk(_ key: P384.Signing.PublicKey, kid: String?) -> [String: Any] {
        let raw = Array(key.rawRepresentation)
        return [
            "kty": "EC", "crv": "P-384", "x": TestJWT.base64URL(raw[0..<48]), "y": TestJWT.base64URL(raw[48..<96]),
            "kid": kid ?? "", "alg": "ES384",
        ]
    }

    static func jwks(_ keys: [[String: Any]]) -> [UInt8] {
        TestJWT.json(["keys": keys])
    }
}

/// A clock the tests move by hand.
final class TestClock: Sendable {
    private let box: TestLockedBox<Date>

    init(_ start: Date = Date(timeIntervalSince1970: 1_800_000_000)) {
        self.box = TestLockedBox(start)
    }

    var now: Date { box.value }

    func advance(by seconds: TimeInterval) {
        box.update { $0.addTimeInterval(seconds) }
    }

    /// The closure the authenticators take.
    var function: @Sendable () -> Date { { self.now } }
}

/// A small lock-protected box for test state.
final class TestLockedBox<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value

    init(_ value: Value) { self.stored = value }

    var value: Value {
        lock.lock()
        defer { lock.unlock() }
        return stored
    }

    func update<Result>(_ body: (inout Value) -> Result) -> Result {
        lock.lock()
        defer { lock.unlock() }
        return body(&stored)
    }
}
