import Foundation

/// A Kubernetes resource quantity (`k8s.io/apimachinery/pkg/api/resource`): a decimal number
/// with a binary (`Ki Mi Gi Ti Pi Ei`), decimal (`n u m k M G T P E`) or exponent (`e3`) suffix.
/// Values are kept exactly as `Decimal`s.
public struct CELQuantity: Sendable, Hashable, CustomStringConvertible {
    static let type = CELType.opaque("kubernetes.Quantity")

    public let value: Decimal
    private let text: String

    init(value: Decimal, text: String? = nil) {
        self.value = value
        self.text = text ?? "\(value)"
    }

    /// Parses a quantity such as `500m`, `1Gi` or `1.5e3`, or fails with `.invalidArgument`.
    public init(_ text: String) throws(CELError) {
        func fail() -> CELError {
            CELError(
                .invalidArgument,
                "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
        }
        var rest = Substring(text)
        var negative = false
        if let sign = rest.first, sign == "+" || sign == "-" {
            negative = sign == "-"
            rest = rest.dropFirst()
        }
        let numberEnd = rest.firstIndex { !($0.isASCII && ($0.isNumber || $0 == ".")) } ?? rest.endIndex
        let number = rest[..<numberEnd]
        let suffix = rest[numberEnd...]
        guard number.contains(where: \.isNumber), number.filter({ $0 == "." }).count <= 1,
            var magnitude = Decimal(string: number.hasPrefix(".") ? "0" + number : String(number))
        else { throw fail() }
        switch suffix {
        case "": break
        case "Ki", "Mi", "Gi", "Ti", "Pi", "Ei":
            let power = ["Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6][String(suffix)] ?? 0
            for _ in 0..<power { magnitude *= 1024 }
        case "n", "u", "m", "k", "M", "G", "T", "P", "E":
            let exponent =
                ["n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18][String(suffix)] ?? 0
            magnitude = Self.scale(magnitude, exponent)
        default:
            guard let first = suffix.first, first == "e" || first == "E", let exponent = Int(suffix.dropFirst()),
                abs(exponent) <= 100
            else { throw fail() }
            magnitude = Self.scale(magnitude, exponent)
        }
        self.init(value: negative ? -magnitude : magnitude, text: text)
    }

    private static func scale(_ value: Decimal, _ exponent: Int) -> Decimal {
        var result = value
        if exponent >= 0 {
            for _ in 0..<exponent { result *= 10 }
        } else {
            for _ in 0..<(-exponent) { result /= 10 }
        }
        return result
    }

    public var description: String { text }

    public static func == (lhs: CELQuantity, rhs: CELQuantity) -> Bool { lhs.value == rhs.value }
    public func hash(into hasher: inout Hasher) { hasher.combine(value) }

    func compare(_ other: CELQuantity) -> Int { value < other.value ? -1 : (value > other.value ? 1 : 0) }

    var isInteger: Bool {
        var rounded = Decimal()
        var copy = value
        NSDecimalRound(&rounded, &copy, 0, .plain)
        return rounded == value
    }
}

extension CELKubernetesLibrary {
    static let quantity: [CELFunctionDecl] = [
        .global(
            "quantity", ["string -> kubernetes.Quantity"],
            .unary { value throws(CELError) in
                guard case .string(let text) = value else { throw CELError.noOverload("quantity", value) }
                return .quantity(try CELQuantity(text))
            }),
        .global(
            "isQuantity", ["string -> bool"],
            .unary { value throws(CELError) in
                guard case .string(let text) = value else { throw CELError.noOverload("isQuantity", value) }
                return .bool((try? CELQuantity(text)) != nil)
            }),
        quantityMember("sign", "int") { .int(Int64($0.value.isZero ? 0 : ($0.value < 0 ? -1 : 1))) },
        quantityMember("isInteger", "bool") { .bool($0.isInteger) },
        .member(
            "asInteger", ["kubernetes.Quantity -> int"],
            .unary { value throws(CELError) in
                guard case .quantity(let quantity) = value else { throw CELError.noOverload("asInteger", value) }
                guard quantity.isInteger, let integer = Int64("\(quantity.value)") else {
                    throw CELError(.overflow, "cannot convert value to integer")
                }
                return .int(integer)
            }),
        quantityMember("asApproximateFloat", "double") { .double(NSDecimalNumber(decimal: $0.value).doubleValue) },
        .member(
            "add",
            [
                "kubernetes.Quantity, kubernetes.Quantity -> kubernetes.Quantity",
                "kubernetes.Quantity, int -> kubernetes.Quantity",
            ],
            .binary { a, b throws(CELError) in try arithmetic(a, b, "add", +) }),
        .member(
            "sub",
            [
                "kubernetes.Quantity, kubernetes.Quantity -> kubernetes.Quantity",
                "kubernetes.Quantity, int -> kubernetes.Quantity",
            ],
            .binary { a, b throws(CELError) in try arithmetic(a, b, "sub", -) }),
        .member(
            "isGreaterThan", ["kubernetes.Quantity, kubernetes.Quantity -> bool"],
            .binary { a, b throws(CELError) in
                .bool(try order(a, b, "isGreaterThan") > 0)
            }),
        .member(
            "isLessThan", ["kubernetes.Quantity, kubernetes.Quantity -> bool"],
            .binary { a, b throws(CELError) in
                .bool(try order(a, b, "isLessThan") < 0)
            }),
        .member(
            "compareTo", ["kubernetes.Quantity, kubernetes.Quantity -> int"],
            .binary { a, b throws(CELError) in
                .int(Int64(try order(a, b, "compareTo")))
            }),
    ]

    private static func quantityMember(
        _ name: String, _ result: String, _ read: @escaping @Sendable (CELQuantity) -> CELValue
    )
        -> CELFunctionDecl
    {
        .member(
            name, ["kubernetes.Quantity -> \(result)"],
            .unary { value throws(CELError) in
                guard case .quantity(let quantity) = value else { throw CELError.noOverload(name, value) }
                return read(quantity)
            })
    }

    private static func order(_ a: CELValue, _ b: CELValue, _ name: String) throws(CELError) -> Int {
        guard case .quantity(let x) = a, case .quantity(let y) = b else { throw CELError.noOverload(name, a, b) }
        return x.compare(y)
    }

    private static func arithmetic(
        _ a: CELValue, _ b: CELValue, _ name: String, _ operation: (Decimal, Decimal) -> Decimal
    ) throws(CELError) -> CELValue {
        guard case .quantity(let x) = a else { throw CELError.noOverload(name, a, b) }
        switch b {
        case .quantity(let y): return .quantity(CELQuantity(value: operation(x.value, y.value)))
        case .int(let y): return .quantity(CELQuantity(value: operation(x.value, Decimal(y))))
        default: throw CELError.noOverload(name, a, b)
        }
    }
}
