/// A CEL value (cel-spec `doc/langdef.md`, "Values").
///
/// Swift's `==` on `CELValue` is structural: `.int(1) != .uint(1)`, and NaN equals NaN so the
/// type can be `Hashable`. CEL's own `==` operator (heterogeneous numbers, NaN unequal) is
/// `CELValue.celEquals(_:_:)`.
public enum CELValue: Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    case uint(UInt64)
    case double(Double)
    case string(String)
    case bytes([UInt8])
    case list([CELValue])
    case map(CELMap)
    case timestamp(CELTimestamp)
    case duration(CELDuration)
    /// A type value, such as the result of `type(x)` or the identifier `int`.
    case type(CELType)
    /// An optional value (optional-types extension): `.optional(nil)` is `optional.none()`.
    indirect case optional(CELValue?)
    /// `url(s)` of the Kubernetes URLs library.
    indirect case url(CELURL)
    /// `ip(s)` of the Kubernetes IP library.
    indirect case ip(CELIPAddress)
    /// `cidr(s)` of the Kubernetes CIDR library.
    indirect case cidr(CELCIDR)
    /// `quantity(s)` of the Kubernetes quantity library.
    indirect case quantity(CELQuantity)

    /// The run-time type of the value, as `type(value)` reports it.
    public var celType: CELType {
        switch self {
        case .null: return .null
        case .bool: return .bool
        case .int: return .int
        case .uint: return .uint
        case .double: return .double
        case .string: return .string
        case .bytes: return .bytes
        case .list: return .dynList
        case .map: return .dynMap
        case .timestamp: return .timestamp
        case .duration: return .duration
        case .type: return .type(.dyn)
        case .optional: return .optional(.dyn)
        case .url: return CELURL.type
        case .ip: return CELIPAddress.type
        case .cidr: return CELCIDR.type
        case .quantity: return CELQuantity.type
        }
    }
}

// MARK: - Structural equality and hashing

extension CELValue: Hashable {
    public static func == (lhs: CELValue, rhs: CELValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.int(let a), .int(let b)): return a == b
        case (.uint(let a), .uint(let b)): return a == b
        case (.double(let a), .double(let b)): return a == b || (a.isNaN && b.isNaN)
        case (.string(let a), .string(let b)): return CELText.equal(a, b)
        case (.bytes(let a), .bytes(let b)): return a == b
        case (.list(let a), .list(let b)): return a == b
        case (.map(let a), .map(let b)): return a == b
        case (.timestamp(let a), .timestamp(let b)): return a == b
        case (.duration(let a), .duration(let b)): return a == b
        case (.type(let a), .type(let b)): return a == b
        case (.optional(let a), .optional(let b)): return a == b
        case (.url(let a), .url(let b)): return a == b
        case (.ip(let a), .ip(let b)): return a == b
        case (.cidr(let a), .cidr(let b)): return a == b
        case (.quantity(let a), .quantity(let b)): return a == b
        default: return false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .null: hasher.combine(0)
        case .bool(let value): hasher.combine(value)
        case .int(let value): hasher.combine(value)
        case .uint(let value): hasher.combine(value)
        case .double(let value): hasher.combine(value.isNaN ? .nan : value)
        case .string(let value): CELText.hash(value, into: &hasher)
        case .bytes(let value): hasher.combine(value)
        case .list(let value): hasher.combine(value)
        case .map(let value): hasher.combine(value)
        case .timestamp(let value): hasher.combine(value)
        case .duration(let value): hasher.combine(value)
        case .type(let value): hasher.combine(value)
        case .optional(let value): hasher.combine(value)
        case .url(let value): hasher.combine(value)
        case .ip(let value): hasher.combine(value)
        case .cidr(let value): hasher.combine(value)
        case .quantity(let value): hasher.combine(value)
        }
    }
}

// MARK: - Literals, for tests and callers building activations by hand

extension CELValue: ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral,
    ExpressibleByDictionaryLiteral
{
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: CELValue...) { self = .list(elements) }
    /// Builds a map; a repeated key keeps the last value.
    public init(dictionaryLiteral elements: (CELValue, CELValue)...) {
        self = .map(CELMap(uniqueKeysWithLastValues: elements))
    }
}

// MARK: - Printing

extension CELValue: CustomStringConvertible, CustomDebugStringConvertible {
    public var description: String { debugDescription }

    /// A CEL-like rendering of the value, used in error messages and test output.
    public var debugDescription: String {
        switch self {
        case .null: return "null"
        case .bool(let value): return value ? "true" : "false"
        case .int(let value): return String(value)
        case .uint(let value): return "\(value)u"
        case .double(let value): return CELFormatting.double(value)
        case .string(let value): return CELFormatting.quoted(value)
        case .bytes(let value): return "b" + CELFormatting.quoted(String(decoding: value, as: UTF8.self))
        case .list(let elements): return "[" + elements.map(\.debugDescription).joined(separator: ", ") + "]"
        case .map(let map):
            return "{" + map.map { "\($0.key.debugDescription): \($0.value.debugDescription)" }.joined(separator: ", ")
                + "}"
        case .timestamp(let value): return "timestamp(\"\(value.rfc3339)\")"
        case .duration(let value): return "duration(\"\(value.goString)\")"
        case .type(let type): return type.description
        case .optional(nil): return "optional.none()"
        case .optional(let value?): return "optional.of(\(value.debugDescription))"
        case .url(let url): return "url(\"\(url.source)\")"
        case .ip(let ip): return "ip(\"\(ip.description)\")"
        case .cidr(let cidr): return "cidr(\"\(cidr.description)\")"
        case .quantity(let quantity): return "quantity(\"\(quantity.description)\")"
        }
    }
}

/// Formatting shared by printing and `string()` conversions.
enum CELFormatting {
    /// Doubles as cel-go's `string(double)` prints them: Go's `strconv.FormatFloat(d, 'g', -1, 64)`,
    /// the shortest round-trip digits, with an exponent when it is below -4 or at least 6.
    static func double(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value < 0 ? "-Inf" : "+Inf" }
        if value == 0 { return value.sign == .minus ? "-0" : "0" }
        let (digits, pointPosition) = shortestDigits(abs(value))
        let sign = value < 0 ? "-" : ""
        let exponent = pointPosition - 1
        if exponent < -4 || exponent >= 6 {
            var mantissa = String(digits.prefix(1))
            if digits.count > 1 { mantissa += "." + digits.dropFirst() }
            let magnitude = abs(exponent)
            return sign + mantissa + "e" + (exponent < 0 ? "-" : "+") + (magnitude < 10 ? "0" : "") + String(magnitude)
        }
        return sign + positional(digits, pointPosition: pointPosition)
    }

    /// Places the decimal point in a digit string: `("12345", 2)` is `"12.345"`.
    static func positional(_ digits: String, pointPosition: Int) -> String {
        if pointPosition <= 0 { return "0." + String(repeating: "0", count: -pointPosition) + digits }
        if pointPosition >= digits.count { return digits + String(repeating: "0", count: pointPosition - digits.count) }
        let split = digits.index(digits.startIndex, offsetBy: pointPosition)
        return digits[..<split] + "." + digits[split...]
    }

    /// The shortest decimal digits that round-trip `value` (positive, finite), and the position of
    /// the decimal point relative to the first digit, from Swift's shortest-representation printing.
    static func shortestDigits(_ value: Double) -> (digits: String, pointPosition: Int) {
        let text = value.description
        var mantissa = Substring(text)
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            mantissa = text[..<e]
            exponent = Int(text[text.index(after: e)...]) ?? 0
        }
        var digits = ""
        var pointPosition = 0
        var seenPoint = false
        for character in mantissa {
            if character == "." {
                seenPoint = true
            } else {
                digits.append(character)
                if !seenPoint { pointPosition += 1 }
            }
        }
        while digits.hasPrefix("0") && digits.count > 1 {
            digits.removeFirst()
            pointPosition -= 1
        }
        while digits.hasSuffix("0") && digits.count > 1 { digits.removeLast() }
        return (digits, pointPosition + exponent)
    }

    /// A double-quoted CEL string literal with escapes for quotes, backslashes and control characters.
    static func quoted(_ text: String) -> String {
        var output = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            case "\u{07}": output += "\\a"
            case "\u{08}": output += "\\b"
            case "\u{0C}": output += "\\f"
            case "\u{0B}": output += "\\v"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    output += "\\x" + (scalar.value < 16 ? "0" : "") + String(scalar.value, radix: 16)
                } else {
                    output.unicodeScalars.append(scalar)
                }
            }
        }
        return output + "\""
    }
}
