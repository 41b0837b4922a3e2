/// SplitMix64: a small, seedable generator so every run produces the same cases.
struct SeededRandom: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// One generated case: a well-typed expression and JSON-shaped bindings.
struct DifferentialCase {
    let id: Int
    let expression: String
    let bindings: [String: Any]
}

/// Generates random, well-typed CEL expressions over JSON-like bindings: integer arithmetic
/// (including overflow-prone values), comparisons, logic, `in`, ternaries, macros, string
/// functions, `size` and conversions. Strings are ASCII, because the oracle counts `size()` in
/// UTF-8 bytes where CEL counts code points.
struct ExpressionGenerator {
    private var random: SeededRandom
    private static let maxDepth = 4

    init(seed: UInt64) { random = SeededRandom(seed: seed) }

    mutating func makeCase(id: Int) -> DifferentialCase {
        let bindings = makeBindings()
        let expression: String
        switch Int.random(in: 0..<10, using: &random) {
        case 0...3: expression = bool(0)
        case 4...6: expression = int(0)
        case 7...8: expression = string(0)
        default: expression = list(0)
        }
        return DifferentialCase(id: id, expression: expression, bindings: bindings)
    }

    // MARK: - Bindings

    private mutating func pick<T>(_ options: [T]) -> T { options[Int.random(in: 0..<options.count, using: &random)] }

    private mutating func chance(_ percent: Int) -> Bool { Int.random(in: 0..<100, using: &random) < percent }

    private mutating func randomInt() -> Int {
        switch Int.random(in: 0..<10, using: &random) {
        case 0...5: return Int.random(in: -10...10, using: &random)
        case 6...7: return Int.random(in: -100_000...100_000, using: &random)
        case 8:
            return pick([Int.max, Int.min + 1, 4_611_686_018_427_387_904, -4_611_686_018_427_387_904, 3_037_000_500])
        default: return Int.random(in: Int.min / 2...Int.max / 2, using: &random)
        }
    }

    private mutating func randomString() -> String {
        let alphabet = Array("abcxyzAB01 -:")
        let length = Int.random(in: 0...6, using: &random)
        return String((0..<length).map { _ in pick(alphabet) })
    }

    private mutating func makeBindings() -> [String: Any] {
        var labels: [String: Any] = [:]
        for key in ["app", "team", "tier"] where chance(50) { labels[key] = randomString() }
        var containers: [[String: Any]] = []
        for _ in 0..<Int.random(in: 0...3, using: &random) {
            containers.append([
                "name": randomString(), "image": pick(["nginx:latest", "redis:7", "app:1.2", randomString()]),
            ])
        }
        var object: [String: Any] = [
            "name": randomString(), "replicas": Int.random(in: -2...10, using: &random), "labels": labels,
            "containers": containers,
        ]
        if chance(50) { object["paused"] = chance(50) }
        var map: [String: Any] = [:]
        for key in ["a", "b", "c", "d"] where chance(60) { map[key] = randomInt() }
        return [
            "i": randomInt(), "j": randomInt(), "s": randomString(), "t": randomString(), "b": chance(50),
            "l": (0..<Int.random(in: 0...5, using: &random)).map { _ in Int.random(in: -5...5, using: &random) },
            "ls": (0..<Int.random(in: 0...4, using: &random)).map { _ in randomString() },
            "m": map, "o": object,
        ]
    }

    // MARK: - Expressions by type

    private mutating func intLiteral() -> String {
        let value = randomInt()
        return value < 0 ? "(\(value))" : String(value)
    }

    private mutating func stringLiteral() -> String { "'" + randomString() + "'" }

    mutating func int(_ depth: Int) -> String {
        let leaf = depth >= Self.maxDepth
        switch Int.random(in: 0..<(leaf ? 6 : 16), using: &random) {
        case 0: return intLiteral()
        case 1: return "i"
        case 2: return "j"
        case 3: return pick(["size(s)", "s.size()", "size(l)", "size(m)", "size(ls)", "size(o.containers)"])
        case 4: return pick(["o.replicas", "m.a", "m['b']", "l[0]", "l[\(Int.random(in: 0...4, using: &random))]"])
        case 5: return String(Int.random(in: 0...20, using: &random))
        case 6...10:
            let op = pick(["+", "-", "*", "/", "%"])
            return "(\(int(depth + 1)) \(op) \(int(depth + 1)))"
        case 11: return "-(\(int(depth + 1)))"
        case 12: return "(\(bool(depth + 1)) ? \(int(depth + 1)) : \(int(depth + 1)))"
        case 13: return "int(\(pick(["'42'", "'-7'", "'x1'", "s"])))"
        case 14: return "size(\(list(depth + 1)))"
        default: return "size(\(string(depth + 1)))"
        }
    }

    mutating func bool(_ depth: Int) -> String {
        let leaf = depth >= Self.maxDepth
        switch Int.random(in: 0..<(leaf ? 4 : 20), using: &random) {
        case 0: return pick(["true", "false", "b"])
        case 1:
            return pick([
                "has(o.name)", "has(o.paused)", "has(o.labels.app)", "has(m.a)", "'a' in m", "'app' in o.labels",
            ])
        case 2: return "(\(Int.random(in: -3...3, using: &random)) in l)"
        case 3:
            return pick([
                "b == true", "o.containers.all(c, c.image.endsWith(':latest'))", "ls.exists(x, x.startsWith('a'))",
                "l.exists(x, 12 / x > 2)", "l.all(x, 12 / x != 5)",
            ])
        case 4...6:
            let op = pick(["<", "<=", ">", ">=", "==", "!="])
            return "(\(int(depth + 1)) \(op) \(int(depth + 1)))"
        case 7:
            let op = pick(["==", "!=", "<", ">"])
            return "(\(string(depth + 1)) \(op) \(string(depth + 1)))"
        case 8:
            let function = pick(["contains", "startsWith", "endsWith"])
            return "\(string(depth + 1)).\(function)(\(string(depth + 1)))"
        case 9:
            let pattern = pick(["'^a'", "'b$'", "'[a-c]+'", "'a.c'", "'^[a-z]*$'", "'x|y'", "'[0-9]'", "'A'"])
            return "\(string(depth + 1)).matches(\(pattern))"
        case 10: return "!(\(bool(depth + 1)))"
        case 11, 12: return "(\(bool(depth + 1)) && \(bool(depth + 1)))"
        case 13, 14: return "(\(bool(depth + 1)) || \(bool(depth + 1)))"
        case 15:
            let macro = pick(["all", "exists", "exists_one"])
            let op = pick(["<", ">", "==", "!="])
            return "l.\(macro)(x, x \(op) \(int(depth + 1)))"
        case 16: return "(\(int(depth + 1)) in \(list(depth + 1)))"
        case 17: return "(\(string(depth + 1)) in ls)"
        case 18: return "(\(bool(depth + 1)) ? \(bool(depth + 1)) : \(bool(depth + 1)))"
        default: return "(\(list(depth + 1)) == \(list(depth + 1)))"
        }
    }

    mutating func string(_ depth: Int) -> String {
        let leaf = depth >= Self.maxDepth
        switch Int.random(in: 0..<(leaf ? 4 : 9), using: &random) {
        case 0: return stringLiteral()
        case 1: return pick(["s", "t"])
        case 2: return pick(["o.name", "ls[0]", "o.labels.app", "o.containers[0].image"])
        case 3: return stringLiteral()
        case 4, 5: return "(\(string(depth + 1)) + \(string(depth + 1)))"
        case 6: return "string(\(int(depth + 1)))"
        case 7: return "(\(bool(depth + 1)) ? \(string(depth + 1)) : \(string(depth + 1)))"
        default: return "string(\(stringLiteral()))"
        }
    }

    mutating func list(_ depth: Int) -> String {
        let leaf = depth >= Self.maxDepth
        switch Int.random(in: 0..<(leaf ? 2 : 7), using: &random) {
        case 0: return "l"
        case 1: return "[\(Int.random(in: -3...3, using: &random)), \(Int.random(in: -3...3, using: &random))]"
        case 2: return "l.map(x, x * \(int(depth + 1)))"
        case 3: return "l.filter(x, x > \(int(depth + 1)))"
        case 4: return "(\(list(depth + 1)) + \(list(depth + 1)))"
        case 5: return "[\(int(depth + 1)), \(int(depth + 1))]"
        default: return "o.containers.map(c, size(c.name))"
        }
    }
}
