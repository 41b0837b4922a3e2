import Foundation
import Testing

@testable import KubeProxy

@Suite("Static token file")
struct StaticTokenAuthenticatorTests {
    @Test("a token file maps each token to its user, uid and quoted group list")
    func mapsTokens() async throws {
        let text = """
            \u{FEFF}# development users
            alice-token,alice,uid-1,"developers,sre"\r
              bob-token , bob , uid-2

            carol-token,carol,uid-3,viewers
            """
        let authenticator = try StaticTokenAuthenticator(csv: text)
        #expect(authenticator.count == 3)
        let alice = await authenticator.authenticate(Credentials(bearerToken: "alice-token"))
        guard case .authenticated(let identity) = alice else {
            Issue.record("alice was not authenticated: \(alice)")
            return
        }
        #expect(identity == Identity(name: "alice", uid: "uid-1", groups: ["developers", "sre"], method: .staticToken))
        let bob = await authenticator.authenticate(Credentials(bearerToken: "bob-token"))
        #expect(bob.identity?.name == "bob")
        #expect(bob.identity?.groups == [])
        let carol = await authenticator.authenticate(Credentials(bearerToken: "carol-token"))
        #expect(carol.identity?.groups == ["viewers"])
    }

    @Test("an unknown token, a prefix of a known token and no token at all are not this authenticator's business")
    func unknownTokens() async throws {
        let authenticator = try StaticTokenAuthenticator(csv: "secret-token,alice,1")
        for token in ["other", "secret-toke", "secret-token2", ""] {
            let result = await authenticator.authenticate(Credentials(bearerToken: token))
            #expect(result.isNotApplicable, "token \(token)")
        }
        #expect(await authenticator.authenticate(Credentials()).isNotApplicable)
    }

    @Test(
        "parse errors carry the line number and never quote the token",
        arguments: [
            ("ok,alice,1\nonly-two,columns", 2, "at least 3 columns"),
            ("ok,alice,1\n\n,bob,2", 3, "token (column 1) is empty"),
            ("dup-token,alice,1\n# comment\ndup-token,bob,2", 3, "repeats the token on line 1"),
            ("tok,alice,1,\"developers", 1, "not closed"),
            ("tok,alice,1,\"a\"b", 1, "after the closing quote"),
            ("tok,al\"ice,1", 1, "quote inside an unquoted field"),
            ("tok,alice,1,g,extra", 1, "at most 4 columns"),
            ("tok,,1", 1, "user name (column 2) is empty"),
            ("to k,alice,1", 1, "contains white space"),
        ])
    func parseErrors(text: String, line: Int, message: String) throws {
        do {
            _ = try StaticTokenFile.parse(text, source: "tokens.csv")
            Issue.record("parsing succeeded")
        } catch {
            #expect(error.line == line)
            #expect(error.message.contains(message), "\(error)")
            #expect(error.description.hasPrefix("tokens.csv:\(line): "))
            #expect(!error.description.contains("dup-token"))
        }
    }

    @Test("a token file is loaded from disk, and a missing file is reported with its path")
    func loadsFromDisk() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("portcullis-tokens-\(UUID()).csv").path
        try "disk-token,dave,uid-4,\"ops\"\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let authenticator = try StaticTokenAuthenticator(contentsOf: path)
        #expect(await authenticator.authenticate(Credentials(bearerToken: "disk-token")).identity?.name == "dave")

        #expect(throws: StaticTokenFile.ParseError.self) {
            try StaticTokenAuthenticator(contentsOf: path + ".missing")
        }
    }

    @Test("constant-time comparison is exact for equal, different and differently sized inputs")
    func constantTimeEquality() {
        #expect(ConstantTime.equals([1, 2, 3], [1, 2, 3]))
        #expect(!ConstantTime.equals([1, 2, 3], [1, 2, 4]))
        #expect(!ConstantTime.equals([1, 2, 3], [1, 2]))
        #expect(!ConstantTime.equals([], [0]))
        #expect(ConstantTime.equals([], []))
        #expect(TokenDigest("a").constantTimeEquals(TokenDigest("a")))
        #expect(!TokenDigest("a").constantTimeEquals(TokenDigest("b")))
    }
}

extension AuthenticationResult {
    var identity: Identity? {
        if case .authenticated(let identity) = self { return identity }
        return nil
    }

    var failure: AuthenticationFailure? {
        if case .rejected(let failure) = self { return failure }
        return nil
    }

    var isNotApplicable: Bool {
        if case .notApplicable = self { return true }
        return false
    }
}
