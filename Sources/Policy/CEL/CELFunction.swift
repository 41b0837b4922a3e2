import Foundation

/// How a function is implemented: it receives the evaluated arguments, the receiver first for
/// receiver-style calls, and dispatches on their run-time types.
enum CELImplementation: Sendable {
    case unary(@Sendable (CELValue) throws(CELError) -> CELValue)
    case binary(@Sendable (CELValue, CELValue) throws(CELError) -> CELValue)
    case ternary(@Sendable (CELValue, CELValue, CELValue) throws(CELError) -> CELValue)
    case variadic(@Sendable ([CELValue]) throws(CELError) -> CELValue)
    /// For functions whose work is not in proportion to their arguments (`flatten` or `format` over
    /// a list that holds the same list many times): they take their work from the meter as they
    /// go, and stop when the evaluation's budget runs out.
    case metered(@Sendable ([CELValue], inout CELMeter) throws(CELError) -> CELValue)
}

extension CELImplementation {
    /// Calls the implementation with an argument array of the right length.
    func call(_ args: [CELValue]) throws(CELError) -> CELValue {
        switch self {
        case .unary(let function): return try function(args[0])
        case .binary(let function): return try function(args[0], args[1])
        case .ternary(let function): return try function(args[0], args[1], args[2])
        case .variadic(let function): return try function(args)
        case .metered(let function):
            var meter = CELMeter(remaining: .max)
            return try function(args, &meter)
        }
    }
}

/// One checker signature of a function: parameter types (receiver first for receiver-style
/// functions) and the result type. Type parameters (`T`, `K`, `V`) unify across one signature.
struct CELSignature: Sendable {
    let parameters: [CELType]
    let result: CELType
}

/// How much a call costs beyond the base cost of 1 (see `CELCost`).
enum CELCallCost: Int, Sendable, Comparable {
    case constant
    /// Proportional to the sizes of the string, bytes and list arguments, as cel-go charges
    /// string and list traversals.
    case traversal
    /// As `traversal`, plus the size of the result, for functions whose result can be far larger
    /// than their arguments (`join`, `replace`, `format`, `lists.range`); they also stop at
    /// `CELLimits.maxResultSize`, so one call cannot outgrow its charge.
    case traversalAndResult
    /// A tenth of the product of two lists' sizes (of one list with itself), for functions that
    /// compare every pair of elements (`distinct`, `sets.*`).
    case pairwise

    /// Merged declarations charge as the costlier of the two.
    static func < (lhs: CELCallCost, rhs: CELCallCost) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// A function declaration: its name, call style, checker signatures and implementation.
struct CELFunctionDecl: Sendable {
    let name: String
    let isMember: Bool
    /// Number of arguments including the receiver; nil for any number (variadic functions).
    let arity: Int?
    let signatures: [CELSignature]
    let cost: CELCallCost
    let implementation: CELImplementation

    /// A global function such as `size(x)` or `math.greatest(a, b)`. Each signature is written
    /// `"T1, T2 -> R"` in the CEL type syntax (`list(T)`, `map(K, V)`, `dyn`).
    static func global(
        _ name: String, _ signatures: [String], cost: CELCallCost = .constant, _ implementation: CELImplementation
    ) -> CELFunctionDecl {
        make(name, isMember: false, signatures, cost, implementation)
    }

    /// A receiver-style function such as `s.contains(t)`; the first signature type is the receiver's.
    static func member(
        _ name: String, _ signatures: [String], cost: CELCallCost = .constant, _ implementation: CELImplementation
    ) -> CELFunctionDecl {
        make(name, isMember: true, signatures, cost, implementation)
    }

    private static func make(
        _ name: String, isMember: Bool, _ signatures: [String], _ cost: CELCallCost,
        _ implementation: CELImplementation
    ) -> CELFunctionDecl {
        let parsed = signatures.map(CELSignatureParser.parse)
        let arity: Int?
        switch implementation {
        case .unary: arity = 1
        case .binary: arity = 2
        case .ternary: arity = 3
        case .variadic, .metered: arity = parsed.first.map(\.parameters.count)
        }
        return CELFunctionDecl(
            name: name, isMember: isMember, arity: arity, signatures: parsed, cost: cost,
            implementation: implementation)
    }

    /// One declaration that dispatches to `self`, or to `other` when `self` has no overload for
    /// the argument types.
    func merged(with other: CELFunctionDecl) -> CELFunctionDecl {
        let first = implementation
        let second = other.implementation
        let combined: @Sendable ([CELValue]) throws(CELError) -> CELValue = { args throws(CELError) in
            do throws(CELError) {
                return try first.call(args)
            } catch {
                guard error.kind == .noSuchOverload else { throw error }
                return try second.call(args)
            }
        }
        let merged: CELImplementation
        switch implementation {
        case .unary: merged = .unary { a throws(CELError) in try combined([a]) }
        case .binary: merged = .binary { a, b throws(CELError) in try combined([a, b]) }
        case .ternary: merged = .ternary { a, b, c throws(CELError) in try combined([a, b, c]) }
        case .variadic, .metered: merged = .variadic(combined)
        }
        return CELFunctionDecl(
            name: name, isMember: isMember, arity: arity, signatures: signatures + other.signatures,
            cost: max(cost, other.cost), implementation: merged)
    }

    /// The same function with any number of arguments (for `math.greatest(a, b, c, …)`).
    var variadic: CELFunctionDecl {
        CELFunctionDecl(
            name: name, isMember: isMember, arity: nil, signatures: signatures, cost: cost,
            implementation: implementation)
    }
}

/// Parses the compact signature notation used in the library tables: `"list(T), T -> int"`.
enum CELSignatureParser {
    static func parse(_ text: String) -> CELSignature {
        let parts = text.components(separatedBy: "->")
        let parameters = parts.count == 2 ? splitTopLevel(parts[0]).map(parseType) : []
        let result = parts.count == 2 ? parseType(parts[1]) : .dyn
        return CELSignature(parameters: parameters, result: result)
    }

    static func splitTopLevel(_ text: String) -> [String] {
        var items: [String] = []
        var depth = 0
        var current = ""
        for character in text {
            switch character {
            case "(":
                depth += 1
                current.append(character)
            case ")":
                depth -= 1
                current.append(character)
            case "," where depth == 0:
                items.append(current)
                current = ""
            default:
                current.append(character)
            }
        }
        if !current.trimmingCharacters(in: .whitespaces).isEmpty { items.append(current) }
        return items
    }

    static func parseType(_ raw: String) -> CELType {
        let text = raw.trimmingCharacters(in: .whitespaces)
        if let open = text.firstIndex(of: "("), text.hasSuffix(")") {
            let head = String(text[..<open])
            let inner = splitTopLevel(String(text[text.index(after: open)..<text.index(before: text.endIndex)]))
                .map(parseType)
            switch (head, inner.count) {
            case ("list", 1): return .list(inner[0])
            case ("map", 2): return .map(key: inner[0], value: inner[1])
            case ("optional", 1): return .optional(inner[0])
            case ("type", 1): return .type(inner[0])
            default: return .dyn
            }
        }
        switch text {
        case "dyn": return .dyn
        case "null": return .null
        case "bool": return .bool
        case "int": return .int
        case "uint": return .uint
        case "double": return .double
        case "string": return .string
        case "bytes": return .bytes
        case "timestamp": return .timestamp
        case "duration": return .duration
        case "type": return .type(.dyn)
        default:
            if text.count == 1, let first = text.first, first.isUppercase { return .typeParameter(text) }
            return .opaque(text)
        }
    }
}

/// The functions of an environment, indexed by name, call style and arity.
struct CELFunctionRegistry: Sendable {
    private var functions: [String: [CELFunctionDecl]] = [:]

    /// Indexes the libraries; declarations with the same name, style and arity (`indexOf` on
    /// strings and on lists) are merged into one that tries each implementation in turn.
    init(_ libraries: [[CELFunctionDecl]]) {
        for library in libraries {
            for decl in library {
                if let position = functions[decl.name]?.firstIndex(where: {
                    $0.isMember == decl.isMember && $0.arity == decl.arity
                }), let existing = functions[decl.name]?[position] {
                    functions[decl.name]?[position] = existing.merged(with: decl)
                } else {
                    functions[decl.name, default: []].append(decl)
                }
            }
        }
    }

    /// The declaration for a call, or nil when none matches the name, style and argument count.
    func lookup(_ name: String, isMember: Bool, argumentCount: Int) -> CELFunctionDecl? {
        guard let candidates = functions[name] else { return nil }
        return candidates.first { $0.isMember == isMember && $0.arity == argumentCount }
            ?? candidates.first { $0.isMember == isMember && $0.arity == nil }
    }

    func hasFunction(named name: String) -> Bool { functions[name] != nil }

    func hasGlobalFunction(named name: String) -> Bool {
        functions[name]?.contains { !$0.isMember } ?? false
    }
}
