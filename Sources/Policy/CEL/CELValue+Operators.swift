/// The arithmetic, equality and ordering operators (cel-spec `doc/langdef.md`, "Arithmetic",
/// "Equality" and "Ordering"), with int64/uint64 overflow errors and cross-type numeric
/// comparison as cel-go's `CrossTypeNumericComparisons` defines it (used by Kubernetes).
extension CELValue {
    // MARK: Equality

    /// CEL's `==`: numbers compare by value across int, uint and double; NaN is unequal to
    /// everything; lists and maps compare element-wise; values of different types are unequal.
    public static func celEquals(_ lhs: CELValue, _ rhs: CELValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.int(let a), .int(let b)): return a == b
        case (.uint(let a), .uint(let b)): return a == b
        case (.double(let a), .double(let b)): return a == b
        case (.int, .uint), (.uint, .int), (.int, .double), (.double, .int), (.uint, .double), (.double, .uint):
            return compareNumbers(lhs, rhs) == 0
        case (.string(let a), .string(let b)): return CELText.equal(a, b)
        case (.bytes(let a), .bytes(let b)): return a == b
        case (.list(let a), .list(let b)):
            guard a.count == b.count else { return false }
            for (x, y) in zip(a, b) where !celEquals(x, y) { return false }
            return true
        case (.map(let a), .map(let b)):
            guard a.count == b.count else { return false }
            for (key, value) in a {
                guard let other = b[key], celEquals(value, other) else { return false }
            }
            return true
        case (.timestamp(let a), .timestamp(let b)): return a == b
        case (.duration(let a), .duration(let b)): return a == b
        case (.type(let a), .type(let b)): return a.runtimeType == b.runtimeType
        case (.optional(let a), .optional(let b)):
            switch (a, b) {
            case (nil, nil): return true
            case (let x?, let y?): return celEquals(x, y)
            default: return false
            }
        case (.url(let a), .url(let b)): return a == b
        case (.ip(let a), .ip(let b)): return a == b
        case (.cidr(let a), .cidr(let b)): return a == b
        case (.quantity(let a), .quantity(let b)): return a.compare(b) == 0
        default: return false
        }
    }

    // MARK: Ordering

    /// Compares two numbers of any numeric kinds exactly; nil when either is NaN.
    static func compareNumbers(_ lhs: CELValue, _ rhs: CELValue) -> Int? {
        switch (lhs, rhs) {
        case (.int(let a), .int(let b)): return a < b ? -1 : (a > b ? 1 : 0)
        case (.uint(let a), .uint(let b)): return a < b ? -1 : (a > b ? 1 : 0)
        case (.double(let a), .double(let b)):
            if a.isNaN || b.isNaN { return nil }
            return a < b ? -1 : (a > b ? 1 : 0)
        case (.int(let a), .uint(let b)):
            if a < 0 { return -1 }
            return UInt64(a) < b ? -1 : (UInt64(a) > b ? 1 : 0)
        case (.uint, .int): return compareNumbers(rhs, lhs).map { -$0 }
        // As cel-go: an int or uint meets a double as a (possibly rounded) double.
        case (.int(let a), .double(let b)): return compareNumbers(.double(Double(a)), .double(b))
        case (.uint(let a), .double(let b)): return compareNumbers(.double(Double(a)), .double(b))
        case (.double, .int), (.double, .uint): return compareNumbers(rhs, lhs).map { -$0 }
        default: return nil
        }
    }

    /// The order of two values for `<`, `<=`, `>`, `>=`; nil for NaN; an error for unordered types.
    static func compare(_ lhs: CELValue, _ rhs: CELValue, _ op: CELBinaryOperator) throws(CELError) -> Int? {
        switch (lhs, rhs) {
        case (.int, .int), (.uint, .uint), (.double, .double), (.int, .uint), (.uint, .int), (.int, .double),
            (.double, .int), (.uint, .double), (.double, .uint):
            return compareNumbers(lhs, rhs)
        case (.string(let a), .string(let b)):
            // Code point order equals UTF-8 byte order.
            return a.utf8.lexicographicallyPrecedes(b.utf8) ? -1 : (a == b ? 0 : 1)
        case (.bytes(let a), .bytes(let b)): return a.lexicographicallyPrecedes(b) ? -1 : (a == b ? 0 : 1)
        case (.bool(let a), .bool(let b)): return a == b ? 0 : (a ? 1 : -1)
        case (.timestamp(let a), .timestamp(let b)): return a < b ? -1 : (a == b ? 0 : 1)
        case (.duration(let a), .duration(let b)): return a < b ? -1 : (a == b ? 0 : 1)
        default: throw CELError.noOverload(op.functionName, lhs, rhs)
        }
    }

    // MARK: Arithmetic

    static func add(_ lhs: CELValue, _ rhs: CELValue) throws(CELError) -> CELValue {
        switch (lhs, rhs) {
        case (.int(let a), .int(let b)):
            let (result, overflow) = a.addingReportingOverflow(b)
            if overflow { throw CELError.overflow("integer") }
            return .int(result)
        case (.uint(let a), .uint(let b)):
            let (result, overflow) = a.addingReportingOverflow(b)
            if overflow { throw CELError.overflow("unsigned integer") }
            return .uint(result)
        case (.double(let a), .double(let b)): return .double(a + b)
        case (.string(let a), .string(let b)): return .string(a + b)
        case (.bytes(let a), .bytes(let b)): return .bytes(a + b)
        case (.list(let a), .list(let b)): return .list(a + b)
        case (.timestamp(let a), .duration(let b)), (.duration(let b), .timestamp(let a)):
            return .timestamp(try a.adding(b))
        case (.duration(let a), .duration(let b)):
            let (result, overflow) = a.nanoseconds.addingReportingOverflow(b.nanoseconds)
            if overflow { throw CELError.overflow("duration") }
            return .duration(CELDuration(nanoseconds: result))
        default: throw CELError.noOverload("_+_", lhs, rhs)
        }
    }

    static func subtract(_ lhs: CELValue, _ rhs: CELValue) throws(CELError) -> CELValue {
        switch (lhs, rhs) {
        case (.int(let a), .int(let b)):
            let (result, overflow) = a.subtractingReportingOverflow(b)
            if overflow { throw CELError.overflow("integer") }
            return .int(result)
        case (.uint(let a), .uint(let b)):
            let (result, overflow) = a.subtractingReportingOverflow(b)
            if overflow { throw CELError.overflow("unsigned integer") }
            return .uint(result)
        case (.double(let a), .double(let b)): return .double(a - b)
        case (.timestamp(let a), .timestamp(let b)): return .duration(try a.difference(b))
        case (.timestamp(let a), .duration(let b)):
            guard b.nanoseconds != .min else { throw CELError.overflow("timestamp") }
            return .timestamp(try a.adding(CELDuration(nanoseconds: -b.nanoseconds)))
        case (.duration(let a), .duration(let b)):
            let (result, overflow) = a.nanoseconds.subtractingReportingOverflow(b.nanoseconds)
            if overflow { throw CELError.overflow("duration") }
            return .duration(CELDuration(nanoseconds: result))
        default: throw CELError.noOverload("_-_", lhs, rhs)
        }
    }

    static func multiply(_ lhs: CELValue, _ rhs: CELValue) throws(CELError) -> CELValue {
        switch (lhs, rhs) {
        case (.int(let a), .int(let b)):
            let (result, overflow) = a.multipliedReportingOverflow(by: b)
            if overflow { throw CELError.overflow("integer") }
            return .int(result)
        case (.uint(let a), .uint(let b)):
            let (result, overflow) = a.multipliedReportingOverflow(by: b)
            if overflow { throw CELError.overflow("unsigned integer") }
            return .uint(result)
        case (.double(let a), .double(let b)): return .double(a * b)
        default: throw CELError.noOverload("_*_", lhs, rhs)
        }
    }

    static func divide(_ lhs: CELValue, _ rhs: CELValue) throws(CELError) -> CELValue {
        switch (lhs, rhs) {
        case (.int(let a), .int(let b)):
            if b == 0 { throw CELError(.divideByZero, "division by zero") }
            if a == .min && b == -1 { throw CELError.overflow("integer") }
            return .int(a / b)
        case (.uint(let a), .uint(let b)):
            if b == 0 { throw CELError(.divideByZero, "division by zero") }
            return .uint(a / b)
        case (.double(let a), .double(let b)): return .double(a / b)
        default: throw CELError.noOverload("_/_", lhs, rhs)
        }
    }

    static func modulo(_ lhs: CELValue, _ rhs: CELValue) throws(CELError) -> CELValue {
        switch (lhs, rhs) {
        case (.int(let a), .int(let b)):
            if b == 0 { throw CELError(.divideByZero, "modulus by zero") }
            if a == .min && b == -1 { throw CELError.overflow("integer") }
            return .int(a % b)
        case (.uint(let a), .uint(let b)):
            if b == 0 { throw CELError(.divideByZero, "modulus by zero") }
            return .uint(a % b)
        default: throw CELError.noOverload("_%_", lhs, rhs)
        }
    }

    static func negate(_ value: CELValue) throws(CELError) -> CELValue {
        switch value {
        case .int(let a):
            if a == .min { throw CELError.overflow("integer") }
            return .int(-a)
        case .double(let a): return .double(-a)
        case .duration(let a):
            if a.nanoseconds == .min { throw CELError.overflow("duration") }
            return .duration(CELDuration(nanoseconds: -a.nanoseconds))
        default: throw CELError.noOverload("-_", value)
        }
    }

    static func logicalNot(_ value: CELValue) throws(CELError) -> CELValue {
        guard case .bool(let a) = value else { throw CELError.noOverload("!_", value) }
        return .bool(!a)
    }

    /// `element in collection`: list membership by CEL equality, or map key presence.
    static func contains(_ collection: CELValue, _ element: CELValue) throws(CELError) -> Bool {
        switch collection {
        case .list(let elements):
            for candidate in elements where celEquals(candidate, element) { return true }
            return false
        case .map(let map):
            return map.contains(key: element)
        default:
            throw CELError.noOverload("@in", element, collection)
        }
    }

    /// Applies a binary operator.
    static func apply(_ op: CELBinaryOperator, _ lhs: CELValue, _ rhs: CELValue) throws(CELError) -> CELValue {
        switch op {
        case .add: return try add(lhs, rhs)
        case .subtract: return try subtract(lhs, rhs)
        case .multiply: return try multiply(lhs, rhs)
        case .divide: return try divide(lhs, rhs)
        case .modulo: return try modulo(lhs, rhs)
        case .equal: return .bool(celEquals(lhs, rhs))
        case .notEqual: return .bool(!celEquals(lhs, rhs))
        case .less: return .bool(try compare(lhs, rhs, op).map { $0 < 0 } ?? false)
        case .lessOrEqual: return .bool(try compare(lhs, rhs, op).map { $0 <= 0 } ?? false)
        case .greater: return .bool(try compare(lhs, rhs, op).map { $0 > 0 } ?? false)
        case .greaterOrEqual: return .bool(try compare(lhs, rhs, op).map { $0 >= 0 } ?? false)
        case .in: return .bool(try contains(rhs, lhs))
        }
    }
}
