/// A lenient type checker (cel-spec `doc/langdef.md`, "Type Checking"): it reports undeclared
/// variables and functions, and type errors it can prove from known types, and deduces the
/// result type. Where a type is unknown (`dyn`) it assumes the expression may be valid, so it
/// never rejects an expression that could evaluate successfully because of missing information.
struct CELChecker {
    let declarations: CELDeclarations
    let sourceMap: CELSourceMap
    private var scopes: [[String: CELType]] = []

    init(declarations: CELDeclarations, sourceMap: CELSourceMap) {
        self.declarations = declarations
        self.sourceMap = sourceMap
    }

    /// Checks `expr` and returns its type.
    mutating func check(_ expr: CELExpr) throws(CELError) -> CELType {
        Self.substitute(try type(of: expr), [:], unboundAsDyn: true)
    }

    private func fail(_ kind: CELError.Kind, _ message: String, _ expr: CELExpr) -> CELError {
        CELError(kind, message, at: sourceMap.location(of: expr.offset))
    }

    private func local(_ name: String) -> CELType? {
        for scope in scopes.reversed() {
            if let type = scope[name] { return type }
        }
        return nil
    }

    private mutating func withLocals(
        _ locals: [String: CELType], _ body: (inout CELChecker) throws(CELError) -> CELType
    )
        throws(CELError) -> CELType
    {
        scopes.append(locals)
        defer { scopes.removeLast() }
        return try body(&self)
    }

    // MARK: - Expressions

    // swift-format-ignore: FunctionLength
    private mutating func type(of expr: CELExpr) throws(CELError) -> CELType {
        switch expr.kind {
        case .literal(let value):
            return value.celType == .type(.dyn) ? .type(.dyn) : value.celType
        case .ident(let name, let rooted):
            if !rooted, let type = local(name) { return type }
            if let type = resolve(name, rooted: rooted) { return type }
            throw fail(
                .undeclaredReference,
                "undeclared reference to '\(name)' (in container '\(declarations.container ?? "")')", expr)
        case .select(let operand, let field, let optional):
            if !optional, let (parts, rooted) = CELPlanner.identifierChain(expr), rooted || local(parts[0]) == nil {
                for length in stride(from: parts.count, through: 2, by: -1) {
                    if var type = resolve(parts[0..<length].joined(separator: "."), rooted: rooted) {
                        for name in parts[length...] { type = try select(type, name, expr) }
                        return type
                    }
                }
            }
            let base = try type(of: operand)
            let selected = try select(base, field, expr)
            if optional {
                if case .optional = selected { return selected }
                return .optional(selected)
            }
            return selected
        case .has(let operand, let field):
            _ = try select(try type(of: operand), field, expr)
            return .bool
        case .index(let operand, let index, let optional):
            let container = try type(of: operand)
            let key = try type(of: index)
            let element = try indexType(container, key, expr)
            if optional {
                if case .optional = element { return element }
                return .optional(element)
            }
            return element
        case .call(let target, let function, let args):
            return try callType(expr, target: target, function: function, args: args)
        case .unary(let op, let operand):
            let operandType = try type(of: operand)
            let signatures = op == .not ? ["bool -> bool"] : ["int -> int", "double -> double", "duration -> duration"]
            return try overload(op == .not ? "!_" : "-_", signatures.map(CELSignatureParser.parse), [operandType], expr)
        case .binary(let op, let lhs, let rhs):
            let left = try type(of: lhs)
            let right = try type(of: rhs)
            return try overload(op.functionName, Self.operatorSignatures[op] ?? [], [left, right], expr)
        case .and(let lhs, let rhs), .or(let lhs, let rhs):
            let name = { if case .and = expr.kind { return "_&&_" } else { return "_||_" } }()
            let left = try type(of: lhs)
            let right = try type(of: rhs)
            return try overload(name, [CELSignatureParser.parse("bool, bool -> bool")], [left, right], expr)
        case .conditional(let condition, let whenTrue, let whenFalse):
            let test = try type(of: condition)
            _ = try overload("_?_:_", [CELSignatureParser.parse("bool -> bool")], [test], expr)
            return Self.join(try type(of: whenTrue), try type(of: whenFalse))
        case .list(let elements, let optionalIndices):
            var element: CELType?
            for (position, item) in elements.enumerated() {
                var itemType = try type(of: item)
                if optionalIndices.contains(position), case .optional(let wrapped) = itemType { itemType = wrapped }
                element = element.map { Self.join($0, itemType) } ?? itemType
            }
            return .list(element ?? .typeParameter("_element"))
        case .map(let entries):
            var key: CELType?
            var value: CELType?
            for entry in entries {
                let keyType = try type(of: entry.key)
                var valueType = try type(of: entry.value)
                if entry.optional, case .optional(let wrapped) = valueType { valueType = wrapped }
                key = key.map { Self.join($0, keyType) } ?? keyType
                value = value.map { Self.join($0, valueType) } ?? valueType
            }
            return .map(key: key ?? .typeParameter("_key"), value: value ?? .typeParameter("_value"))
        case .message(let typeName, _):
            throw fail(.unsupported, "message construction is not supported: \(typeName)", expr)
        case .comprehension(let comprehension):
            return try comprehensionType(comprehension, expr)
        case .bind(let name, let initializer, let body):
            let initial = try type(of: initializer)
            return try withLocals([name: initial]) { checker throws(CELError) in try checker.type(of: body) }
        case .optionalMap(let target, let name, let body, let flat):
            let optional = try type(of: target)
            var wrapped = CELType.dyn
            switch optional {
            case .optional(let inner): wrapped = inner
            case let other where other.isDyn: break
            default:
                throw fail(
                    .typeMismatch,
                    "found no matching overload for '\(flat ? "optFlatMap" : "optMap")' applied to '(\(optional))'",
                    expr)
            }
            let result = try withLocals([name: wrapped]) { checker throws(CELError) in try checker.type(of: body) }
            return flat ? (result.isDyn ? .optional(.dyn) : result) : .optional(result)
        }
    }

    /// The type of a declared variable or type name, trying the container's candidates.
    private func resolve(_ name: String, rooted: Bool) -> CELType? {
        for candidate in declarations.candidateNames(name, rooted: rooted) {
            if let type = declarations.variables[candidate] { return type }
            if let type = CELType.predeclaredTypeNames[candidate] { return .type(type) }
        }
        return nil
    }

    private func select(_ base: CELType, _ field: String, _ expr: CELExpr) throws(CELError) -> CELType {
        switch base {
        case .object(let object):
            if let type = object.fields[field] { return type }
            if object.isOpen { return .dyn }
            throw fail(.typeMismatch, "undefined field '\(field)' in \(object.name)", expr)
        case .map(let key, let value):
            guard key.isDyn || key == .string else {
                throw fail(.typeMismatch, "type '\(base)' does not support field selection", expr)
            }
            return value
        case .optional(let wrapped):
            let inner = try select(wrapped, field, expr)
            if case .optional = inner { return inner }
            return .optional(inner)
        case let other where other.isDyn:
            return .dyn
        default:
            throw fail(.typeMismatch, "type '\(base)' does not support field selection", expr)
        }
    }

    private func indexType(_ container: CELType, _ key: CELType, _ expr: CELExpr) throws(CELError) -> CELType {
        switch container {
        case .list(let element):
            guard key.isDyn || key.isNumeric else {
                throw fail(
                    .typeMismatch, "found no matching overload for '_[_]' applied to '(\(container), \(key))'", expr)
            }
            return element
        case .map(let keyType, let value):
            guard key.isDyn || keyType.isDyn || key == keyType || (key.isNumeric && keyType.isNumeric) else {
                throw fail(
                    .typeMismatch, "found no matching overload for '_[_]' applied to '(\(container), \(key))'", expr)
            }
            return value
        case .object(let object):
            guard key.isDyn || key == .string else {
                throw fail(
                    .typeMismatch, "found no matching overload for '_[_]' applied to '(\(object.name), \(key))'", expr)
            }
            return .dyn
        case .optional(let wrapped):
            let inner = try indexType(wrapped, key, expr)
            if case .optional = inner { return inner }
            return .optional(inner)
        case let other where other.isDyn:
            return .dyn
        default:
            throw fail(.typeMismatch, "found no matching overload for '_[_]' applied to '(\(container), \(key))'", expr)
        }
    }

    private static func join(_ a: CELType, _ b: CELType) -> CELType {
        if a == b { return a }
        // A free type parameter (from `optional.none()` or `[]`) takes the other side's type.
        if case .typeParameter = a { return b }
        if case .typeParameter = b { return a }
        if case .list(let x) = a, case .list(let y) = b { return .list(join(x, y)) }
        if case .map(let k1, let v1) = a, case .map(let k2, let v2) = b {
            return .map(key: join(k1, k2), value: join(v1, v2))
        }
        if case .optional(let x) = a, case .optional(let y) = b { return .optional(join(x, y)) }
        if a == .null { return b }
        if b == .null { return a }
        return .dyn
    }

    private static let operatorSignatures: [CELBinaryOperator: [CELSignature]] = {
        let numeric = ["int, int -> int", "uint, uint -> uint", "double, double -> double"]
        let ordered =
            [
                "string, string -> bool", "bytes, bytes -> bool", "bool, bool -> bool", "timestamp, timestamp -> bool",
                "duration, duration -> bool",
            ]
            + ["int", "uint", "double"].flatMap { a in ["int", "uint", "double"].map { b in "\(a), \(b) -> bool" } }
        let table: [CELBinaryOperator: [String]] = [
            .add: numeric + [
                "string, string -> string", "bytes, bytes -> bytes", "list(T), list(T) -> list(T)",
                "timestamp, duration -> timestamp", "duration, timestamp -> timestamp",
                "duration, duration -> duration",
            ],
            .subtract: numeric + [
                "timestamp, timestamp -> duration", "timestamp, duration -> timestamp",
                "duration, duration -> duration",
            ],
            .multiply: numeric, .divide: numeric, .modulo: ["int, int -> int", "uint, uint -> uint"],
            .less: ordered, .lessOrEqual: ordered, .greater: ordered, .greaterOrEqual: ordered,
            .equal: ["A, B -> bool"], .notEqual: ["A, B -> bool"],
            .in: ["A, list(A) -> bool", "K, map(K, V) -> bool"],
        ]
        return table.mapValues { $0.map(CELSignatureParser.parse) }
    }()

    // MARK: - Calls

    private mutating func callType(
        _ expr: CELExpr, target: CELExpr?, function: String, args: [CELExpr]
    )
        throws(CELError) -> CELType
    {
        let registry = declarations.functions
        var decl: CELFunctionDecl?
        var argumentExprs = args
        if let target, let (parts, rooted) = CELPlanner.identifierChain(target),
            rooted || (local(parts[0]) == nil && declarations.variables[parts[0]] == nil)
        {
            decl = registry.lookup(
                parts.joined(separator: ".") + "." + function, isMember: false, argumentCount: args.count)
        }
        if decl == nil, let target {
            decl = registry.lookup(function, isMember: true, argumentCount: args.count + 1)
            argumentExprs = [target] + args
        } else if decl == nil {
            let name = function.hasPrefix(".") ? String(function.dropFirst()) : function
            decl = registry.lookup(name, isMember: false, argumentCount: args.count)
        }
        guard let decl else {
            if registry.hasFunction(named: function) {
                var types: [CELType] = []
                for arg in (target.map { [$0] } ?? []) + args { types.append(try type(of: arg)) }
                throw fail(
                    .noSuchOverload,
                    "found no matching overload for '\(function)' applied to '(\(types.map(\.description).joined(separator: ", ")))'",
                    expr)
            }
            throw fail(
                .undeclaredReference,
                "undeclared reference to '\(function)' (in container '\(declarations.container ?? "")')", expr)
        }
        var types: [CELType] = []
        for arg in argumentExprs { types.append(try type(of: arg)) }
        if decl.arity == nil {
            // Variadic functions (math.greatest) are checked at run time.
            return .dyn
        }
        return try overload(decl.name, decl.signatures, types, expr)
    }

    /// The result type of the signatures that accept `arguments`; an error when none can.
    private func overload(
        _ name: String, _ signatures: [CELSignature], _ arguments: [CELType], _ expr: CELExpr
    )
        throws(CELError) -> CELType
    {
        guard !signatures.isEmpty else { return .dyn }
        var result: CELType?
        for signature in signatures where signature.parameters.count == arguments.count {
            var bindings: [String: CELType] = [:]
            var accepted = true
            for (parameter, argument) in zip(signature.parameters, arguments)
            where !Self.assignable(parameter, argument, &bindings) {
                accepted = false
                break
            }
            guard accepted else { continue }
            let candidate = Self.substitute(signature.result, bindings)
            result = result.map { $0 == candidate ? $0 : .dyn } ?? candidate
        }
        guard let result else {
            let list = arguments.map(\.description).joined(separator: ", ")
            throw fail(.typeMismatch, "found no matching overload for '\(name)' applied to '(\(list))'", expr)
        }
        return result
    }

    static func assignable(_ parameter: CELType, _ argument: CELType, _ bindings: inout [String: CELType]) -> Bool {
        if case .typeParameter(let name) = parameter, bindings[name] == nil, argument == .dyn {
            bindings[name] = .dyn
            return true
        }
        if argument.isDyn { return true }
        switch (parameter, argument) {
        case (.dyn, _): return true
        case (.typeParameter(let name), _):
            if let bound = bindings[name] {
                if bound.isDyn {
                    bindings[name] = argument
                    return true
                }
                if bound == argument || assignable(bound, argument, &bindings) { return true }
                // Numbers meet across kinds (`1 == 1.0`, `1 in [1.0]`).
                return bound.isNumeric && argument.isNumeric
            }
            bindings[name] = argument
            return true
        case (.list(let p), .list(let a)): return assignable(p, a, &bindings)
        case (.map(let pk, let pv), .map(let ak, let av)):
            return assignable(pk, ak, &bindings) && assignable(pv, av, &bindings)
        case (.map(let pk, let pv), .object):
            return assignable(pk, .string, &bindings) && assignable(pv, .dyn, &bindings)
        case (.optional(let p), .optional(let a)): return assignable(p, a, &bindings)
        case (.type, .type): return true
        default: return parameter == argument
        }
    }

    /// Replaces bound type parameters; unbound ones stay free (or become `dyn` at the end).
    static func substitute(_ type: CELType, _ bindings: [String: CELType], unboundAsDyn: Bool = false) -> CELType {
        switch type {
        case .typeParameter(let name): return bindings[name] ?? (unboundAsDyn ? .dyn : type)
        case .list(let element): return .list(substitute(element, bindings, unboundAsDyn: unboundAsDyn))
        case .map(let key, let value):
            return .map(
                key: substitute(key, bindings, unboundAsDyn: unboundAsDyn),
                value: substitute(value, bindings, unboundAsDyn: unboundAsDyn))
        case .optional(let wrapped): return .optional(substitute(wrapped, bindings, unboundAsDyn: unboundAsDyn))
        case .type(let denoted): return .type(substitute(denoted, bindings, unboundAsDyn: unboundAsDyn))
        default: return type
        }
    }

    // MARK: - Comprehensions

    private mutating func comprehensionType(
        _ comprehension: CELComprehension, _ expr: CELExpr
    ) throws(CELError)
        -> CELType
    {
        let range = try type(of: comprehension.range)
        var first = CELType.dyn
        var second = CELType.dyn
        switch range {
        case .list(let element):
            if comprehension.variable2 != nil || [.transformMap, .transformMapEntry].contains(comprehension.kind) {
                first = .int
                second = element
            } else {
                first = element
            }
        case .map(let key, let value):
            first = key
            second = value
        case .object:
            first = .string
        case let other where other.isDyn:
            break
        default:
            throw fail(.typeMismatch, "expression of type '\(range)' cannot be the range of a comprehension", expr)
        }
        var locals = [comprehension.variable: first]
        if let variable2 = comprehension.variable2 { locals[variable2] = second }
        let kind = comprehension.kind
        return try withLocals(locals) { checker throws(CELError) in
            if let filter = comprehension.filter {
                let filterType = try checker.type(of: filter)
                _ = try checker.overload("filter", [CELSignatureParser.parse("bool -> bool")], [filterType], expr)
            }
            let body = try checker.type(of: comprehension.body)
            switch kind {
            case .all, .exists, .existsOne, .filter:
                _ = try checker.overload("predicate", [CELSignatureParser.parse("bool -> bool")], [body], expr)
                if kind == .filter {
                    if case .list = range { return range }
                    return .list(first)
                }
                return .bool
            case .map, .transformList: return .list(body)
            case .transformMap: return .map(key: first, value: body)
            case .transformMapEntry: return body.isDyn ? .dynMap : body
            case .sortBy: return range.isDyn ? .dynList : range
            }
        }
    }
}
