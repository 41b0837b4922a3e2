/// Planning of the comprehension macros (cel-spec "Macros": `all`, `exists`, `exists_one`,
/// `map`, `filter`; cel-go's two-variable comprehensions and `sortBy`).
///
/// `all` and `exists` absorb errors like `&&` and `||` do: `[0, 1].exists(x, 1 / x > 0)` is
/// true, because one element decides the result whatever the error on another.
extension CELPlanner {
    mutating func planComprehension(_ comprehension: CELComprehension) throws(CELError) -> CELPlan {
        let range = try plan(comprehension.range).evaluate
        let names = [comprehension.variable] + (comprehension.variable2.map { [$0] } ?? [])
        return try withLocals(names) { planner, slots throws(CELError) in
            let body = try planner.plan(comprehension.body).evaluate
            var filter: CELEvaluator?
            if let filterExpr = comprehension.filter { filter = try planner.plan(filterExpr).evaluate }
            return Self.comprehensionPlan(comprehension.kind, range: range, slots: slots, body: body, filter: filter)
        }
    }

    private static func macroName(_ kind: CELComprehension.Kind) -> String {
        switch kind {
        case .all: return "all"
        case .exists: return "exists"
        case .existsOne: return "exists_one"
        case .map: return "map"
        case .filter: return "filter"
        case .transformList: return "transformList"
        case .transformMap: return "transformMap"
        case .transformMapEntry: return "transformMapEntry"
        case .sortBy: return "sortBy"
        }
    }

    // swift-format-ignore: FunctionLength
    private static func comprehensionPlan(
        _ kind: CELComprehension.Kind, range: @escaping CELEvaluator, slots: [Int], body: @escaping CELEvaluator,
        filter: CELEvaluator?
    ) -> CELPlan {
        let name = macroName(kind)
        let first = slots[0]
        let second = slots.count > 1 ? slots[1] : nil
        /// Binds the loop variables and charges the iteration.
        @inline(__always)
        @Sendable func bind(_ frame: inout CELFrame, _ key: CELValue, _ value: CELValue) throws(CELError) {
            try frame.charge(1)
            frame.slots[first] = key
            if let second { frame.slots[second] = value }
        }
        @inline(__always)
        @Sendable func passes(_ frame: inout CELFrame) throws(CELError) -> Bool {
            guard let filter else { return true }
            let result = try filter(&frame)
            guard case .bool(let pass) = result else { throw CELError.noOverload(name, result) }
            return pass
        }
        switch kind {
        case .all, .exists:
            let decisive = kind == .exists
            return CELPlan { frame throws(CELError) in
                let collection = try range(&frame)
                var pending: CELError?
                var decided = false
                try forEach(collection, pairs: second != nil, macro: name) { key, value throws(CELError) in
                    try bind(&frame, key, value)
                    do throws(CELError) {
                        let result = try body(&frame)
                        guard case .bool(let flag) = result else {
                            pending = pending ?? CELError.noOverload(name, result)
                            return true
                        }
                        if flag == decisive {
                            decided = true
                            return false
                        }
                    } catch {
                        if error.kind == .costLimitExceeded { throw error }
                        pending = pending ?? error
                    }
                    return true
                }
                if decided { return .bool(decisive) }
                if let pending { throw pending }
                return .bool(!decisive)
            }
        case .existsOne:
            return CELPlan { frame throws(CELError) in
                let collection = try range(&frame)
                var count = 0
                try forEach(collection, pairs: second != nil, macro: name) { key, value throws(CELError) in
                    try bind(&frame, key, value)
                    let result = try body(&frame)
                    guard case .bool(let flag) = result else { throw CELError.noOverload(name, result) }
                    if flag { count += 1 }
                    return true
                }
                return .bool(count == 1)
            }
        case .map, .transformList, .filter:
            return CELPlan { frame throws(CELError) in
                let collection = try range(&frame)
                var output: [CELValue] = []
                try forEach(collection, pairs: second != nil, macro: name) { key, value throws(CELError) in
                    try bind(&frame, key, value)
                    if kind == .filter {
                        let result = try body(&frame)
                        guard case .bool(let keep) = result else { throw CELError.noOverload(name, result) }
                        if keep { output.append(key) }
                    } else if try passes(&frame) {
                        output.append(try body(&frame))
                    }
                    return true
                }
                return .list(output)
            }
        case .transformMap, .transformMapEntry:
            return CELPlan { frame throws(CELError) in
                let collection = try range(&frame)
                var builder = CELMap.Builder()
                try forEach(collection, pairs: true, macro: name) { key, value throws(CELError) in
                    try bind(&frame, key, value)
                    guard try passes(&frame) else { return true }
                    let result = try body(&frame)
                    if kind == .transformMap {
                        try builder.add(key, result)
                    } else {
                        guard case .map(let entries) = result else { throw CELError.noOverload(name, result) }
                        for (entryKey, entryValue) in entries {
                            do throws(CELError) {
                                try builder.add(entryKey, entryValue)
                            } catch {
                                throw CELError(
                                    .invalidArgument, "insert failed: key \(entryKey.debugDescription) already exists")
                            }
                        }
                    }
                    return true
                }
                return .map(builder.build())
            }
        case .sortBy:
            return CELPlan { frame throws(CELError) in
                let collection = try range(&frame)
                guard case .list(let elements) = collection else { throw CELError.noOverload(name, collection) }
                var keyed: [(key: CELValue, element: CELValue)] = []
                for element in elements {
                    try bind(&frame, element, element)
                    keyed.append((try body(&frame), element))
                }
                let sorted = try CELListSorting.stableSort(keyed.map(\.key), function: "sortBy")
                return .list(sorted.map { keyed[$0].element })
            }
        }
    }

    /// Calls `body` with each element of a list or key of a map (with `pairs`: index and element,
    /// or key and value) until it returns false.
    static func forEach(
        _ collection: CELValue, pairs: Bool, macro: String,
        _ body: (CELValue, CELValue) throws(CELError) -> Bool
    ) throws(CELError) {
        switch collection {
        case .list(let elements):
            for (position, element) in elements.enumerated() {
                let keepGoing = pairs ? try body(.int(Int64(position)), element) : try body(element, element)
                if !keepGoing { return }
            }
        case .map(let map):
            for (key, value) in map where !(try body(key, value)) { return }
        default:
            throw CELError.noOverload(macro, collection)
        }
    }
}

/// Sorting helpers shared by `sort()`, `sortBy` and `isSorted()`.
enum CELListSorting {
    /// The positions of `keys` in stable ascending order; keys must be mutually comparable.
    static func stableSort(_ keys: [CELValue], function: String) throws(CELError) -> [Int] {
        var failure: CELError?
        if let first = keys.first {
            for key in keys where !sameComparableKind(first, key) {
                throw CELError(.invalidArgument, "\(function): list elements must have the same type")
            }
        }
        let order = keys.indices.sorted { a, b in
            do throws(CELError) {
                let result = try CELValue.compare(keys[a], keys[b], .less)
                if let result, result != 0 { return result < 0 }
            } catch {
                failure = failure ?? error
            }
            return a < b
        }
        if let failure { throw failure }
        return order
    }

    static func sameComparableKind(_ a: CELValue, _ b: CELValue) -> Bool {
        switch (a, b) {
        case (.int, .int), (.uint, .uint), (.double, .double), (.string, .string), (.bytes, .bytes), (.bool, .bool),
            (.timestamp, .timestamp), (.duration, .duration):
            return true
        default:
            return false
        }
    }
}
