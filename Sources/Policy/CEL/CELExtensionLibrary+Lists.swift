/// The cel-go lists extension (version 3): `slice`, `flatten`, `distinct`, `reverse`, `sort`,
/// `lists.range` (and the `sortBy` macro); plus the cel-go sets extension
/// (`sets.contains`, `sets.equivalent`, `sets.intersects`) and the encoders extension
/// (`base64.encode`, `base64.decode`).
extension CELExtensionLibrary {
    static let lists: [CELFunctionDecl] = [
        .member("slice", ["list(T), int, int -> list(T)"], cost: .traversal, .ternary(slice)),
        .member(
            "flatten", ["list(dyn) -> list(dyn)"], cost: .traversal,
            .metered { args, meter throws(CELError) in
                try flatten(args[0], .int(1), meter: &meter)
            }),
        .member(
            "flatten", ["list(dyn), int -> list(dyn)"], cost: .traversal,
            .metered { args, meter throws(CELError) in
                try flatten(args[0], args[1], meter: &meter)
            }),
        .member("distinct", ["list(T) -> list(T)"], cost: .pairwise, .unary(distinct)),
        .member(
            "reverse", ["list(T) -> list(T)"], cost: .traversal,
            .unary { value throws(CELError) in
                guard case .list(let elements) = value else { throw CELError.noOverload("reverse", value) }
                return .list(elements.reversed())
            }),
        .member(
            "sort", ["list(T) -> list(T)"], cost: .traversal,
            .unary { value throws(CELError) in
                guard case .list(let elements) = value else { throw CELError.noOverload("sort", value) }
                return .list(try CELListSorting.stableSort(elements, function: "sort").map { elements[$0] })
            }),
        .global(
            "lists.range", ["int -> list(int)"], cost: .traversalAndResult,
            .unary { value throws(CELError) in
                guard case .int(let count) = value else { throw CELError.noOverload("lists.range", value) }
                guard count >= 0, count <= 1_000_000 else {
                    throw CELError(.invalidArgument, "lists.range: count out of range: \(count)")
                }
                return .list((0..<count).map(CELValue.int))
            }),
    ]

    static let sets: [CELFunctionDecl] = [
        .global(
            "sets.contains", ["list(T), list(T) -> bool"], cost: .pairwise,
            .binary { a, b throws(CELError) in
                let (first, second) = try listPair(a, b, "sets.contains")
                return .bool(second.allSatisfy { element in first.contains { CELValue.celEquals($0, element) } })
            }),
        .global(
            "sets.equivalent", ["list(T), list(T) -> bool"], cost: .pairwise,
            .binary { a, b throws(CELError) in
                let (first, second) = try listPair(a, b, "sets.equivalent")
                let forward = second.allSatisfy { element in first.contains { CELValue.celEquals($0, element) } }
                let backward = first.allSatisfy { element in second.contains { CELValue.celEquals($0, element) } }
                return .bool(forward && backward)
            }),
        .global(
            "sets.intersects", ["list(T), list(T) -> bool"], cost: .pairwise,
            .binary { a, b throws(CELError) in
                let (first, second) = try listPair(a, b, "sets.intersects")
                return .bool(second.contains { element in first.contains { CELValue.celEquals($0, element) } })
            }),
    ]

    static let encoders: [CELFunctionDecl] = [
        .global(
            "base64.encode", ["bytes -> string"], cost: .traversal,
            .unary { value throws(CELError) in
                guard case .bytes(let bytes) = value else { throw CELError.noOverload("base64.encode", value) }
                return .string(CELBase64.encode(bytes))
            }),
        .global(
            "base64.decode", ["string -> bytes"], cost: .traversal,
            .unary { value throws(CELError) in
                guard case .string(let text) = value else { throw CELError.noOverload("base64.decode", value) }
                guard let bytes = CELBase64.decode(text) else {
                    throw CELError(.invalidArgument, "base64.decode: illegal base64 data")
                }
                return .bytes(bytes)
            }),
    ]

    private static func listPair(
        _ a: CELValue, _ b: CELValue, _ function: String
    ) throws(CELError)
        -> ([CELValue], [CELValue])
    {
        guard case .list(let first) = a, case .list(let second) = b else { throw CELError.noOverload(function, a, b) }
        return (first, second)
    }

    private static func slice(_ value: CELValue, _ start: CELValue, _ end: CELValue) throws(CELError) -> CELValue {
        guard case .list(let elements) = value, case .int(let from) = start, case .int(let to) = end else {
            throw CELError.noOverload("slice", value, start, end)
        }
        guard from >= 0, to >= 0 else {
            throw CELError(.invalidArgument, "cannot slice(\(from), \(to)), negative indexes not supported")
        }
        guard from <= to else {
            throw CELError(
                .invalidArgument, "cannot slice(\(from), \(to)), start index must be less than or equal to end index")
        }
        guard to <= elements.count else {
            throw CELError(.invalidArgument, "cannot slice(\(from), \(to)), list is length \(elements.count)")
        }
        return .list(Array(elements[Int(from)..<Int(to)]))
    }

    private static func flatten(
        _ value: CELValue, _ depth: CELValue, meter: inout CELMeter
    ) throws(CELError) -> CELValue {
        guard case .list(let elements) = value, case .int(let levels) = depth else {
            throw CELError.noOverload("flatten", value, depth)
        }
        guard levels >= 0 else { throw CELError(.invalidArgument, "level must be non-negative") }
        // The same list may appear many times, so the elements to visit can be far more than the
        // input holds (and than the result, for empty lists): each one is metered.
        func flatten(_ elements: [CELValue], _ levels: Int64, into output: inout [CELValue]) throws(CELError) {
            for element in elements {
                try meter.take(1)
                guard meter.used <= CELLimits.maxResultSize else { throw CELLimits.resultTooLarge("flatten") }
                if levels > 0, case .list(let inner) = element {
                    try flatten(inner, levels - 1, into: &output)
                } else {
                    output.append(element)
                }
            }
        }
        var output: [CELValue] = []
        try flatten(elements, levels, into: &output)
        return .list(output)
    }

    private static func distinct(_ value: CELValue) throws(CELError) -> CELValue {
        guard case .list(let elements) = value else { throw CELError.noOverload("distinct", value) }
        var output: [CELValue] = []
        for element in elements where !output.contains(where: { CELValue.celEquals($0, element) }) {
            output.append(element)
        }
        return .list(output)
    }
}

/// Standard base64 (RFC 4648 §4) with padding; decoding also accepts unpadded input, as cel-go does.
enum CELBase64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var output: [UInt8] = []
        output.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index < bytes.count {
            let b0 = UInt32(bytes[index])
            let b1 = index + 1 < bytes.count ? UInt32(bytes[index + 1]) : 0
            let b2 = index + 2 < bytes.count ? UInt32(bytes[index + 2]) : 0
            let triple = b0 << 16 | b1 << 8 | b2
            output.append(alphabet[Int(triple >> 18 & 63)])
            output.append(alphabet[Int(triple >> 12 & 63)])
            output.append(index + 1 < bytes.count ? alphabet[Int(triple >> 6 & 63)] : UInt8(ascii: "="))
            output.append(index + 2 < bytes.count ? alphabet[Int(triple & 63)] : UInt8(ascii: "="))
            index += 3
        }
        return String(decoding: output, as: UTF8.self)
    }

    static func decode(_ text: String) -> [UInt8]? {
        var values: [UInt8] = []
        var padding = 0
        for byte in text.utf8 {
            if byte == UInt8(ascii: "=") {
                padding += 1
                continue
            }
            guard padding == 0, let value = alphabet.firstIndex(of: byte) else { return nil }
            values.append(UInt8(value))
        }
        guard values.count % 4 != 1, padding <= 2, padding == 0 || (values.count + padding) % 4 == 0 else { return nil }
        var output: [UInt8] = []
        var index = 0
        while index < values.count {
            let chunk = values[index..<min(index + 4, values.count)]
            var accumulator: UInt32 = 0
            for value in chunk { accumulator = accumulator << 6 | UInt32(value) }
            accumulator <<= UInt32(6 * (4 - chunk.count))
            output.append(UInt8(accumulator >> 16 & 0xFF))
            if chunk.count > 2 { output.append(UInt8(accumulator >> 8 & 0xFF)) }
            if chunk.count > 3 { output.append(UInt8(accumulator & 0xFF)) }
            index += 4
        }
        return output
    }
}
