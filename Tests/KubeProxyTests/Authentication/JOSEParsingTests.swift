import Crypto
import CryptoExtras
import Foundation
import Testing

@testable import KubeProxy

@Suite("JWT and JWKS parsing")
struct JOSEParsingTests {
    @Test("base64url decoding is strict: no padding, no other alphabet, no impossible lengths, no stray bits")
    func strictBase64URL() {
        #expect(Base64URL.decode("") == [])
        #expect(Base64URL.decode("QQ") == [0x41])
        #expect(Base64URL.decode("QUI") == [0x41, 0x42])
        #expect(Base64URL.decode("-_8") == [0xFB, 0xFF])
        for bad in ["QQ==", "QQ=", "Q", "QUJDR", "+/8", "QU I", "QR", "QUJ", "\u{00E9}"] {
            #expect(Base64URL.decode(bad) == nil, "\(bad)")
        }
        var generator = SystemRandomNumberGenerator()
        for length in 0..<40 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let encoded = Base64URL.encode(bytes)
            #expect(encoded == TestJWT.base64URL(bytes))
            #expect(Base64URL.decode(encoded) == bytes)
        }
    }

    @Test("a JWS splits into header, claims, signing input and signature; other shapes are not JWTs")
    func compactSerialization() throws {
        let token = try TestJWT.make(header: ["alg": "ES256"], claims: ["iss": "x"], signer: .raw([1, 2, 3]))
        guard case .parsed(let jwt) = JSONWebToken.parse(token) else {
            Issue.record("not parsed")
            return
        }
        #expect(jwt.header["alg"] == .string("ES256"))
        #expect(jwt.claims["iss"] == .string("x"))
        #expect(jwt.signature == [1, 2, 3])
        #expect(jwt.signingInput == Array(token.split(separator: ".").prefix(2).joined(separator: ".").utf8))
        for other in ["abc", "a.b", "a.b.c.d", "a.b.c.d.e", ""] {
            guard case .notJWT = JSONWebToken.parse(other) else {
                Issue.record("\(other) parsed as a JWT")
                continue
            }
        }
    }

    @Test("JSON claims keep booleans, numbers and strings apart")
    func jsonTypes() throws {
        let object = try #require(
            JSONValue.object(from: Array(#"{"a":true,"b":1,"c":"1","d":null,"e":[1,"x"],"f":{"g":1.5}}"#.utf8)))
        #expect(object["a"] == .bool(true))
        #expect(object["b"] == .number(1))
        #expect(object["c"] == .string("1"))
        #expect(object["d"] == .null)
        #expect(object["e"] == .array([.number(1), .string("x")]))
        #expect(object["f"] == .object(["g": .number(1.5)]))
        #expect(JSONValue.object(from: Array("[1]".utf8)) == nil)
        #expect(JSONValue.object(from: Array("{\"a\":".utf8)) == nil)
    }

    @Test("a JWKS keeps RSA and EC signing keys and skips symmetric, encryption, weak and unknown keys")
    func keySetFiltering() throws {
        let weak = try _RSA.Signing.PrivateKey(unsafeKeySize: .init(bitCount: 1024))
        let document = TestKeys.jwks([
            TestKeys.jwk(TestKeys.rsa1.publicKey, kid: "rsa"),
            TestKeys.jwk(TestKeys.p256.publicKey, kid: "ec"),
            TestKeys.jwk(TestKeys.p384.publicKey, kid: "ec384"),
            ["kty": "oct", "kid": "hmac", "k": TestJWT.base64URL([1, 2, 3, 4])],
            TestKeys.jwk(TestKeys.rsa2.publicKey, kid: "enc", alg: "RSA-OAEP").merging(["use": "enc"]) { $1 },
            TestKeys.jwk(TestKeys.rsa2.publicKey, kid: "ops", alg: nil).merging(["key_ops": ["encrypt"]]) { $1 },
            TestKeys.jwk(weak.publicKey, kid: "weak"),
            ["kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": "AAAA"],
            TestKeys.jwk(TestKeys.p256.publicKey, kid: "mislabelled", alg: "ES384"),
            [
                "kty": "EC", "crv": "P-256", "kid": "offcurve",
                "x": TestJWT.base64URL([UInt8](repeating: 1, count: 32)),
                "y": TestJWT.base64URL([UInt8](repeating: 2, count: 32)),
            ],
            ["kty": "RSA", "kid": "hs", "alg": "HS256", "n": "AQAB", "e": "AQAB"],
        ])
        let set = try JSONWebKeySet.parse(document)
        #expect(set.keys.map(\.keyID) == ["rsa", "ec", "ec384"])
        #expect(set.skipped.count == 8)
        #expect(throws: JSONWebKeySet.ParseError.self) { try JSONWebKeySet.parse(Array("{}".utf8)) }
        #expect(throws: JSONWebKeySet.ParseError.self) { try JSONWebKeySet.parse(Array("nope".utf8)) }
    }

    @Test("a key verifies only the algorithms of its type, curve and declared alg")
    func keyAlgorithmBinding() throws {
        let set = try JSONWebKeySet.parse(
            TestKeys.jwks([
                TestKeys.jwk(TestKeys.rsa1.publicKey, kid: "rs256", alg: "RS256"),
                TestKeys.jwk(TestKeys.rsa1.publicKey, kid: "any-rsa", alg: nil),
                TestKeys.jwk(TestKeys.p256.publicKey, kid: "ec", alg: nil),
            ]))
        let keys = Dictionary(uniqueKeysWithValues: set.keys.compactMap { key in key.keyID.map { ($0, key) } })
        #expect(keys["rs256"]?.canVerify(.rs256) == true)
        #expect(keys["rs256"]?.canVerify(.rs512) == false)
        #expect(keys["any-rsa"]?.canVerify(.rs384) == true)
        #expect(keys["any-rsa"]?.canVerify(.es256) == false)
        #expect(keys["ec"]?.canVerify(.es256) == true)
        #expect(keys["ec"]?.canVerify(.es384) == false)
        #expect(keys["ec"]?.canVerify(.rs256) == false)
    }

    @Test("the expiring cache forgets expired entries and stays within its capacity")
    func expiringCache() {
        var cache = ExpiringCache<Int>(capacity: 2)
        let start = Date(timeIntervalSince1970: 0)
        cache.insert(1, for: TokenDigest("a"), expires: start.addingTimeInterval(10), now: start)
        cache.insert(2, for: TokenDigest("b"), expires: start.addingTimeInterval(20), now: start)
        #expect(cache.value(for: TokenDigest("a"), now: start.addingTimeInterval(5)) == 1)
        cache.insert(3, for: TokenDigest("c"), expires: start.addingTimeInterval(30), now: start.addingTimeInterval(5))
        #expect(cache.count == 2)
        #expect(cache.value(for: TokenDigest("a"), now: start.addingTimeInterval(5)) == nil)
        #expect(cache.value(for: TokenDigest("b"), now: start.addingTimeInterval(20)) == nil)
        #expect(cache.value(for: TokenDigest("c"), now: start.addingTimeInterval(20)) == 3)
        cache.insert(4, for: TokenDigest("d"), expires: start, now: start.addingTimeInterval(1))
        #expect(cache.value(for: TokenDigest("d"), now: start) == nil)
    }
}
