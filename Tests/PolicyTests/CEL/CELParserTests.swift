import Testing

@testable import Policy

@Suite("CEL parser")
struct CELParserTests {
    @Test("operators follow CEL precedence")
    func precedence() throws {
        #expect(try evaluate("1 + 2 * 3") == .int(7))
        #expect(try evaluate("(1 + 2) * 3") == .int(9))
        #expect(try evaluate("10 - 4 - 3") == .int(3))
        #expect(try evaluate("100 / 10 / 5") == .int(2))
        #expect(try evaluate("1 + 2 == 3 && 2 < 3") == .bool(true))
        #expect(try evaluate("true || false && false") == .bool(true))
        #expect(try evaluate("false ? 1 : true ? 2 : 3") == .int(2))
        #expect(try evaluate("!true == false") == .bool(true))
        #expect(try evaluate("-2 * -3") == .int(6))
        #expect(try evaluate("1 in [1] == true") == .bool(true))
    }

    @Test("literals of every kind parse")
    func literals() throws {
        #expect(try evaluate("0x1F") == .int(31))
        #expect(try evaluate("7u") == .uint(7))
        #expect(try evaluate("0xFFu") == .uint(255))
        #expect(try evaluate("1.5e3") == .double(1500))
        #expect(try evaluate(".5") == .double(0.5))
        #expect(try evaluate("-9223372036854775808") == .int(.min))
        #expect(try evaluate("null") == .null)
        #expect(try evaluate("b'\\xff\\000'") == .bytes([0xFF, 0]))
        #expect(try evaluate("[1, 2,]") == .list([1, 2]))
        #expect(try evaluate("{'a': 1,}") == ["a": 1])
    }

    @Test("string escapes, raw and triple-quoted strings")
    func strings() throws {
        #expect(try evaluate(#"'a\tb\n\\\"\'\x41\101\u00e9\U0001F600'"#) == .string("a\tb\n\\\"'AAé😀"))
        #expect(try evaluate(#"r'\n\d'"#) == .string(#"\n\d"#))
        #expect(try evaluate("'''a\nb''' == 'a\\nb'") == .bool(true))
        #expect(try evaluate(#""""a"b""""#) == .string("a\"b"))
        #expect(try evaluate(#"b'\xc3\xa9' == bytes('é')"#) == .bool(true))
        #expect(errorKind(#"'\q'"#) == .syntax)
        #expect(errorKind("'unterminated") == .syntax)
        #expect(errorKind("'new\nline'") == .syntax)
    }

    @Test("comments and backtick-quoted field names")
    func commentsAndQuotedFields() throws {
        #expect(try evaluate("1 + // one\n 2") == .int(3))
        #expect(try evaluate("m.`a-b`", ["m": ["a-b": 5]]) == .int(5))
        #expect(try evaluate("{'if': 1}.if") == .int(1))
    }

    @Test("syntax errors report line, column and offset")
    func errorPositions() {
        do {
            _ = try CELEnvironment(variables: [:]).compile("1 +\n  * 2")
            Issue.record("expected a syntax error")
        } catch {
            #expect(error.kind == .syntax)
            #expect(error.location == CELSourceLocation(line: 2, column: 3, offset: 6))
            #expect(error.message.hasPrefix("Syntax error: mismatched input '*'"))
            #expect(error.description.hasPrefix("ERROR: <input>:2:3: Syntax error"))
        }
    }

    @Test("reserved words cannot be identifiers")
    func reservedWords() {
        #expect(errorKind("if") == .syntax)
        #expect(errorKind("var + 1") == .syntax)
    }

    @Test("nesting deeper than the limit is rejected, up to the limit is accepted")
    func nestingLimit() throws {
        let depth = CELLimits.maxNestingDepth - 2
        let ok = String(repeating: "(", count: depth) + "1" + String(repeating: ")", count: depth)
        #expect(try evaluate(ok) == .int(1))
        let tooDeep =
            String(repeating: "[", count: CELLimits.maxNestingDepth + 1)
            + String(repeating: "]", count: CELLimits.maxNestingDepth + 1)
        #expect(errorKind(tooDeep) == .recursionLimitExceeded)
        let longChain = Array(repeating: "1", count: CELLimits.maxNestingDepth + 5).joined(separator: " + ")
        #expect(errorKind(longChain) == .recursionLimitExceeded)
    }

    @Test("long && chains are balanced and do not count as nesting")
    func balancedLogicalChains() throws {
        let chain = Array(repeating: "true", count: 1000).joined(separator: " && ")
        #expect(try evaluate(chain) == .bool(true))
    }

    @Test("expressions longer than the limit are rejected")
    func lengthLimit() {
        let source = String(repeating: " ", count: CELLimits.maxExpressionLength) + "1"
        #expect(errorKind(source) == .expressionTooLong)
    }

    @Test("macros expand, and bad macro arguments are syntax errors")
    func macros() throws {
        #expect(try evaluate("[1, 2, 3].map(x, x > 1, x * 10)") == .list([20, 30]))
        #expect(try evaluate("cel.bind(x, 2, x * x)") == .int(4))
        #expect(errorKind("has(a)", ["a": 1]) == .syntax)
        #expect(errorKind("[1].all(1, true)") == .syntax)
    }

    @Test("message construction parses but is unsupported")
    func messages() {
        #expect(errorKind("Foo{a: 1}") == .unsupported)
    }
}
