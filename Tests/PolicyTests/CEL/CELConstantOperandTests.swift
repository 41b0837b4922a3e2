import Testing

@testable import Policy

/// Calls and `in` with a constant operand are planned without evaluating it per call; they must
/// give the value, cost and errors of the same operand read from a variable.
@Suite("CEL constant operands")
struct CELConstantOperandTests {
    static let request: CELValue = [
        "namespace": "prod-eu", "name": "héllo", "count": 3, "prefix": "prod", "suffix": "llo", "empty": "",
        "long": "prod-eu-west", "systemNamespaces": ["kube-system", "prod-eu"], "numbers": [1, 2, 3],
    ]

    /// Value (or error) and cost of `source` with `request` bound, with and without the checker;
    /// `readCost` is taken off the cost, for an operand read from `request` (`request.f` costs 2).
    static func outcomes(_ source: String, readCost: UInt64 = 0) -> [String] {
        [false, true].map { checker in
            do throws(CELError) {
                let environment = CELEnvironment(variables: ["request": .dyn], enableChecker: checker)
                let (value, cost) = try environment.compile(source).evaluateWithCost(
                    CELActivation(["request": request]))
                return "\(value) cost \(cost - readCost)"
            } catch {
                return "error \(error.kind) \(error.message)"
            }
        }
    }

    @Test(
        "a constant argument gives the value, cost and error of the same argument read from a variable",
        arguments: [
            ("request.namespace.startsWith('prod')", "request.namespace.startsWith(request.prefix)"),
            ("request.namespace.startsWith('prod-eu-west')", "request.namespace.startsWith(request.long)"),
            ("request.namespace.startsWith('')", "request.namespace.startsWith(request.empty)"),
            ("request.name.endsWith('llo')", "request.name.endsWith(request.suffix)"),
            ("request.name.endsWith('prod-eu-west')", "request.name.endsWith(request.long)"),
            ("request.name.endsWith('')", "request.name.endsWith(request.empty)"),
            ("request.count.startsWith('prod')", "request.count.startsWith(request.prefix)"),
            ("request.namespace in ['kube-system', 'prod-eu']", "request.namespace in request.systemNamespaces"),
            ("request.name in ['kube-system', 'prod-eu']", "request.name in request.systemNamespaces"),
            ("request.count in ['kube-system', 'prod-eu']", "request.count in request.systemNamespaces"),
            ("request.count in [1, 2, 3]", "request.count in request.numbers"),
        ])
    func sameOutcome(constant: String, variable: String) {
        #expect(Self.outcomes(constant) == Self.outcomes(variable, readCost: 2))
    }

    @Test("prefixes and suffixes compare code units")
    func prefixesAndSuffixes() {
        #expect(CELText.hasPrefix("héllo", "hé"))
        #expect(!CELText.hasPrefix("he\u{301}llo", "hé"))
        #expect(CELText.hasSuffix("héllo", "éllo"))
        #expect(!CELText.hasSuffix("llo", "éllo"))
        #expect(CELText.hasSuffix("", ""))
        #expect(!CELText.hasPrefix("", "a"))
    }
}
