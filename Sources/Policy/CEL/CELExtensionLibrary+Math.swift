import Foundation

/// The cel-go math extension: `math.greatest`, `math.least`, rounding, `abs`, `sign`,
/// classification, `sqrt` and the bit operations. Bit shifts by 64 or more give 0; a negative
/// shift is an error; `bitShiftRight` on ints is a logical (unsigned) shift, as in cel-go.
extension CELExtensionLibrary {
    static let math: [CELFunctionDecl] = [
        CELFunctionDecl.global(
            "math.greatest", ["dyn -> dyn"],
            .variadic { args throws(CELError) in
                try extreme(args, "math.greatest", greatest: true)
            }
        ).variadic,
        CELFunctionDecl.global(
            "math.least", ["dyn -> dyn"],
            .variadic { args throws(CELError) in
                try extreme(args, "math.least", greatest: false)
            }
        ).variadic,
        .global(
            "math.ceil", ["double -> double"],
            .unary { value throws(CELError) in try rounding(value, "math.ceil", .up) }),
        .global(
            "math.floor", ["double -> double"],
            .unary { value throws(CELError) in
                try rounding(value, "math.floor", .down)
            }),
        .global(
            "math.round", ["double -> double"],
            .unary { value throws(CELError) in
                try rounding(value, "math.round", .toNearestOrAwayFromZero)
            }),
        .global(
            "math.trunc", ["double -> double"],
            .unary { value throws(CELError) in
                try rounding(value, "math.trunc", .towardZero)
            }),
        .global("math.abs", ["int -> int", "uint -> uint", "double -> double"], .unary(abs)),
        .global("math.sign", ["int -> int", "uint -> uint", "double -> double"], .unary(sign)),
        .global(
            "math.isNaN", ["double -> bool"],
            .unary { value throws(CELError) in
                .bool(try double(value, "math.isNaN").isNaN)
            }),
        .global(
            "math.isInf", ["double -> bool"],
            .unary { value throws(CELError) in
                .bool(try double(value, "math.isInf").isInfinite)
            }),
        .global(
            "math.isFinite", ["double -> bool"],
            .unary { value throws(CELError) in
                .bool(try double(value, "math.isFinite").isFinite)
            }),
        .global(
            "math.sqrt", ["double -> double", "int -> double", "uint -> double"],
            .unary { value throws(CELError) in
                switch value {
                case .double(let number): return .double(number.squareRoot())
                case .int(let number): return .double(Double(number).squareRoot())
                case .uint(let number): return .double(Double(number).squareRoot())
                default: throw CELError.noOverload("math.sqrt", value)
                }
            }),
        .global(
            "math.bitAnd", ["int, int -> int", "uint, uint -> uint"],
            .binary { a, b throws(CELError) in
                try bitwise(a, b, "math.bitAnd", { $0 & $1 }, { $0 & $1 })
            }),
        .global(
            "math.bitOr", ["int, int -> int", "uint, uint -> uint"],
            .binary { a, b throws(CELError) in
                try bitwise(a, b, "math.bitOr", { $0 | $1 }, { $0 | $1 })
            }),
        .global(
            "math.bitXor", ["int, int -> int", "uint, uint -> uint"],
            .binary { a, b throws(CELError) in
                try bitwise(a, b, "math.bitXor", { $0 ^ $1 }, { $0 ^ $1 })
            }),
        .global(
            "math.bitNot", ["int -> int", "uint -> uint"],
            .unary { value throws(CELError) in
                switch value {
                case .int(let number): return .int(~number)
                case .uint(let number): return .uint(~number)
                default: throw CELError.noOverload("math.bitNot", value)
                }
            }),
        .global(
            "math.bitShiftLeft", ["int, int -> int", "uint, int -> uint"],
            .binary { a, b throws(CELError) in
                try shift(a, b, "math.bitShiftLeft", left: true)
            }),
        .global(
            "math.bitShiftRight", ["int, int -> int", "uint, int -> uint"],
            .binary { a, b throws(CELError) in
                try shift(a, b, "math.bitShiftRight", left: false)
            }),
    ]

    private static func double(_ value: CELValue, _ function: String) throws(CELError) -> Double {
        guard case .double(let number) = value else { throw CELError.noOverload(function, value) }
        return number
    }

    private static func rounding(
        _ value: CELValue, _ function: String, _ rule: FloatingPointRoundingRule
    )
        throws(CELError) -> CELValue
    {
        .double(try double(value, function).rounded(rule))
    }

    private static func extreme(_ args: [CELValue], _ function: String, greatest: Bool) throws(CELError) -> CELValue {
        var candidates = args
        if args.count == 1, case .list(let elements) = args[0] { candidates = elements }
        guard var best = candidates.first else {
            throw CELError(.invalidArgument, "\(function)(): list argument must not be empty")
        }
        for candidate in candidates {
            guard candidate.celType.isNumeric else { throw CELError.noOverload(function, candidate) }
        }
        for candidate in candidates.dropFirst() {
            guard let order = CELValue.compareNumbers(candidate, best) else { continue }
            if greatest ? order > 0 : order < 0 { best = candidate }
        }
        return best
    }

    private static func abs(_ value: CELValue) throws(CELError) -> CELValue {
        switch value {
        case .int(let number):
            guard number != .min else { throw CELError.overflow("integer") }
            return .int(Swift.abs(number))
        case .uint: return value
        case .double(let number): return .double(Swift.abs(number))
        default: throw CELError.noOverload("math.abs", value)
        }
    }

    private static func sign(_ value: CELValue) throws(CELError) -> CELValue {
        switch value {
        case .int(let number): return .int(number.signum())
        case .uint(let number): return .uint(number == 0 ? 0 : 1)
        case .double(let number):
            if number.isNaN { return value }
            return .double(number > 0 ? 1 : (number < 0 ? -1 : 0))
        default: throw CELError.noOverload("math.sign", value)
        }
    }

    private static func bitwise(
        _ a: CELValue, _ b: CELValue, _ function: String, _ signed: (Int64, Int64) -> Int64,
        _ unsigned: (UInt64, UInt64) -> UInt64
    ) throws(CELError) -> CELValue {
        switch (a, b) {
        case (.int(let x), .int(let y)): return .int(signed(x, y))
        case (.uint(let x), .uint(let y)): return .uint(unsigned(x, y))
        default: throw CELError.noOverload(function, a, b)
        }
    }

    private static func shift(
        _ value: CELValue, _ amount: CELValue, _ function: String, left: Bool
    ) throws(CELError)
        -> CELValue
    {
        guard case .int(let count) = amount else { throw CELError.noOverload(function, value, amount) }
        guard count >= 0 else { throw CELError(.invalidArgument, "\(function)() negative offset: \(count)") }
        let bits: UInt64
        switch value {
        case .int(let number): bits = UInt64(bitPattern: number)
        case .uint(let number): bits = number
        default: throw CELError.noOverload(function, value, amount)
        }
        let shifted = count >= 64 ? 0 : (left ? bits << UInt64(count) : bits >> UInt64(count))
        if case .int = value { return .int(Int64(bitPattern: shifted)) }
        return .uint(shifted)
    }
}
