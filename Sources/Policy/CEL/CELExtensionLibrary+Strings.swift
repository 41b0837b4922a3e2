/// The cel-go strings extension (version 3; Kubernetes enables version 2, which lacks
/// `reverse`): `charAt indexOf lastIndexOf lowerAscii upperAscii replace split substring trim
/// join reverse strings.quote format`. Positions count code points.
enum CELExtensionLibrary {
    static let strings: [CELFunctionDecl] = [
        .member("charAt", ["string, int -> string"], .binary(charAt)),
        .member(
            "indexOf", ["string, string -> int"], cost: .traversal,
            .binary { s, t throws(CELError) in
                try indexOf(s, t, nil)
            }),
        .member("indexOf", ["string, string, int -> int"], cost: .traversal, .ternary(indexOf)),
        .member(
            "lastIndexOf", ["string, string -> int"], cost: .traversal,
            .binary { s, t throws(CELError) in
                try lastIndexOf(s, t, nil)
            }),
        .member("lastIndexOf", ["string, string, int -> int"], cost: .traversal, .ternary(lastIndexOf)),
        .member(
            "lowerAscii", ["string -> string"], cost: .traversal,
            .unary { value throws(CELError) in
                try mapASCII(value, "lowerAscii") { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 }
            }),
        .member(
            "upperAscii", ["string -> string"], cost: .traversal,
            .unary { value throws(CELError) in
                try mapASCII(value, "upperAscii") { $0 >= 97 && $0 <= 122 ? $0 - 32 : $0 }
            }),
        .member(
            "replace", ["string, string, string -> string"], cost: .traversalAndResult,
            .ternary { s, a, b throws(CELError) in
                try replace([s, a, b, .int(-1)])
            }),
        .member(
            "replace", ["string, string, string, int -> string"], cost: .traversalAndResult, .variadic(replace)),
        .member(
            "split", ["string, string -> list(string)"], cost: .traversal,
            .binary { s, t throws(CELError) in
                try split(s, t, .int(-1))
            }),
        .member("split", ["string, string, int -> list(string)"], cost: .traversal, .ternary(split)),
        .member(
            "substring", ["string, int -> string"], cost: .traversal,
            .binary { s, start throws(CELError) in
                try substring(s, start, nil)
            }),
        .member("substring", ["string, int, int -> string"], cost: .traversal, .ternary(substring)),
        .member("trim", ["string -> string"], cost: .traversal, .unary(trim)),
        .member(
            "join", ["list(string) -> string"], cost: .traversalAndResult,
            .unary { list throws(CELError) in
                try join(list, .string(""))
            }),
        .member("join", ["list(string), string -> string"], cost: .traversalAndResult, .binary(join)),
        .member("reverse", ["string -> string"], cost: .traversal, .unary(reverse)),
        .global("strings.quote", ["string -> string"], cost: .traversal, .unary(quote)),
        .member(
            "format", ["string, list(dyn) -> string"], cost: .traversal,
            .metered { args, meter throws(CELError) in
                try CELStringFormat.format(args[0], args[1], meter: &meter)
            }),
    ]

    static func scalars(_ value: CELValue, _ function: String) throws(CELError) -> [Unicode.Scalar] {
        guard case .string(let text) = value else { throw CELError.noOverload(function, value) }
        return Array(text.unicodeScalars)
    }

    static func integer(_ value: CELValue, _ function: String) throws(CELError) -> Int {
        guard case .int(let number) = value else { throw CELError.noOverload(function, value) }
        return Int(clamping: number)
    }

    static func charAt(_ subject: CELValue, _ index: CELValue) throws(CELError) -> CELValue {
        let text = try scalars(subject, "charAt")
        let position = try integer(index, "charAt")
        guard position >= 0, position <= text.count else {
            throw CELError(.invalidArgument, "index out of range: \(position)")
        }
        return .string(position == text.count ? "" : CELText.string([text[position]]))
    }

    static func indexOf(_ subject: CELValue, _ part: CELValue, _ from: CELValue?) throws(CELError) -> CELValue {
        let text = try scalars(subject, "indexOf")
        let needle = try scalars(part, "indexOf")
        let start = try from.map { value throws(CELError) in try integer(value, "indexOf") } ?? 0
        guard start >= 0, start <= text.count else { throw CELError(.invalidArgument, "index out of range: \(start)") }
        return .int(Int64(CELText.find(text, needle, from: start) ?? -1))
    }

    static func lastIndexOf(_ subject: CELValue, _ part: CELValue, _ from: CELValue?) throws(CELError) -> CELValue {
        let text = try scalars(subject, "lastIndexOf")
        let needle = try scalars(part, "lastIndexOf")
        let start = try from.map { value throws(CELError) in try integer(value, "lastIndexOf") } ?? text.count
        guard start >= 0, start <= text.count else { throw CELError(.invalidArgument, "index out of range: \(start)") }
        if needle.isEmpty { return .int(Int64(start)) }
        return .int(Int64(CELText.findLast(text, needle, from: start) ?? -1))
    }

    static func mapASCII(
        _ value: CELValue, _ function: String, _ transform: (UInt8) -> UInt8
    ) throws(CELError)
        -> CELValue
    {
        guard case .string(let text) = value else { throw CELError.noOverload(function, value) }
        return .string(String(decoding: text.utf8.map(transform), as: UTF8.self))
    }

    static func replace(_ args: [CELValue]) throws(CELError) -> CELValue {
        let text = try scalars(args[0], "replace")
        let old = try scalars(args[1], "replace")
        let new = try scalars(args[2], "replace")
        var remaining = try integer(args[3], "replace")
        if remaining < 0 { remaining = Int.max }
        var output: [Unicode.Scalar] = []
        var position = 0
        if old.isEmpty {
            // As Go's strings.Replace: insert before each code point and at the end.
            while position <= text.count {
                if remaining > 0 {
                    output += new
                    remaining -= 1
                    guard output.count <= CELLimits.maxResultSize else { throw CELLimits.resultTooLarge("replace") }
                }
                if position < text.count { output.append(text[position]) }
                position += 1
            }
            return .string(CELText.string(output))
        }
        while remaining > 0, let found = CELText.find(text, old, from: position) {
            output += text[position..<found]
            output += new
            guard output.count <= CELLimits.maxResultSize else { throw CELLimits.resultTooLarge("replace") }
            position = found + old.count
            remaining -= 1
        }
        output += text[position...]
        return .string(CELText.string(output))
    }

    static func split(_ subject: CELValue, _ separator: CELValue, _ limit: CELValue) throws(CELError) -> CELValue {
        let text = try scalars(subject, "split")
        let sep = try scalars(separator, "split")
        var count = try integer(limit, "split")
        if count == 0 { return .list([]) }
        if count < 0 { count = Int.max }
        var parts: [CELValue] = []
        if sep.isEmpty {
            for (position, scalar) in text.enumerated() {
                if parts.count == count - 1 {
                    parts.append(.string(CELText.string(text[position...])))
                    return .list(parts)
                }
                parts.append(.string(CELText.string([scalar])))
            }
            return .list(parts)
        }
        var position = 0
        while parts.count < count - 1, let found = CELText.find(text, sep, from: position) {
            parts.append(.string(CELText.string(text[position..<found])))
            position = found + sep.count
        }
        parts.append(.string(CELText.string(text[position...])))
        return .list(parts)
    }

    static func substring(_ subject: CELValue, _ start: CELValue, _ end: CELValue?) throws(CELError) -> CELValue {
        let text = try scalars(subject, "substring")
        let from = try integer(start, "substring")
        let to = try end.map { value throws(CELError) in try integer(value, "substring") } ?? text.count
        guard from >= 0, from <= text.count else { throw CELError(.invalidArgument, "index out of range: \(from)") }
        guard to >= 0, to <= text.count else { throw CELError(.invalidArgument, "index out of range: \(to)") }
        guard from <= to else {
            throw CELError(.invalidArgument, "invalid substring range. start: \(from), end: \(to)")
        }
        return .string(CELText.string(text[from..<to]))
    }

    static func trim(_ value: CELValue) throws(CELError) -> CELValue {
        let text = try scalars(value, "trim")
        guard let first = text.firstIndex(where: { !$0.properties.isWhitespace }),
            let last = text.lastIndex(where: { !$0.properties.isWhitespace })
        else { return .string("") }
        return .string(CELText.string(text[first...last]))
    }

    static func join(_ list: CELValue, _ separator: CELValue) throws(CELError) -> CELValue {
        guard case .list(let elements) = list, case .string(let sep) = separator else {
            throw CELError.noOverload("join", list, separator)
        }
        var parts: [String] = []
        var size = sep.utf8.count * max(elements.count - 1, 0)
        for element in elements {
            guard case .string(let text) = element else { throw CELError.noOverload("join", list, separator) }
            parts.append(text)
            size += text.utf8.count
        }
        guard size <= CELLimits.maxResultSize else { throw CELLimits.resultTooLarge("join") }
        return .string(parts.joined(separator: sep))
    }

    static func reverse(_ value: CELValue) throws(CELError) -> CELValue {
        .string(CELText.string(try scalars(value, "reverse").reversed()))
    }

    /// `strings.quote`: a double-quoted string with escapes for quotes, backslashes and control
    /// characters; printable Unicode is kept.
    static func quote(_ value: CELValue) throws(CELError) -> CELValue {
        guard case .string(let text) = value else { throw CELError.noOverload("strings.quote", value) }
        return .string(CELFormatting.quoted(text))
    }
}
