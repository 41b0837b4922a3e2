import Testing

@testable import Policy

@Suite("CEL regular expressions (RE2 syntax)")
struct CELRegexTests {
    func match(_ pattern: String, _ text: String) throws(CELError) -> Bool { try CELRegex(pattern).matches(text) }

    @Test("searches are unanchored unless anchored explicitly")
    func anchoring() throws {
        #expect(try match("b", "abc"))
        #expect(try !match("^b", "abc"))
        #expect(try match("c$", "abc"))
        #expect(try !match("a$", "a\n"))
        #expect(try match("(?m)^b$", "a\nb\nc"))
        #expect(try match("\\Aab\\z", "ab"))
    }

    @Test("classes, repetition, alternation and flags")
    func syntax() throws {
        #expect(try match("^[a-c]+\\d{2,3}$", "abc12"))
        #expect(try !match("^[a-c]+\\d{2,3}$", "abc1"))
        #expect(try match("^(?:foo|bar)baz$", "barbaz"))
        #expect(try match("(?i)HELLO", "say hello"))
        #expect(try match("^[[:alpha:]]+$", "abcXYZ"))
        #expect(try match("^\\pL+$", "héllo"))
        #expect(try match("^\\p{Lu}", "Éa"))
        #expect(try match("\\bword\\b", "a word here"))
        #expect(try !match("\\bword\\b", "swordfish"))
        #expect(try match("a.c", "abc"))
        #expect(try !match("a.c", "a\nc"))
        #expect(try match("(?s)a.c", "a\nc"))
        #expect(try match("^\\Q.*\\E$", ".*"))
        #expect(try match("^(?P<name>x)+$", "xxx"))
        #expect(try match("^\\x{1F600}$", "😀"))
    }

    func requiredLiteral(_ pattern: String) throws -> String {
        var parser = CELRegexParser(pattern)
        return String(decoding: CELRegexRequiredLiteral(try parser.parse()).bytes, as: UTF8.self)
    }

    @Test("the literal every match contains: runs of case-sensitive literals, never through optional parts")
    func requiredLiterals() throws {
        #expect(try requiredLiteral("^\\s*rm\\s+-[a-z]*f") == "rm")
        #expect(try requiredLiteral("\\b(apt-get|apk|yum|pip)\\s+install\\b") == "install")
        #expect(try requiredLiteral("abc") == "abc")
        #expect(try requiredLiteral("(?m)^ab$") == "ab")
        #expect(try requiredLiteral("ab?c") == "a")
        #expect(try requiredLiteral("x(ab){2}y") == "xababy")
        #expect(try requiredLiteral("x(ab)+y") == "xab")
        #expect(try requiredLiteral("é+x") == "éx")
        #expect(try requiredLiteral("(?i)hello") == "")
        #expect(try requiredLiteral("(?i)h-l") == "-")
        #expect(try requiredLiteral("a|b") == "")
        #expect(try requiredLiteral("a*") == "")
        #expect(try requiredLiteral("[ab]c.d") == "c")
        #expect(try requiredLiteral(String(repeating: "z", count: 40)) == String(repeating: "z", count: 16))
    }

    @Test("a text without the required literal is not searched; one with it is, as before")
    func requiredLiteralFilter() throws {
        let regex = try CELRegex("^\\s*rm\\s+-[a-z]*f")
        var work = CELRegex.Work.unlimited
        #expect(!regex.matches("ls -la /var/log", work: &work))
        #expect(work.steps == 0)
        #expect(regex.matches("  rm -rf /tmp", work: &work))
        #expect(work.steps > 0)
        #expect(!regex.matches("xrm -f", work: &work))
        #expect(!regex.matches("rm -r", work: &work))
        #expect(try CELRegex("é+x").matches("aééx"))
        #expect(try !CELRegex("é+x").matches("aéé x"))
        #expect(try CELRegex("b+").firstMatch(in: "aaa") == nil)
        #expect(try CELRegex("b+").allMatches(in: "abba", limit: -1) == ["bb"])
        #expect(try CELRegex("b+").allMatches(in: "aaa", limit: -1) == [])
    }

    @Test("leftmost-first matches, greedy and lazy")
    func leftmostFirst() throws {
        #expect(try CELRegex("a+").firstMatch(in: "baaa") == "aaa")
        #expect(try CELRegex("a+?").firstMatch(in: "baaa") == "a")
        #expect(try CELRegex("a|ab").firstMatch(in: "ab") == "a")
        #expect(try CELRegex("x*").allMatches(in: "axxb", limit: -1) == ["", "xx", ""])
    }

    @Test("constructs RE2 rejects are errors")
    func rejected() {
        for pattern in ["(a)\\1", "(?=a)", "(?!a)", "(?<=a)", "a**", "a{1001}", "[z-a]", "(", "\\Z", "\\p{Greek}"] {
            #expect(throws: CELError.self, "pattern \(pattern)") { try CELRegex(pattern) }
        }
    }

    @Test("matching time is linear: a pathological pattern finishes quickly")
    func linearTime() throws {
        let text = String(repeating: "a", count: 5000)
        let regex = try CELRegex("(a*)*b")
        let clock = ContinuousClock()
        let elapsed = clock.measure {
            #expect(!regex.matches(text))
        }
        #expect(elapsed < .seconds(5))
    }
}
