/// Macro expansion (cel-spec `doc/langdef.md`, "Macros"), plus the macros of the extensions
/// Kubernetes enables: `cel.bind` (bindings), two-variable comprehensions, `optMap`/`optFlatMap`
/// (optional types) and `sortBy` (lists).
extension CELParser {
    /// `has(a.b)`. Other global calls are left as they are.
    mutating func expandGlobalMacro(_ call: CELExpr) throws(CELError) -> CELExpr {
        guard case .call(nil, "has", let args) = call.kind, args.count == 1 else { return call }
        guard case .select(let operand, let field, false) = args[0].kind else {
            throw syntaxError("invalid argument to has() macro", at: args[0].offset)
        }
        return node(.has(operand: operand, field: field), at: call.offset)
    }

    private func simpleName(_ expr: CELExpr, macro: String) throws(CELError) -> String {
        guard case .ident(let name, false) = expr.kind else {
            throw syntaxError("\(macro)() variable name must be a simple identifier", at: expr.offset)
        }
        return name
    }

    /// Receiver-style macros: `range.all(x, p)` and friends. Calls that are not macros are returned unchanged.
    mutating func expandMemberMacro(_ call: CELExpr) throws(CELError) -> CELExpr {
        guard case .call(let target?, let function, let args) = call.kind else { return call }
        let kind: CELComprehension.Kind
        switch (function, args.count) {
        case ("all", 2), ("all", 3): kind = .all
        case ("exists", 2), ("exists", 3): kind = .exists
        case ("exists_one", 2), ("exists_one", 3), ("existsOne", 2), ("existsOne", 3): kind = .existsOne
        case ("map", 2), ("map", 3): kind = .map
        case ("filter", 2): kind = .filter
        case ("transformList", 3), ("transformList", 4): kind = .transformList
        case ("transformMap", 3), ("transformMap", 4): kind = .transformMap
        case ("transformMapEntry", 3), ("transformMapEntry", 4): kind = .transformMapEntry
        case ("sortBy", 2): kind = .sortBy
        case ("bind", 3):
            guard case .ident("cel", false) = target.kind else { return call }
            let name = try simpleName(args[0], macro: "cel.bind")
            return node(.bind(name: name, initializer: args[1], body: args[2]), at: call.offset)
        case ("optMap", 2), ("optFlatMap", 2):
            let name = try simpleName(args[0], macro: function)
            return node(
                .optionalMap(target: target, name: name, body: args[1], flat: function == "optFlatMap"),
                at: call.offset)
        default:
            return call
        }
        let variable = try simpleName(args[0], macro: function)
        var variable2: String?
        var body: CELExpr
        var filter: CELExpr?
        switch kind {
        case .transformList, .transformMap, .transformMapEntry:
            variable2 = try simpleName(args[1], macro: function)
            body = args[args.count - 1]
            filter = args.count == 4 ? args[2] : nil
        case .map:
            body = args[args.count - 1]
            filter = args.count == 3 ? args[1] : nil
        default:
            if args.count == 3 {
                variable2 = try simpleName(args[1], macro: function)
            }
            body = args[args.count - 1]
        }
        if let variable2, variable2 == variable {
            throw syntaxError("\(function)() variable names must be different", at: args[1].offset)
        }
        let comprehension = CELComprehension(
            kind: kind, range: target, variable: variable, variable2: variable2, body: body, filter: filter)
        return node(.comprehension(comprehension), at: call.offset)
    }
}
