import Foundation
import Testing

@testable import Policy

/// Inputs found by fuzzing and probing the CEL engine and the policy loader (see
/// scripts/fuzz-policy.sh) that made them hang, blow up memory or run for minutes. Each test embeds
/// the input and checks, without a clock, that it now stops on a limit (the typed error) or that
/// the work done is bounded (counted).
@Suite("Fuzz regressions")
struct FuzzRegressionTests {
    static let activation = CELActivation([
        "request": ["user": ["name": "alice", "groups": ["developers"]], "namespace": "prod", "verb": "create"],
        "exec": ["command": ["sh", "-c", "ls"], "container": "app", "tty": true, "stdin": true, "line": "ls -la"],
    ])

    /// A tenth of the default limit: enough to show each runaway input stopping, quickly even in
    /// debug builds; before the fixes, each one finished under it (or ran for minutes).
    static let costLimit: UInt64 = 100_000

    /// Compiles `source` (a compile error is thrown) and evaluates it (the outcome is returned).
    static func run(
        _ source: String, checked: Bool = true, costLimit: UInt64 = costLimit
    ) throws(CELError) -> Result<CELValue, CELError> {
        let environment =
            checked
            ? CELEnvironment.portcullisPolicy
            : CELEnvironment(variables: CELEnvironment.portcullisVariables, enableChecker: false)
        let program = try environment.compile(source)
        return Result { () throws(CELError) in try program.evaluate(activation, costLimit: costLimit) }
    }

    static func expectCostLimit(_ source: String, checked: Bool = true) throws {
        let result = try run(source, checked: checked)
        guard case .failure(let error) = result else {
            Issue.record("expected the cost limit to stop \(source.prefix(60))…, got \(result)")
            return
        }
        #expect(error.kind == .costLimitExceeded)
    }

    // MARK: - YAML

    @Test("lists or mappings as mapping keys are rejected before Yams hashes them")
    func collectionsAsMappingKeys() {
        // Yams hashed each key's full expansion (10^9 nodes) to look for duplicate keys: a hang.
        // The alias budget stops this one first; a small alias as a key shows the key check.
        let bomb = """
            a0: &a0 [x, x, x, x, x, x, x, x, x, x]
            a1: &a1 [*a0, *a0, *a0, *a0, *a0, *a0, *a0, *a0, *a0, *a0]
            a2: &a2 [*a1, *a1, *a1, *a1, *a1, *a1, *a1, *a1, *a1, *a1]
            a3: &a3 [*a2, *a2, *a2, *a2, *a2, *a2, *a2, *a2, *a2, *a2]
            a4: &a4 [*a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3]
            a5: &a5 [*a4, *a4, *a4, *a4, *a4, *a4, *a4, *a4, *a4, *a4]
            a6: &a6 [*a5, *a5, *a5, *a5, *a5, *a5, *a5, *a5, *a5, *a5]
            a7: &a7 [*a6, *a6, *a6, *a6, *a6, *a6, *a6, *a6, *a6, *a6]
            a8: &a8 [*a7, *a7, *a7, *a7, *a7, *a7, *a7, *a7, *a7, *a7]
            ? *a8
            : 1
            ? *a8
            : 2
            """
        for (yaml, message, line) in [
            (bomb, "aliases expand", 5), ("a0: &a0 [x, y]\n? *a0\n: 1\n", "mapping key is a list or mapping", 2),
            ("? [a, b]\n: 1\n", "mapping key is a list or mapping", 1),
        ] {
            #expect {
                try PolicyLoader.parse(yaml, file: "keys.yaml")
            } throws: { error in
                let first = (error as? PolicyLoadErrors)?.errors.first
                return first?.kind == .yamlSyntax && first?.message.contains(message) == true
                    && first?.location.line == line
            }
        }
    }

    @Test("aliases that multiply a document (billion laughs) are rejected")
    func aliasBomb() {
        // Every walk over the expanded tree (a Mutate rule's patch value becomes a CEL value) took
        // 10^9 steps.
        let yaml = """
            apiVersion: portcullis.dev/v1alpha1
            kind: AccessPolicy
            metadata: {name: bomb}
            spec:
              rules:
              - name: r
                action: Mutate
                patch:
                - op: add
                  path: /metadata/annotations/x
                  value:
                    a0: &a0 [x, x, x, x, x, x, x, x, x, x]
                    a1: &a1 [*a0, *a0, *a0, *a0, *a0, *a0, *a0, *a0, *a0, *a0]
                    a2: &a2 [*a1, *a1, *a1, *a1, *a1, *a1, *a1, *a1, *a1, *a1]
                    a3: &a3 [*a2, *a2, *a2, *a2, *a2, *a2, *a2, *a2, *a2, *a2]
                    a4: &a4 [*a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3]
                    a5: &a5 [*a4, *a4, *a4, *a4, *a4, *a4, *a4, *a4, *a4, *a4]
                    a6: &a6 [*a5, *a5, *a5, *a5, *a5, *a5, *a5, *a5, *a5, *a5]
                    a7: &a7 [*a6, *a6, *a6, *a6, *a6, *a6, *a6, *a6, *a6, *a6]
                    a8: &a8 [*a7, *a7, *a7, *a7, *a7, *a7, *a7, *a7, *a7, *a7]
            """
        #expect {
            try PolicyLoader.parse(yaml, file: "bomb.yaml")
        } throws: { error in
            let first = (error as? PolicyLoadErrors)?.errors.first
            return first?.kind == .yamlSyntax && first?.message.contains("aliases expand") == true
        }
    }

    @Test("a few aliases that share a value still load")
    func sharedAliases() throws {
        let yaml = """
            apiVersion: portcullis.dev/v1alpha1
            kind: AccessPolicy
            metadata: {name: shared}
            spec:
              match: {subjects: &team [{group: sre}, {group: dba}], namespaces: [prod]}
              rules:
              - &deny {name: no-drop, action: Deny, expression: "exec.line.contains('DROP')", message: no}
            ---
            apiVersion: portcullis.dev/v1alpha1
            kind: AccessPolicy
            metadata: {name: shared-staging}
            spec:
              match: {subjects: *team, namespaces: [staging]}
              rules: [*deny]
            """
        let policies = try PolicyLoader.parse(yaml, file: "shared.yaml")
        #expect(policies.map(\.match.subjects.count) == [2, 2])
        #expect(policies[1].rules.first?.name == "no-drop")
    }

    @Test("many block-scalar expressions split the file into lines once")
    func blockScalarExpressions() throws {
        // Each `|` expression split the whole file into lines again: quadratic, minutes for 1 MB.
        var yaml = "apiVersion: portcullis.dev/v1alpha1\nkind: AccessPolicy\nmetadata: {name: p}\nspec:\n  rules:\n"
        for index in 0..<20_000 {
            yaml += "  - name: r\(index)\n    action: Allow\n    expression: |\n      true\n"
        }
        let lines = SourceLines()
        let policies = try PolicyLoader.parse(yaml, file: "many.yaml", lines: lines)
        #expect(policies.first?.rules.count == 20_000)
        #expect(policies.first?.rules.last?.expression?.location.line == 80_005)
        #expect(lines.splitCount == 1)
    }

    // MARK: - CEL: results larger than their cost

    @Test("string and list doubling is charged by size, so it stops at the cost limit")
    func doubling() throws {
        // Cost 95 for a 6 GiB string (80 s), and the list version ran out of memory.
        try Self.expectCostLimit(
            """
            cel.bind(x0, exec.line + exec.line, cel.bind(x1, x0 + x0, cel.bind(x2, x1 + x1, cel.bind(x3, x2 + x2,
            cel.bind(x4, x3 + x3, cel.bind(x5, x4 + x4, cel.bind(x6, x5 + x5, cel.bind(x7, x6 + x6, cel.bind(x8, x7 + x7,
            cel.bind(x9, x8 + x8, cel.bind(x10, x9 + x9, cel.bind(x11, x10 + x10, cel.bind(x12, x11 + x11,
            cel.bind(x13, x12 + x12, cel.bind(x14, x13 + x13, cel.bind(x15, x14 + x14, cel.bind(x16, x15 + x15,
            cel.bind(x17, x16 + x16, cel.bind(x18, x17 + x17, cel.bind(x19, x18 + x18, cel.bind(x20, x19 + x19,
            cel.bind(x21, x20 + x20, cel.bind(x22, x21 + x21, cel.bind(x23, x22 + x22, cel.bind(x24, x23 + x23,
            cel.bind(x25, x24 + x24, cel.bind(x26, x25 + x25, cel.bind(x27, x26 + x26, cel.bind(x28, x27 + x27,
            cel.bind(x29, x28 + x28, size(x29) > 0))))))))))))))))))))))))))))))
            """)
        try Self.expectCostLimit(
            """
            cel.bind(x0, [exec.line] + [exec.line], cel.bind(x1, x0 + x0, cel.bind(x2, x1 + x1, cel.bind(x3, x2 + x2,
            cel.bind(x4, x3 + x3, cel.bind(x5, x4 + x4, cel.bind(x6, x5 + x5, cel.bind(x7, x6 + x6, cel.bind(x8, x7 + x7,
            cel.bind(x9, x8 + x8, cel.bind(x10, x9 + x9, cel.bind(x11, x10 + x10, cel.bind(x12, x11 + x11,
            cel.bind(x13, x12 + x12, cel.bind(x14, x13 + x13, cel.bind(x15, x14 + x14, cel.bind(x16, x15 + x15,
            cel.bind(x17, x16 + x16, cel.bind(x18, x17 + x17, cel.bind(x19, x18 + x18, cel.bind(x20, x19 + x19,
            cel.bind(x21, x20 + x20, cel.bind(x22, x21 + x21, cel.bind(x23, x22 + x22, cel.bind(x24, x23 + x23,
            cel.bind(x25, x24 + x24, cel.bind(x26, x25 + x25, cel.bind(x27, x26 + x26, cel.bind(x28, x27 + x27,
            cel.bind(x29, x28 + x28, size(x29) > 0))))))))))))))))))))))))))))))
            """)
    }

    @Test("join, flatten and format are charged for results that repeat one value many times")
    func multiplyingFunctions() throws {
        // Each built or walked a billion elements from inputs that cost a few thousand.
        try Self.expectCostLimit(
            """
            cel.bind(s, exec.line + exec.line, cel.bind(t, lists.range(20).map(i, s).join(''),
            cel.bind(u, lists.range(1000).map(i, t).join(''), lists.range(1000).map(i, u).join('')))).size() > 0
            """)
        try Self.expectCostLimit(
            """
            cel.bind(a, lists.range(1000).map(i, []), cel.bind(b, lists.range(1000).map(i, a),
            cel.bind(c, lists.range(1000).map(i, b), c.flatten(3).size() == 0)))
            """, checked: false)
        try Self.expectCostLimit(
            """
            cel.bind(a, lists.range(1000).map(i, []), cel.bind(b, lists.range(1000).map(i, a),
            cel.bind(c, lists.range(1000).map(i, b), '%s'.format([c]).size() > 0)))
            """, checked: false)
        #expect(try Self.run("[[1], [2, [3]]].flatten(2) == [1, 2, 3] && ['a', 'b'].join('-') == 'a-b'").value == true)
    }

    @Test("format rejects a precision no double needs instead of allocating gigabytes")
    func formatPrecision() throws {
        #expect(try Self.run("'%.1000000000f'.format([1.0]) != ''").error?.kind == .invalidArgument)
        #expect(try Self.run("'%.3f'.format([1.0])").value == .string("1.000"))
    }

    @Test("a constant expression too costly to fold is left for run time")
    func constantFolding() throws {
        // Folding ran without a budget at compile time: ten chained replaces built 10^9 characters.
        try Self.expectCostLimit(
            """
            'a'.replace('a', 'aaaaaaaaaa').replace('a', 'aaaaaaaaaa').replace('a', 'aaaaaaaaaa')
            .replace('a', 'aaaaaaaaaa').replace('a', 'aaaaaaaaaa').replace('a', 'aaaaaaaaaa')
            .replace('a', 'aaaaaaaaaa').replace('a', 'aaaaaaaaaa').replace('a', 'aaaaaaaaaa').size() > 0
            """)
    }

    // MARK: - CEL: work quadratic in the cost

    @Test("substring search gives the same answers for needles long enough to use the linear search")
    func substringSearch() throws {
        // A 200,000-character text and a needle of 21,000 'a's and a 'b': 4 s per call in release.
        let text = """
            cel.bind(a, exec.command[0].replace('sh',
            'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'),
            cel.bind(b, a+a+a+a+a+a+a+a+a+a, cel.bind(c, b+b+b+b+b+b+b+b+b+b, cel.bind(d, c+c+c+c+c+c+c+c+c+c,
            cel.bind(e, d+d, %@)))))
            """
        for (call, expected) in [
            ("e.contains(c + c + b + 'b')", CELValue.bool(false)), ("e.indexOf(c + c + b + 'b')", .int(-1)),
            ("e.lastIndexOf('b' + c + c + b)", .int(-1)), ("e.split(c + c + b + 'b').size()", .int(1)),
            ("e.replace(c + c + b + 'b', 'x').size()", .int(200_000)), ("e.indexOf(c + c)", .int(0)),
            ("e.lastIndexOf(c + c)", .int(180_000)),
        ] {
            let result = try Self.run(text.replacingOccurrences(of: "%@", with: call), costLimit: CELCost.defaultLimit)
            #expect(result.value == expected, "\(call)")
        }
    }

    @Test("substring search compares a number of elements linear in the text and the needle")
    func substringSearchWork() {
        // The input of the test above, as counted elements.
        let counter = ComparisonCounter()
        let text = [Counted](repeating: Counted(character: "a", counter: counter), count: 200_000)
        let needle =
            [Counted](repeating: Counted(character: "a", counter: counter), count: 21_000)
            + [Counted(character: "b", counter: counter)]
        // Knuth–Morris–Pratt makes at most three comparisons per element; the direct search made
        // one per needle element at every position (4 * 10^9).
        let limit = 4 * (text.count + needle.count)
        #expect(CELText.find(text, needle, from: 0) == nil)
        #expect(counter.comparisons <= limit, "find: \(counter.comparisons) comparisons")
        counter.comparisons = 0
        #expect(CELText.findLast(text, Array(needle.reversed()), from: text.count) == nil)
        #expect(counter.comparisons <= limit, "findLast: \(counter.comparisons) comparisons")
    }

    @Test("the linear substring search finds what the direct one finds, either side of the switch")
    func substringSearchAgreement() {
        var random = SystemRandomNumberGenerator()
        for length in [CELText.directSearchLimit, CELText.directSearchLimit + 1, CELText.directSearchLimit + 2] {
            for _ in 0..<200 {
                let haystack = (0..<(length * 4)).map { _ in UInt8.random(in: 97...98, using: &random) }
                let needle = (0..<length).map { _ in UInt8.random(in: 97...98, using: &random) }
                let from = Int.random(in: 0...haystack.count, using: &random)
                let first = stride(from: from, through: haystack.count - needle.count, by: 1).first {
                    haystack[$0..<($0 + needle.count)].elementsEqual(needle)
                }
                let last = stride(from: min(from, haystack.count - needle.count), through: 0, by: -1).first {
                    haystack[$0..<($0 + needle.count)].elementsEqual(needle)
                }
                #expect(CELText.find(haystack, needle, from: from) == first)
                #expect(CELText.findLast(haystack, needle, from: from) == last)
            }
        }
    }

    @Test("regex matching is charged by the VM's work, so large programs and findAll stop")
    func regexWork() throws {
        let text = """
            cel.bind(a, exec.command[0].replace('sh',
            'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'),
            cel.bind(b, a+a+a+a+a+a+a+a+a+a, cel.bind(c, b+b+b+b+b+b+b+b+b+b, cel.bind(d, c+c+c+c+c+c+c+c+c+c,
            %@))))
            """
        // Both ran for minutes: a 50,000-instruction program over 100,000 characters (with the 'b'
        // every match needs, so that the VM runs), and findAll rescanning to the end after every
        // one-character match.
        try Self.expectCostLimit(text.replacingOccurrences(of: "%@", with: "(d + 'b').matches('(a{1000}){50}b')"))
        try Self.expectCostLimit(text.replacingOccurrences(of: "%@", with: "d.findAll('a*b|a').size() > 0"))
        // Compiling a pattern per iteration, each failing at the program size limit: 30 s.
        try Self.expectCostLimit("lists.range(5000).all(i, 'a'.matches('(a{1000}){100}' + string(i)))", checked: false)
        #expect(try Self.run("exec.line.matches('^ls\\\\s+-[a-z]*a')").value == .bool(true))
    }

    @Test("pairwise list functions and list membership are charged by the work they do")
    func pairwiseWork() throws {
        // 10^8 comparisons each, charged a few hundred: `in` and `==` on a large list cost 1.
        try Self.expectCostLimit("lists.range(int(exec.command[0].size()) * 5000).distinct().size() > 0")
        try Self.expectCostLimit("cel.bind(l, lists.range(int(exec.command[0].size()) * 5000), sets.contains(l, l))")
        try Self.expectCostLimit("cel.bind(l, lists.range(100000), lists.range(1000).all(i, 99999 in l))")
        try Self.expectCostLimit(
            "cel.bind(l, lists.range(100000), cel.bind(m, lists.range(100000), lists.range(1000).all(i, l == m)))")
        #expect(try Self.run("[1, 2, 2, 3].distinct() == [1, 2, 3] && sets.contains([1, 2, 3], [2])").value == true)
    }
}

extension Result where Failure == CELError {
    fileprivate var error: CELError? {
        if case .failure(let error) = self { return error }
        return nil
    }

    fileprivate var value: Success? { try? get() }
}

/// Counts the comparisons of `Counted` elements, so tests can bound an algorithm's work.
private final class ComparisonCounter {
    var comparisons = 0
}

/// A character whose comparisons are counted.
private struct Counted: Equatable {
    let character: Character
    let counter: ComparisonCounter

    static func == (lhs: Counted, rhs: Counted) -> Bool {
        lhs.counter.comparisons += 1
        return lhs.character == rhs.character
    }
}
