/// A compiled sub-expression: reads and updates the evaluation frame, returns a value or throws.
typealias CELEvaluator = @Sendable (inout CELFrame) throws(CELError) -> CELValue

/// A planned sub-expression, with its value when it is known at compile time.
struct CELPlan {
    let evaluate: CELEvaluator
    let constant: CELValue?

    init(_ evaluate: @escaping CELEvaluator) {
        self.evaluate = evaluate
        constant = nil
    }

    init(constant value: CELValue) {
        evaluate = { _ throws(CELError) in value }
        constant = value
    }
}

/// Turns a parsed (and possibly checked) AST into a tree of closures.
///
/// Names are resolved here once: local variables of comprehensions and `cel.bind` become frame
/// slots, global variables get slots filled from the activation at the start of each evaluation,
/// and functions are bound to their implementations.
struct CELPlanner {
    let declarations: CELDeclarations
    let sourceMap: CELSourceMap
    private(set) var globalSlots: [String: Int] = [:]
    /// The slot of each request path read (see `CELRequestPath`).
    private(set) var pathSlots: [CELRequestPath: Int] = [:]
    /// Globals read anywhere else than through a request path.
    private var globalsReadWhole: Set<String> = []
    private(set) var slotCount = 0

    /// Globals read only through request paths: asked for only when the caller does not answer a path.
    var globalsReadOnlyThroughPaths: Set<String> { Set(globalSlots.keys).subtracting(globalsReadWhole) }
    private var scopes: [[String: Int]] = []

    init(declarations: CELDeclarations, sourceMap: CELSourceMap) {
        self.declarations = declarations
        self.sourceMap = sourceMap
    }

    func location(_ expr: CELExpr) -> CELSourceLocation { sourceMap.location(of: expr.offset) }

    mutating func newSlot() -> Int {
        defer { slotCount += 1 }
        return slotCount
    }

    func isLocal(_ name: String) -> Bool { local(name) != nil }

    private func local(_ name: String) -> Int? {
        for scope in scopes.reversed() {
            if let slot = scope[name] { return slot }
        }
        return nil
    }

    /// Plans `body` with `names` bound to fresh slots; returns the plan and the slots.
    mutating func withLocals(
        _ names: [String], _ body: (inout CELPlanner, [Int]) throws(CELError) -> CELPlan
    )
        throws(CELError) -> CELPlan
    {
        var scope: [String: Int] = [:]
        var slots: [Int] = []
        for name in names {
            let slot = newSlot()
            scope[name] = slot
            slots.append(slot)
        }
        scopes.append(scope)
        defer { scopes.removeLast() }
        return try body(&self, slots)
    }

    // MARK: - Expressions

    mutating func plan(_ expr: CELExpr) throws(CELError) -> CELPlan {
        switch expr.kind {
        case .literal(let value):
            return CELPlan(constant: value)
        case .ident(let name, let rooted):
            return try planIdentifier(name, rooted: rooted, expr)
        case .select(let operand, let field, let optional):
            if !optional, let resolved = try planQualifiedName(expr) { return resolved }
            if !optional { return try planSelectChain(expr) }
            let base = try plan(operand).evaluate
            return CELPlan { frame throws(CELError) in
                try frame.charge(1)
                return try CELAccess.optionalSelect(try base(&frame), field)
            }
        case .has(let operand, let field):
            let base = try plan(operand).evaluate
            return CELPlan { frame throws(CELError) in
                try frame.charge(1)
                return .bool(try CELAccess.has(try base(&frame), field))
            }
        case .index(let operand, let index, let optional):
            let base = try plan(operand).evaluate
            let key = try plan(index).evaluate
            return CELPlan { frame throws(CELError) in
                try frame.charge(1)
                let container = try base(&frame)
                let keyValue = try key(&frame)
                return optional
                    ? try CELAccess.optionalIndex(container, keyValue) : try CELAccess.index(container, keyValue)
            }
        case .call(let target, let function, let args):
            return try planCall(expr, target: target, function: function, args: args)
        case .unary(let op, let operand):
            let inner = try plan(operand)
            let evaluate = inner.evaluate
            let plan =
                op == .not
                ? CELPlan { frame throws(CELError) in
                    try frame.charge(1)
                    return try CELValue.logicalNot(try evaluate(&frame))
                }
                : CELPlan { frame throws(CELError) in
                    try frame.charge(1)
                    return try CELValue.negate(try evaluate(&frame))
                }
            return fold(plan, if: inner.constant != nil)
        case .binary(let op, let lhs, let rhs):
            return try planBinary(op, lhs, rhs)
        case .and(let lhs, let rhs):
            return try planLogical(lhs, rhs, isAnd: true)
        case .or(let lhs, let rhs):
            return try planLogical(lhs, rhs, isAnd: false)
        case .conditional(let condition, let whenTrue, let whenFalse):
            let test = try plan(condition).evaluate
            let yes = try plan(whenTrue).evaluate
            let no = try plan(whenFalse).evaluate
            return CELPlan { frame throws(CELError) in
                switch try test(&frame) {
                case .bool(true): return try yes(&frame)
                case .bool(false): return try no(&frame)
                case let other: throw CELError.noOverload("_?_:_", other)
                }
            }
        case .list(let elements, let optionalIndices):
            return try planList(elements, optionalIndices: optionalIndices)
        case .map(let entries):
            return try planMap(entries)
        case .message(let typeName, _):
            throw CELError(
                .unsupported, "message construction is not supported: \(typeName)", at: location(expr))
        case .comprehension(let comprehension):
            return try planComprehension(comprehension)
        case .bind(let name, let initializer, let body):
            let value = try plan(initializer).evaluate
            return try withLocals([name]) { planner, slots throws(CELError) in
                let inner = try planner.plan(body).evaluate
                let slot = slots[0]
                return CELPlan { frame throws(CELError) in
                    frame.slots[slot] = try value(&frame)
                    return try inner(&frame)
                }
            }
        case .optionalMap(let target, let name, let body, let flat):
            return try planOptionalMap(target: target, name: name, body: body, flat: flat)
        }
    }

    /// Evaluates a plan whose inputs are all constants once, at compile time; keeps the
    /// run-time plan when that fails, so errors stay run-time values (absorbable by `||`).
    func fold(_ plan: CELPlan, if allConstant: Bool) -> CELPlan {
        guard allConstant else { return plan }
        var frame = CELFrame(slotCount: 0, costLimit: CELCost.foldingLimit)
        do throws(CELError) {
            return CELPlan(constant: try plan.evaluate(&frame))
        } catch {
            return plan
        }
    }

    private mutating func planIdentifier(_ name: String, rooted: Bool, _ expr: CELExpr) throws(CELError) -> CELPlan {
        if !rooted, let slot = local(name) {
            return CELPlan { frame throws(CELError) in
                try frame.charge(1)
                return frame.slots[slot] ?? .null
            }
        }
        for candidate in declarations.candidateNames(name, rooted: rooted) {
            if declarations.variables[candidate] != nil { return globalVariable(candidate) }
            if let type = CELType.predeclaredTypeNames[candidate] { return CELPlan(constant: .type(type)) }
        }
        return unresolved(name, expr)
    }

    private func unresolved(_ name: String, _ expr: CELExpr) -> CELPlan {
        let error = CELError(.noSuchAttribute, "no such attribute(s): \(name)")
        return CELPlan { _ throws(CELError) in throw error }
    }

    /// The slot of global `name`, read whole (not only through a request path) unless `wholeRead` is false.
    private mutating func globalSlot(_ name: String, wholeRead: Bool = true) -> Int {
        if wholeRead { globalsReadWhole.insert(name) }
        if let existing = globalSlots[name] { return existing }
        let slot = newSlot()
        globalSlots[name] = slot
        return slot
    }

    private mutating func globalVariable(_ name: String) -> CELPlan {
        let slot = globalSlot(name)
        return CELPlan { frame throws(CELError) in
            try frame.charge(1)
            guard let value = frame.slots[slot] else {
                throw CELError(.noSuchAttribute, "no such attribute(s): \(name)")
            }
            return value
        }
    }

    /// Resolves `a.b.c` written as a select chain of identifiers against qualified variable and
    /// type names (cel-spec "Name Resolution"): the longest declared prefix wins.
    private mutating func planQualifiedName(_ expr: CELExpr) throws(CELError) -> CELPlan? {
        guard declarations.hasQualifiedNames || declarations.container != nil,
            let (parts, rooted) = Self.identifierChain(expr), parts.count > 1
        else {
            if let (parts, _) = Self.identifierChain(expr), parts.count > 1,
                let type = CELType.predeclaredTypeNames[parts.joined(separator: ".")], local(parts[0]) == nil,
                declarations.variables[parts[0]] == nil
            {
                return CELPlan(constant: .type(type))
            }
            return nil
        }
        if !rooted, local(parts[0]) != nil { return nil }
        for length in stride(from: parts.count, through: 1, by: -1) {
            let name = parts[0..<length].joined(separator: ".")
            for candidate in declarations.candidateNames(name, rooted: rooted) {
                let fields = Array(parts[length...])
                if declarations.variables[candidate] != nil {
                    if fields.isEmpty { return globalVariable(candidate) }
                    return fieldChain(fields, ofGlobal: candidate)
                }
                guard let type = CELType.predeclaredTypeNames[candidate] else { continue }
                var base = CELPlan(constant: .type(type))
                for field in fields {
                    let operand = base.evaluate
                    base = CELPlan { frame throws(CELError) in
                        try frame.charge(1)
                        return try CELAccess.select(try operand(&frame), field)
                    }
                }
                return base
            }
        }
        return nil
    }

    /// A chain of plain field selections (`request.user.groups`) as one step: the same charges
    /// (one per selection, all before the operand runs, as nested selections make them) and the
    /// same errors, without a closure call and an intermediate result per field.
    private mutating func planSelectChain(_ expr: CELExpr) throws(CELError) -> CELPlan {
        var outermostFirst: [String] = []
        var current = expr
        var resolvedBase: CELPlan?
        while case .select(let operand, let field, false) = current.kind {
            outermostFirst.append(field)
            current = operand
            // An inner part may itself be a qualified name, as planning it alone would find.
            if case .select(_, _, false) = operand.kind, let resolved = try planQualifiedName(operand) {
                resolvedBase = resolved
                break
            }
        }
        let fields = Array(outermostFirst.reversed())
        if resolvedBase == nil, case .ident(let name, let rooted) = current.kind {
            // A variable and its fields in one step, resolved as `planIdentifier` resolves it.
            if !rooted, let slot = local(name) {
                let cost = UInt64(fields.count + 1)
                let chain = CELFieldChain(fields)
                return CELPlan { frame throws(CELError) in
                    try frame.charge(cost)
                    return try chain.select(from: frame.slots[slot] ?? .null)
                }
            }
            for candidate in declarations.candidateNames(name, rooted: rooted) {
                if declarations.variables[candidate] != nil { return fieldChain(fields, ofGlobal: candidate) }
                if CELType.predeclaredTypeNames[candidate] != nil { break }
            }
        }
        let base: CELPlan
        if let resolvedBase { base = resolvedBase } else { base = try plan(current) }
        let evaluate = base.evaluate
        if fields.count == 1, let field = fields.first {
            return CELPlan { frame throws(CELError) in
                try frame.charge(1)
                return try CELAccess.select(try evaluate(&frame), field)
            }
        }
        let cost = UInt64(fields.count)
        let chain = CELFieldChain(fields)
        return CELPlan { frame throws(CELError) in
            try frame.charge(cost)
            return try chain.select(from: try evaluate(&frame))
        }
    }

    /// `name.f1.f2…` for a global variable `name` (`request.user.groups`) as one step rather than a
    /// closure per name: the same charges, one per name, all made before the variable is read as
    /// nested selections make them, and the same errors in the same order.
    private mutating func fieldChain(_ fields: [String], ofGlobal name: String) -> CELPlan {
        let cost = UInt64(fields.count + 1)
        let chain = CELFieldChain(fields)
        if let path = CELRequestPath(global: name, fields: fields) {
            // The caller's answer, or the chain selected from the variable as below.
            let slot = globalSlot(name, wholeRead: false)
            let pathSlot: Int
            if let existing = pathSlots[path] {
                pathSlot = existing
            } else {
                pathSlot = newSlot()
                pathSlots[path] = pathSlot
            }
            return CELPlan { frame throws(CELError) in
                try frame.charge(cost)
                if let value = frame.slots[pathSlot] { return value }
                guard let value = frame.slots[slot] else {
                    throw CELError(.noSuchAttribute, "no such attribute(s): \(name)")
                }
                return try chain.select(from: value)
            }
        }
        let slot = globalSlot(name)
        return CELPlan { frame throws(CELError) in
            try frame.charge(cost)
            guard let value = frame.slots[slot] else {
                throw CELError(.noSuchAttribute, "no such attribute(s): \(name)")
            }
            return try chain.select(from: value)
        }
    }

    /// The names of an identifier or a select chain of identifiers (`a.b.c` → ["a", "b", "c"]).
    static func identifierChain(_ expr: CELExpr) -> (parts: [String], rooted: Bool)? {
        switch expr.kind {
        case .ident(let name, let rooted): return ([name], rooted)
        case .select(let operand, let field, false):
            guard let (parts, rooted) = identifierChain(operand) else { return nil }
            return (parts + [field], rooted)
        default: return nil
        }
    }

    // MARK: - Operators

    private mutating func planBinary(
        _ op: CELBinaryOperator, _ lhs: CELExpr, _ rhs: CELExpr
    ) throws(CELError)
        -> CELPlan
    {
        let left = try plan(lhs)
        let right = try plan(rhs)
        let l = left.evaluate
        let r = right.evaluate
        let plan: CELPlan
        switch (op, right.constant) {
        case (.equal, .string(let constant)?):
            plan = CELPlan { frame throws(CELError) in
                try frame.charge(1)
                if case .string(let value) = try l(&frame) { return .bool(CELText.equal(value, constant)) }
                return .bool(false)
            }
        case (.notEqual, .string(let constant)?):
            plan = CELPlan { frame throws(CELError) in
                try frame.charge(1)
                if case .string(let value) = try l(&frame) { return .bool(!CELText.equal(value, constant)) }
                return .bool(true)
            }
        case (.in, .list(let elements)?) where elements.count > 8 && elements.allSatisfy(\.isHashableKey):
            let set = Set(elements.compactMap(CELMapKey.init(key:)))
            let all = elements
            plan = CELPlan { frame throws(CELError) in
                try frame.charge(1)
                let value = try l(&frame)
                if let key = CELMapKey(lookup: value) { return .bool(set.contains(key)) }
                return .bool(all.contains { CELValue.celEquals($0, value) })
            }
        case (.in, .list(let elements)?) where !elements.isEmpty && elements.allSatisfy(\.isString):
            // A short constant list of strings (`request.verb in ['delete', 'patch']`): compared
            // in place, charged as the list's traversal, as the general case charges it.
            let texts = elements.compactMap { element -> String? in
                if case .string(let text) = element { return text }
                return nil
            }
            let cost = 1 + CELCost.traversalCost(of: .list(elements))
            plan = CELPlan { frame throws(CELError) in
                let value = try l(&frame)
                try frame.charge(cost)
                // A string equals only strings.
                guard case .string(let text) = value else { return .bool(false) }
                return .bool(texts.contains { CELText.equal($0, text) })
            }
        case (.add, _):
            // Concatenation copies both operands: charged by their size before it allocates, so
            // repeated doubling cannot outgrow the budget.
            plan = CELPlan { frame throws(CELError) in
                let a = try l(&frame)
                let b = try r(&frame)
                try frame.charge(1 + CELCost.traversalCost(of: a) + CELCost.traversalCost(of: b))
                return try CELValue.apply(op, a, b)
            }
        case (.in, _):
            plan = CELPlan { frame throws(CELError) in
                let a = try l(&frame)
                let b = try r(&frame)
                // A list is searched element by element; a map is hashed.
                if case .list = b { try frame.charge(1 + CELCost.traversalCost(of: b)) } else { try frame.charge(1) }
                return try CELValue.apply(op, a, b)
            }
        default:
            // Comparisons walk the shorter operand (strings, bytes, lists, maps).
            plan = CELPlan { frame throws(CELError) in
                let a = try l(&frame)
                let b = try r(&frame)
                try frame.charge(1 + min(CELCost.traversalCost(of: a), CELCost.traversalCost(of: b)))
                return try CELValue.apply(op, a, b)
            }
        }
        return fold(plan, if: left.constant != nil && right.constant != nil)
    }

    /// `&&` and `||` with cel-spec's commutative error absorption: `false && error` and
    /// `error && false` are both `false`; otherwise the first error is reported.
    private mutating func planLogical(_ lhs: CELExpr, _ rhs: CELExpr, isAnd: Bool) throws(CELError) -> CELPlan {
        let l = try plan(lhs).evaluate
        let r = try plan(rhs).evaluate
        let decisive = !isAnd
        let name = isAnd ? "_&&_" : "_||_"
        return CELPlan { frame throws(CELError) in
            var pending: CELError?
            do throws(CELError) {
                switch try l(&frame) {
                case .bool(let value):
                    if value == decisive { return .bool(decisive) }
                case let other:
                    pending = CELError.noOverload(name, other)
                }
            } catch {
                if error.kind == .costLimitExceeded { throw error }
                pending = error
            }
            let right = try r(&frame)
            guard case .bool(let value) = right else { throw pending ?? CELError.noOverload(name, right) }
            if value == decisive { return .bool(decisive) }
            if let pending { throw pending }
            return .bool(value)
        }
    }

    // MARK: - Literals

    private mutating func planList(_ elements: [CELExpr], optionalIndices: Set<Int>) throws(CELError) -> CELPlan {
        var plans: [CELPlan] = []
        for element in elements { plans.append(try plan(element)) }
        let evaluators = plans.map(\.evaluate)
        let plan: CELPlan
        if optionalIndices.isEmpty {
            plan = CELPlan { frame throws(CELError) in
                try frame.charge(1)
                var values: [CELValue] = []
                values.reserveCapacity(evaluators.count)
                for evaluate in evaluators { values.append(try evaluate(&frame)) }
                return .list(values)
            }
        } else {
            plan = CELPlan { frame throws(CELError) in
                try frame.charge(1)
                var values: [CELValue] = []
                for (position, evaluate) in evaluators.enumerated() {
                    let value = try evaluate(&frame)
                    guard optionalIndices.contains(position) else {
                        values.append(value)
                        continue
                    }
                    guard case .optional(let wrapped) = value else {
                        throw CELError(
                            .invalidArgument, "cannot initialize optional list element from non-optional value")
                    }
                    if let wrapped { values.append(wrapped) }
                }
                return .list(values)
            }
        }
        return fold(plan, if: plans.allSatisfy { $0.constant != nil })
    }

    private mutating func planMap(_ entries: [CELMapEntryExpr]) throws(CELError) -> CELPlan {
        var keys: [CELPlan] = []
        var values: [CELPlan] = []
        for entry in entries {
            keys.append(try plan(entry.key))
            values.append(try plan(entry.value))
        }
        let keyEvaluators = keys.map(\.evaluate)
        let valueEvaluators = values.map(\.evaluate)
        let optional = entries.map(\.optional)
        let plan = CELPlan { frame throws(CELError) in
            try frame.charge(1)
            var builder = CELMap.Builder()
            for position in keyEvaluators.indices {
                let key = try keyEvaluators[position](&frame)
                let value = try valueEvaluators[position](&frame)
                if optional[position] {
                    guard case .optional(let wrapped) = value else {
                        throw CELError(.invalidArgument, "cannot initialize optional entry from non-optional value")
                    }
                    if let wrapped { try builder.add(key, wrapped) }
                } else {
                    try builder.add(key, value)
                }
            }
            return .map(builder.build())
        }
        return fold(plan, if: keys.allSatisfy { $0.constant != nil } && values.allSatisfy { $0.constant != nil })
    }

    // MARK: - Optionals

    private mutating func planOptionalMap(
        target: CELExpr, name: String, body: CELExpr, flat: Bool
    ) throws(CELError)
        -> CELPlan
    {
        let optional = try plan(target).evaluate
        return try withLocals([name]) { planner, slots throws(CELError) in
            let inner = try planner.plan(body).evaluate
            let slot = slots[0]
            let function = flat ? "optFlatMap" : "optMap"
            return CELPlan { frame throws(CELError) in
                try frame.charge(1)
                let value = try optional(&frame)
                guard case .optional(let wrapped) = value else { throw CELError.noOverload(function, value) }
                guard let wrapped else { return .optional(nil) }
                frame.slots[slot] = wrapped
                let result = try inner(&frame)
                if !flat { return .optional(result) }
                guard case .optional = result else { throw CELError.noOverload(function, result) }
                return result
            }
        }
    }
}

extension CELValue {
    var isString: Bool {
        if case .string = self { return true }
        return false
    }

    /// Whether the value can be a map key (bool, int, uint, string).
    var isHashableKey: Bool { CELMapKey(key: self) != nil }
}
