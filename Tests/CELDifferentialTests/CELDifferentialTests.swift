import Foundation
import Policy
import TestSupport
import Testing

/// Compares the Swift CEL implementation with cel-rust (PyPI `common-expression-language`
/// 0.10.0) on thousands of generated expressions.
///
/// Known semantic differences of the oracle, which are counted separately and not as failures:
/// - `macroErrorAbsorption`: cel-rust lets an error inside `all`/`exists` escape even when
///   another element decides the result; the CEL spec absorbs it like `&&`/`||` do.
///   Example: `[0, 1].exists(x, 1 / x == 1)` is `true` in CEL, a division error in cel-rust.
/// - `negateMinimumInt`: cel-rust negates `-9223372036854775808` without an overflow error.
///   Example: `-i` with `i = -9223372036854775808` is an overflow error in CEL.
@Suite("CEL differential testing against cel-rust")
struct CELDifferentialTests {
    static let seed: UInt64 = 0x5EED_CE1
    static let caseCount = 5000

    enum KnownDifference: String {
        case macroErrorAbsorption, negateMinimumInt
    }

    enum Verdict {
        case agree
        case known(KnownDifference)
        case disagree(String)
    }

    @Test("generated expressions evaluate as cel-rust evaluates them")
    func differential() async throws {
        let (count, values, disagreements) = try await runOnOwnThread { try Self.run() }
        #expect(values > count / 2, "too few cases evaluate to a value to be meaningful")
        #expect(disagreements == 0, "\(disagreements) disagreements with cel-rust")
    }

    /// Generates and compares the cases and prints the counts; returns how many there were, how
    /// many agreed on a value (not an error), and how many disagreed.
    static func run() throws -> (count: Int, values: Int, disagreements: Int) {
        var generator = ExpressionGenerator(seed: Self.seed)
        let cases = (0..<Self.caseCount).map { generator.makeCase(id: $0) }
        let oracle = try OracleProcess.evaluate(cases)
        var agreements = 0
        var bothErrors = 0
        var known: [KnownDifference: Int] = [:]
        var disagreements: [String] = []
        for item in cases {
            let ours = Self.evaluate(item)
            switch Self.compare(item, ours, oracle[item.id] ?? [:]) {
            case .agree:
                agreements += 1
                if case .failure = ours { bothErrors += 1 }
            case .known(let difference): known[difference, default: 0] += 1
            case .disagree(let detail): disagreements.append(detail)
            }
        }
        for detail in disagreements.prefix(40) { print("DISAGREE \(detail)") }
        let knownSummary = known.map { "\($0.key.rawValue): \($0.value)" }.sorted().joined(separator: ", ")
        print(
            "CEL differential: \(cases.count) cases, \(agreements) agreements (\(agreements - bothErrors) equal values, \(bothErrors) errors on both sides), \(disagreements.count) disagreements, known differences: [\(knownSummary)]"
        )
        return (cases.count, agreements - bothErrors, disagreements.count)
    }

    static func evaluate(_ item: DifferentialCase) -> Result<CELValue, CELError> {
        let variables = Dictionary(uniqueKeysWithValues: item.bindings.keys.map { ($0, CELType.dyn) })
        do {
            let program = try CELEnvironment(variables: variables, enableChecker: false).compile(item.expression)
            var bindings: [String: CELValue] = [:]
            for (name, value) in item.bindings { bindings[name] = try CELValue(jsonObject: value) }
            return .success(try program.evaluate(CELActivation(bindings)))
        } catch {
            return .failure(error)
        }
    }

    static func compare(
        _ item: DifferentialCase, _ ours: Result<CELValue, CELError>, _ theirs: [String: Any]
    )
        -> Verdict
    {
        let theirsOK = theirs["ok"] as? Bool ?? false
        let description = "\(item.expression) with \(item.bindings): ours \(ours), cel-rust \(theirs)"
        switch ours {
        case .failure(let error):
            if !theirsOK { return .agree }
            if error.kind == .overflow, item.expression.contains("-("),
                let value = theirs["value"] as? Int, value == Int.min
            {
                return .known(.negateMinimumInt)
            }
            return .disagree(description)
        case .success(let value):
            guard theirsOK else {
                // Only an erroring macro body can make cel-rust fail where CEL succeeds.
                if item.expression.contains(".all(") || item.expression.contains(".exists(") {
                    return .known(.macroErrorAbsorption)
                }
                return .disagree(description)
            }
            return matches(value, theirs["value"] as Any, type: theirs["type"] as? String)
                ? .agree : .disagree(description)
        }
    }

    /// Value equality with numeric care: cel-rust reports uint as int, JSON may print 2.0 as 2.
    static func matches(_ value: CELValue, _ json: Any, type: String?) -> Bool {
        switch value {
        case .null: return json is NSNull
        case .bool(let flag):
            return (json as? NSNumber).map { type == nil || type == "bool" ? $0.boolValue == flag : false } ?? false
        case .int(let number): return type.map { $0 == "int" } ?? true && (json as? NSNumber)?.int64Value == number
        case .uint(let number): return (json as? NSNumber)?.uint64Value == number
        case .double(let number):
            if let text = json as? String {
                return text == (number.isNaN ? "NaN" : (number > 0 ? "Infinity" : "-Infinity"))
            }
            return (type.map { $0 == "double" } ?? true) && (json as? NSNumber)?.doubleValue == number
        case .string(let text): return (json as? String) == text && (type == nil || type == "string")
        case .list(let elements):
            guard let array = json as? [Any], array.count == elements.count else { return false }
            return zip(elements, array).allSatisfy { matches($0, $1, type: nil) }
        case .map(let map):
            guard let dictionary = json as? [String: Any], dictionary.count == map.count else { return false }
            for (key, entry) in map {
                let name: String
                switch key {
                case .string(let text): name = text
                case .int(let number): name = String(number)
                case .uint(let number): name = String(number)
                case .bool(let flag): name = flag ? "True" : "False"
                default: return false
                }
                guard let other = dictionary[name], matches(entry, other, type: nil) else { return false }
            }
            return true
        default:
            return false
        }
    }
}
