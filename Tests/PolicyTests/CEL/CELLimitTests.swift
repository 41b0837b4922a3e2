import Testing

@testable import Policy

/// Every limit of the CEL implementation, on both sides: just under it works, just over it fails
/// with the error its documentation names.
@Suite("CEL limits, on both sides")
struct CELLimitTests {
    typealias Outcome = (value: CELValue, cost: UInt64)

    /// Compiles `source` without the checker; evaluates it with `costLimit`.
    static func run(_ source: String, costLimit: UInt64 = CELCost.defaultLimit) throws(CELError) -> Outcome {
        try CELEnvironment(variables: [:], enableChecker: false).compile(source).evaluateWithCost(
            CELActivation(), costLimit: costLimit)
    }

    static func error(_ source: String, costLimit: UInt64 = CELCost.defaultLimit) -> CELError? {
        do {
            _ = try run(source, costLimit: costLimit)
            return nil
        } catch {
            return error
        }
    }

    @Test("an evaluation may spend exactly its cost limit, and not one unit more")
    func costLimit() throws {
        let source = "[1, 2, 3].map(x, x * 2).size()"
        let cost = try Self.run(source).cost
        #expect(cost > 0)
        #expect(try Self.run(source, costLimit: cost).value == .int(3))
        let error = Self.error(source, costLimit: cost - 1)
        #expect(error?.kind == .costLimitExceeded)
        #expect(error?.message == CELCost.limitExceededMessage)
    }

    @Test("an expression of exactly the maximum length compiles; one scalar more does not")
    func expressionLength() throws {
        let atLimit = String(repeating: " ", count: CELLimits.maxExpressionLength - 1) + "1"
        #expect(try Self.run(atLimit).value == .int(1))
        #expect(Self.error(" " + atLimit)?.kind == .expressionTooLong)
    }

    @Test("a counted repetition of exactly the maximum compiles; one more does not")
    func regexRepeat() throws {
        #expect(try CELRegex("a{\(CELLimits.maxRegexRepeat)}").matches(String(repeating: "a", count: 1000)))
        #expect(throws: CELError.self) { try CELRegex("a{\(CELLimits.maxRegexRepeat + 1)}") }
        #expect(Self.error("'a'.matches('a{\(CELLimits.maxRegexRepeat + 1)}')")?.kind == .invalidArgument)
    }

    @Test("a regex program of exactly the maximum size compiles; one instruction more does not")
    func regexProgramSize() throws {
        // Each `a{1000}` is 1000 instructions; the final match instruction is not counted.
        let atLimit = try CELRegex("(?:a{1000}){100}")
        #expect(atLimit.instructionCount == CELLimits.maxRegexProgramSize + 1)
        #expect(throws: CELError.self) { try CELRegex("(?:a{1000}){100}b") }
    }

    @Test("groups nested to the maximum depth compile; one level more does not")
    func regexNesting() throws {
        func nested(_ depth: Int) -> String {
            String(repeating: "(", count: depth) + "a" + String(repeating: ")", count: depth)
        }
        #expect(try CELRegex(nested(CELRegexParser.maxNesting)).matches("a"))
        #expect(throws: CELError.self) { try CELRegex(nested(CELRegexParser.maxNesting + 1)) }
    }

    @Test("a result of exactly the maximum size is built; one element more fails before it is built")
    func resultSize() throws {
        // 4096 strings of 4096 characters: 2^24 bytes.
        let block = "cel.bind(s, '\(String(repeating: "a", count: 4096))', lists.range(%d).map(i, s).join(''))"
        let atLimit = try Self.run(block.replacingOccurrences(of: "%d", with: "4096"), costLimit: .max)
        #expect(atLimit.value == .string(String(repeating: "a", count: CELLimits.maxResultSize)))
        let over = Self.error(block.replacingOccurrences(of: "%d", with: "4097"), costLimit: .max)
        #expect(over?.kind == .costLimitExceeded)
        #expect(over?.message == "join: result larger than \(CELLimits.maxResultSize) bytes or elements")
        // The same bound for replace, which grows its result as it goes.
        func replace(by length: Int) -> String {
            "'\(String(repeating: "a", count: 4096))'.replace('a', '\(String(repeating: "b", count: length))').size()"
        }
        #expect(try Self.run(replace(by: 4096), costLimit: .max).value == .int(1 << 24))
        #expect(
            Self.error(replace(by: 4097), costLimit: .max)?.message
                == "replace: result larger than \(CELLimits.maxResultSize) bytes or elements")
    }

    @Test("format accepts the maximum precision and rejects one digit more")
    func formatPrecision() throws {
        let atLimit = try Self.run("'%.\(CELLimits.maxFormatPrecision)f'.format([0.5])").value
        #expect(atLimit == .string("0." + "5" + String(repeating: "0", count: CELLimits.maxFormatPrecision - 1)))
        let over = Self.error("'%.\(CELLimits.maxFormatPrecision + 1)f'.format([0.5])")
        #expect(over?.kind == .invalidArgument)
        #expect(over?.message == "error during formatting: precision 1075 is larger than 1074")
    }

    @Test("a constant costing up to the folding limit is folded at compile time; a costlier one is not")
    func foldingLimit() throws {
        // lists.range(n) costs 1 for the call and n / 10 for its result.
        let folded = try Self.run("lists.range(99990).size()")
        #expect(CELCost.foldingLimit == 1 + 99_990 / 10)
        #expect(folded.value == .int(99_990))
        #expect(folded.cost == 0)
        let left = try Self.run("lists.range(100000).size()")
        #expect(left.value == .int(100_000))
        #expect(left.cost > CELCost.foldingLimit)
        // Left for run time, it stops at the caller's budget instead of at compile time.
        #expect(Self.error("lists.range(100000).size()", costLimit: CELCost.foldingLimit)?.kind == .costLimitExceeded)
    }
}
