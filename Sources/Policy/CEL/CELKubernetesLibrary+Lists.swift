/// The Kubernetes CEL libraries (`k8s.io/apiserver/pkg/cel/library`). This file: the `lists`
/// library (`isSorted`, `sum`, `min`, `max`, `indexOf`, `lastIndexOf`) and the `regex` library
/// (`find`, `findAll`).
enum CELKubernetesLibrary {
    static let lists: [CELFunctionDecl] = [
        .member("isSorted", ["list(T) -> bool"], cost: .traversal, .unary(isSorted)),
        .member(
            "sum", ["list(int) -> int", "list(uint) -> uint", "list(double) -> double", "list(duration) -> duration"],
            cost: .traversal, .unary(sum)),
        .member(
            "min", ["list(T) -> T"], cost: .traversal, .unary { value throws(CELError) in try extreme(value, "min") }),
        .member(
            "max", ["list(T) -> T"], cost: .traversal, .unary { value throws(CELError) in try extreme(value, "max") }),
        .member(
            "indexOf", ["list(T), T -> int"], cost: .traversal,
            .binary { list, element throws(CELError) in
                try position(list, element, last: false)
            }),
        .member(
            "lastIndexOf", ["list(T), T -> int"], cost: .traversal,
            .binary { list, element throws(CELError) in
                try position(list, element, last: true)
            }),
    ]

    static let regex: [CELFunctionDecl] = [
        .member(
            "find", ["string, string -> string"], cost: .traversal,
            .binary { subject, pattern throws(CELError) in
                let texts = try strings("find", subject, pattern)
                return .string(try CELRegex(texts[1]).firstMatch(in: texts[0]) ?? "")
            }),
        .member(
            "findAll", ["string, string -> list(string)"], cost: .traversal,
            .binary { subject, pattern throws(CELError) in
                let texts = try strings("findAll", subject, pattern)
                return .list(try CELRegex(texts[1]).allMatches(in: texts[0], limit: -1).map(CELValue.string))
            }),
        .member(
            "findAll", ["string, string, int -> list(string)"], cost: .traversal,
            .ternary { subject, pattern, limit throws(CELError) in
                let texts = try strings("findAll", subject, pattern)
                guard case .int(let count) = limit else {
                    throw CELError.noOverload("findAll", subject, pattern, limit)
                }
                let matches = try CELRegex(texts[1]).allMatches(
                    in: texts[0], limit: count < 0 ? -1 : Int(clamping: count))
                return .list(matches.map(CELValue.string))
            }),
    ]

    /// Unwraps string arguments or fails with `no such overload`.
    static func strings(_ function: String, _ values: CELValue...) throws(CELError) -> [String] {
        var result: [String] = []
        for value in values {
            guard case .string(let text) = value else {
                let types = values.map(\.celType.description).joined(separator: ", ")
                throw CELError(.noSuchOverload, "no such overload: \(function)(\(types))")
            }
            result.append(text)
        }
        return result
    }

    private static func elements(_ value: CELValue, _ function: String) throws(CELError) -> [CELValue] {
        guard case .list(let elements) = value else { throw CELError.noOverload(function, value) }
        return elements
    }

    private static func isSorted(_ value: CELValue) throws(CELError) -> CELValue {
        let items = try elements(value, "isSorted")
        for index in items.indices.dropFirst() {
            guard let order = try CELValue.compare(items[index - 1], items[index], .lessOrEqual) else {
                return .bool(false)
            }
            if order > 0 { return .bool(false) }
        }
        return .bool(true)
    }

    private static func sum(_ value: CELValue) throws(CELError) -> CELValue {
        let items = try elements(value, "sum")
        guard var total = items.first else { return .int(0) }
        for item in items.dropFirst() { total = try CELValue.add(total, item) }
        switch total {
        case .int, .uint, .double, .duration: return total
        default: throw CELError.noOverload("sum", value)
        }
    }

    private static func extreme(_ value: CELValue, _ function: String) throws(CELError) -> CELValue {
        let items = try elements(value, function)
        guard var best = items.first else {
            throw CELError(.invalidArgument, "\(function) called on empty list")
        }
        for item in items.dropFirst() {
            guard let order = try CELValue.compare(item, best, .less) else { continue }
            if function == "min" ? order < 0 : order > 0 { best = item }
        }
        return best
    }

    private static func position(_ list: CELValue, _ element: CELValue, last: Bool) throws(CELError) -> CELValue {
        let items = try elements(list, last ? "lastIndexOf" : "indexOf")
        let found =
            last
            ? items.lastIndex { CELValue.celEquals($0, element) } : items.firstIndex { CELValue.celEquals($0, element) }
        return .int(Int64(found ?? -1))
    }
}
