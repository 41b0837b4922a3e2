/// The optional-types extension Kubernetes enables: `optional.of`, `optional.none`,
/// `optional.ofNonZeroValue`, `hasValue`, `value`, `orValue`, `or` (the `.?`/`[?]` syntax is in
/// `CELAccess`, `optMap`/`optFlatMap` are macros).
extension CELStandardLibrary {
    static let optionals: [CELFunctionDecl] = [
        .global("optional.of", ["T -> optional(T)"], .unary { value throws(CELError) in .optional(value) }),
        .global("optional.none", [" -> optional(T)"], .variadic { _ throws(CELError) in .optional(nil) }),
        .global(
            "optional.ofNonZeroValue", ["T -> optional(T)"],
            .unary { value throws(CELError) in
                .optional(value.isZeroValue ? nil : value)
            }),
        .member(
            "hasValue", ["optional(T) -> bool"],
            .unary { value throws(CELError) in
                guard case .optional(let wrapped) = value else { throw CELError.noOverload("hasValue", value) }
                return .bool(wrapped != nil)
            }),
        .member(
            "value", ["optional(T) -> T"],
            .unary { value throws(CELError) in
                guard case .optional(let wrapped) = value else { throw CELError.noOverload("value", value) }
                guard let wrapped else { throw CELError(.invalidArgument, "optional.none() dereference") }
                return wrapped
            }),
        .member(
            "orValue", ["optional(T), T -> T"],
            .binary { value, fallback throws(CELError) in
                guard case .optional(let wrapped) = value else { throw CELError.noOverload("orValue", value, fallback) }
                return wrapped ?? fallback
            }),
        .member(
            "or", ["optional(T), optional(T) -> optional(T)"],
            .binary { value, other throws(CELError) in
                guard case .optional(let wrapped) = value, case .optional = other else {
                    throw CELError.noOverload("or", value, other)
                }
                return wrapped != nil ? value : other
            }),
    ]
}

extension CELValue {
    /// Whether the value is its type's zero value (`optional.ofNonZeroValue`).
    var isZeroValue: Bool {
        switch self {
        case .null: return true
        case .bool(let flag): return !flag
        case .int(let number): return number == 0
        case .uint(let number): return number == 0
        case .double(let number): return number == 0
        case .string(let text): return text.isEmpty
        case .bytes(let bytes): return bytes.isEmpty
        case .list(let elements): return elements.isEmpty
        case .map(let map): return map.isEmpty
        case .duration(let duration): return duration.nanoseconds == 0
        case .timestamp(let timestamp): return timestamp.seconds == 0 && timestamp.nanos == 0
        case .optional(let wrapped): return wrapped == nil
        default: return false
        }
    }
}
