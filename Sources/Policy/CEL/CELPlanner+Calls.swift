/// Planning of function calls: name resolution (namespaced globals such as `math.abs`, then
/// receiver-style, then global functions), compile-time work for constant arguments (regular
/// expressions compiled once) and the call's cost.
extension CELPlanner {
    mutating func planCall(
        _ expr: CELExpr, target: CELExpr?, function: String, args: [CELExpr]
    ) throws(CELError)
        -> CELPlan
    {
        let registry = declarations.functions
        if let target, let (parts, rooted) = Self.identifierChain(target), isFunctionNamespace(parts[0], rooted: rooted)
        {
            let qualified = parts.joined(separator: ".") + "." + function
            if let decl = registry.lookup(qualified, isMember: false, argumentCount: args.count) {
                return try planInvocation(decl, args, expr)
            }
        }
        if let target {
            if let decl = registry.lookup(function, isMember: true, argumentCount: args.count + 1) {
                return try planInvocation(decl, [target] + args, expr)
            }
        } else {
            let name = function.hasPrefix(".") ? String(function.dropFirst()) : function
            if let decl = registry.lookup(name, isMember: false, argumentCount: args.count) {
                return try planInvocation(decl, args, expr)
            }
        }
        // Unknown with the checker off: the call is a run-time error, which `||`/`&&` may absorb.
        let error = CELError(.noSuchOverload, "no matching overload for '\(function)'")
        return CELPlan { _ throws(CELError) in throw error }
    }

    /// A leading name is a function namespace (e.g. `math`) when it is not a variable in scope.
    private func isFunctionNamespace(_ name: String, rooted: Bool) -> Bool {
        if rooted { return true }
        return !isLocal(name) && declarations.variables[name] == nil
    }

    private mutating func planInvocation(
        _ decl: CELFunctionDecl, _ args: [CELExpr], _ expr: CELExpr
    ) throws(CELError)
        -> CELPlan
    {
        var plans: [CELPlan] = []
        for arg in args { plans.append(try plan(arg)) }
        if let specialized = try specialize(decl, plans, args) { return specialized }
        let allConstant = plans.allSatisfy { $0.constant != nil }
        let traversal = decl.cost == .traversal
        let plan: CELPlan
        switch decl.implementation {
        case .unary(let function):
            let a = plans[0].evaluate
            plan = CELPlan { frame throws(CELError) in
                let x = try a(&frame)
                try frame.charge(traversal ? 1 + CELCost.traversalCost(of: x) : 1)
                return try function(x)
            }
        case .binary(let function):
            let a = plans[0].evaluate
            let b = plans[1].evaluate
            plan = CELPlan { frame throws(CELError) in
                let x = try a(&frame)
                let y = try b(&frame)
                try frame.charge(traversal ? 1 + CELCost.traversalCost(of: x) + CELCost.traversalCost(of: y) : 1)
                return try function(x, y)
            }
        case .ternary(let function):
            let a = plans[0].evaluate
            let b = plans[1].evaluate
            let c = plans[2].evaluate
            plan = CELPlan { frame throws(CELError) in
                let x = try a(&frame)
                let y = try b(&frame)
                let z = try c(&frame)
                try frame.charge(traversal ? 1 + CELCost.traversalCost(of: x) + CELCost.traversalCost(of: y) : 1)
                return try function(x, y, z)
            }
        case .variadic(let function):
            let evaluators = plans.map(\.evaluate)
            plan = CELPlan { frame throws(CELError) in
                var values: [CELValue] = []
                values.reserveCapacity(evaluators.count)
                var cost: UInt64 = 1
                for evaluate in evaluators {
                    let value = try evaluate(&frame)
                    if traversal { cost += CELCost.traversalCost(of: value) }
                    values.append(value)
                }
                try frame.charge(cost)
                return try function(values)
            }
        }
        return fold(plan, if: allConstant)
    }

    /// Compiles a constant regular expression once, at compile time, for `matches`, `find` and
    /// `findAll`. An invalid constant pattern is a compile error when literals are validated.
    private func specialize(
        _ decl: CELFunctionDecl, _ plans: [CELPlan], _ args: [CELExpr]
    ) throws(CELError)
        -> CELPlan?
    {
        guard ["matches", "find", "findAll"].contains(decl.name), plans.count >= 2, plans[0].constant == nil,
            case .string(let pattern)? = plans[1].constant
        else { return nil }
        let regex: CELRegex
        do throws(CELError) {
            regex = try CELRegex(pattern)
        } catch {
            if declarations.validatesLiterals {
                throw CELError(error.kind, error.message, at: location(args[1]))
            }
            return nil
        }
        let subject = plans[0].evaluate
        let limit = plans.count == 3 ? plans[2].evaluate : nil
        let name = decl.name
        return CELPlan { frame throws(CELError) in
            let value = try subject(&frame)
            guard case .string(let text) = value else { throw CELError.noOverload(name, value) }
            try frame.charge(1 + CELCost.traversalCost(of: value))
            switch name {
            case "matches": return .bool(regex.matches(text))
            case "find": return .string(regex.firstMatch(in: text) ?? "")
            default:
                var max = -1
                if let limit {
                    let count = try limit(&frame)
                    guard case .int(let n) = count else { throw CELError.noOverload(name, value, count) }
                    max = n < 0 ? -1 : Int(clamping: n)
                }
                return .list(regex.allMatches(in: text, limit: max).map(CELValue.string))
            }
        }
    }
}
