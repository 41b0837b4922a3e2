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
        let traversal = decl.cost == .traversal || decl.cost == .traversalAndResult
        let chargesResult = decl.cost == .traversalAndResult
        let pairwise = decl.cost == .pairwise
        let plan: CELPlan
        switch decl.implementation {
        case .unary(let function):
            let a = plans[0].evaluate
            plan = CELPlan { frame throws(CELError) in
                let x = try a(&frame)
                try frame.charge(
                    pairwise ? 1 + CELCost.pairwiseCost(x, x) : traversal ? 1 + CELCost.traversalCost(of: x) : 1)
                let result = try function(x)
                if chargesResult { try frame.charge(CELCost.traversalCost(of: result)) }
                return result
            }
        case .binary(let function) where !pairwise && !allConstant && plans[1].constant != nil:
            // A constant argument (`s.startsWith('prod-')`): passed as it is, its size charged
            // as it would be on every call, without a closure call to produce it.
            let a = plans[0].evaluate
            let y = plans[1].constant ?? .null
            let constantCost = traversal ? CELCost.traversalCost(of: y) : 0
            plan = CELPlan { frame throws(CELError) in
                let x = try a(&frame)
                try frame.charge(traversal ? 1 + CELCost.traversalCost(of: x) + constantCost : 1)
                let result = try function(x, y)
                if chargesResult { try frame.charge(CELCost.traversalCost(of: result)) }
                return result
            }
        case .binary(let function):
            let a = plans[0].evaluate
            let b = plans[1].evaluate
            plan = CELPlan { frame throws(CELError) in
                let x = try a(&frame)
                let y = try b(&frame)
                try frame.charge(
                    pairwise
                        ? 1 + CELCost.pairwiseCost(x, y)
                        : traversal ? 1 + CELCost.traversalCost(of: x) + CELCost.traversalCost(of: y) : 1)
                let result = try function(x, y)
                if chargesResult { try frame.charge(CELCost.traversalCost(of: result)) }
                return result
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
                let result = try function(x, y, z)
                if chargesResult { try frame.charge(CELCost.traversalCost(of: result)) }
                return result
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
                let result = try function(values)
                if chargesResult { try frame.charge(CELCost.traversalCost(of: result)) }
                return result
            }
        case .metered(let function):
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
                var meter = CELMeter(remaining: frame.remaining)
                let result = Result { () throws(CELError) in try function(values, &meter) }
                // Work done before a failure is charged too, so that retrying cannot run unbounded.
                try frame.charge(meter.cost)
                return try result.get()
            }
        }
        return fold(plan, if: allConstant)
    }

    /// `matches`, `find` and `findAll`: a constant pattern is compiled once, at compile time (an
    /// invalid one is a compile error when literals are validated); any other is compiled per call
    /// and charged by its size. Matching is charged by the regex VM's work and stops when the
    /// budget runs out, so a large program over a long text cannot run unbounded.
    private func specialize(
        _ decl: CELFunctionDecl, _ plans: [CELPlan], _ args: [CELExpr]
    ) throws(CELError)
        -> CELPlan?
    {
        guard ["matches", "find", "findAll"].contains(decl.name), plans.count >= 2 else { return nil }
        var compiled: CELRegex?
        if case .string(let pattern)? = plans[1].constant {
            do throws(CELError) {
                compiled = try CELRegex(pattern)
            } catch {
                if declarations.validatesLiterals {
                    throw CELError(error.kind, error.message, at: location(args[1]))
                }
            }
        }
        let constantRegex = compiled
        let subject = plans[0].evaluate
        let pattern = plans[1].evaluate
        let limit = plans.count == 3 ? plans[2].evaluate : nil
        let name = decl.name
        let plan = CELPlan { frame throws(CELError) in
            let value = try subject(&frame)
            let regex: CELRegex
            if let constantRegex {
                regex = constantRegex
            } else {
                let source = try pattern(&frame)
                guard case .string = value, case .string(let text) = source else {
                    throw CELError.noOverload(name, value, source)
                }
                do throws(CELError) {
                    regex = try CELRegex(text)
                } catch {
                    // A failed compile may have built a program up to the size limit before failing;
                    // charge that, so that retrying inside a comprehension cannot run unbounded.
                    try frame.charge(CELCost.regexCompileCost(instructions: CELLimits.maxRegexProgramSize))
                    throw error
                }
                try frame.charge(CELCost.regexCompileCost(instructions: regex.instructionCount))
            }
            guard case .string(let text) = value else { throw CELError.noOverload(name, value) }
            try frame.charge(1 + CELCost.traversalCost(of: value))
            var max = -1
            if let limit {
                let count = try limit(&frame)
                guard case .int(let n) = count else { throw CELError.noOverload(name, value, count) }
                max = n < 0 ? -1 : Int(clamping: n)
            }
            let perUnit = CELCost.regexStepsPerUnit
            let (allowed, overflow) = Int(clamping: frame.remaining).multipliedReportingOverflow(by: perUnit)
            var work = CELRegex.Work(limit: overflow ? .max : allowed)
            let result: CELValue
            switch name {
            case "matches": result = .bool(regex.matches(text, work: &work))
            case "find": result = .string(regex.firstMatch(in: text, work: &work) ?? "")
            default: result = .list(regex.allMatches(in: text, limit: max, work: &work).map(CELValue.string))
            }
            // Past the allowance, this charge exceeds what remains and stops the evaluation.
            try frame.charge(UInt64(work.steps / perUnit + (work.steps % perUnit == 0 ? 0 : 1)))
            return result
        }
        return fold(plan, if: plans.allSatisfy { $0.constant != nil })
    }
}
