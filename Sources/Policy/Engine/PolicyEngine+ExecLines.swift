import Foundation

extension PolicyEngine {
    /// The names of the policies that read `exec.line` and may apply to `request`: what decides
    /// whether the proxy checks the lines typed into an exec session at all, and whether a line it
    /// cannot read for sure (recalled from history, completed) could matter to a policy.
    ///
    /// A policy counts when its `match` selects the request, none of its `matchConditions` that
    /// can be decided without the line is false, and one of its expressions (variables included)
    /// reads `exec.line`. It errs on the side of counting: an expression that uses `exec` as a
    /// whole, or indexes it with a computed key, reads the line; a condition that fails to
    /// evaluate does not exclude the policy. For a request that carries a line, every condition
    /// can be decided.
    public func execLinePolicies(for request: RequestAttributes, now: Date = Date()) -> [String] {
        let request = needsLabels(request) ? labelled(request) : request
        var names: [String] = []
        for compiled in policies where compiled.policy.match.evaluate(request) != .noMatch {
            guard compiled.readsExecLine else { continue }
            var bindings = RequestBindings(now: now)
            let excluded = compiled.matchConditions.contains { condition in
                let program = condition.expression.program
                // Variables are not computed here; a condition reading them cannot be decided.
                if program.references("variables") { return false }
                if request.exec?.line.isEmpty ?? true, ExecLineReads.reads(program.source) { return false }
                let result = try? program.evaluateWithCost(
                    costLimit: options.expressionCostLimit, values: { bindings.value(of: $0, for: request) })
                return result?.value == .bool(false)
            }
            if !excluded { names.append(compiled.policy.name) }
        }
        return names
    }
}

extension CompiledPolicy {
    /// Whether any expression of the policy reads `exec.line`.
    var readsExecLine: Bool {
        let programs =
            variables.map(\.expression.program) + matchConditions.map(\.expression.program)
            + rules.flatMap {
                ([$0.expression?.program, $0.messageExpression?.program] + $0.patchValues).compactMap { $0 }
            }
        return programs.contains { $0.references("exec") && ExecLineReads.reads($0.source) }
    }
}

/// Finds reads of `exec.line` in an expression's syntax tree.
enum ExecLineReads {
    /// Whether `source` may read `exec.line`; true when it cannot be parsed.
    static func reads(_ source: String) -> Bool {
        guard let expression = try? CELParser.parse(source) else { return true }
        return reads(expression)
    }

    static func reads(_ expression: CELExpr) -> Bool {
        switch expression.kind {
        case .ident(let name, _):
            return name == "exec"  // `exec` handed on whole: anything may read its line
        case .select(let operand, let field, _), .has(let operand, let field):
            if case .ident("exec", _) = operand.kind { return field == "line" }
            return reads(operand)
        case .index(let operand, let index, _):
            if case .ident("exec", _) = operand.kind {
                if case .literal(.string(let key)) = index.kind { return key == "line" }
                return true
            }
            return reads(operand) || reads(index)
        case .literal:
            return false
        case .call(let target, _, let args):
            return (target.map(reads) ?? false) || args.contains(where: reads)
        case .unary(_, let operand):
            return reads(operand)
        case .binary(_, let left, let right), .and(let left, let right), .or(let left, let right):
            return reads(left) || reads(right)
        case .conditional(let condition, let then, let otherwise):
            return reads(condition) || reads(then) || reads(otherwise)
        case .list(let elements, _):
            return elements.contains(where: reads)
        case .map(let entries):
            return entries.contains { reads($0.key) || reads($0.value) }
        case .message(_, let fields):
            return fields.contains { reads($0.1) }
        case .comprehension(let comprehension):
            return reads(comprehension.range) || reads(comprehension.body)
                || (comprehension.filter.map(reads) ?? false)
        case .bind(_, let initializer, let body):
            return reads(initializer) || reads(body)
        case .optionalMap(let target, _, let body, _):
            return reads(target) || reads(body)
        }
    }
}
