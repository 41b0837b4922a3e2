/// Field selection, indexing and presence tests on run-time values (cel-spec `doc/langdef.md`,
/// "Field Selection", "Macros" for `has`, and the optional-types extension's `.?` and `[?]`).
enum CELAccess {
    /// `value.field`: a map entry; on an optional, selects inside it (none stays none, a missing
    /// entry becomes none).
    static func select(_ value: CELValue, _ field: String) throws(CELError) -> CELValue {
        switch value {
        case .map(let map):
            if let found = map[field: field] { return found }
            throw CELError(.noSuchKey, "no such key: \(field)")
        case .optional(let wrapped):
            guard let wrapped else { return .optional(nil) }
            return try optionalSelect(wrapped, field)
        default:
            throw CELError(.noSuchOverload, "type '\(value.celType)' does not support field selection")
        }
    }

    /// `value.?field`: an optional of the entry, none when absent.
    static func optionalSelect(_ value: CELValue, _ field: String) throws(CELError) -> CELValue {
        switch value {
        case .map(let map): return .optional(map[field: field])
        case .optional(let wrapped):
            guard let wrapped else { return .optional(nil) }
            return try optionalSelect(wrapped, field)
        default:
            throw CELError(.noSuchOverload, "type '\(value.celType)' does not support field selection")
        }
    }

    /// `has(value.field)`.
    static func has(_ value: CELValue, _ field: String) throws(CELError) -> Bool {
        switch value {
        case .map(let map): return map.contains(key: .string(field))
        case .optional(let wrapped):
            guard let wrapped else { return false }
            return try has(wrapped, field)
        default:
            throw CELError(.noSuchOverload, "invalid type for field selection: \(value.celType)")
        }
    }

    /// The list position an index value denotes: an int, a uint, or a double with an integral value.
    static func listPosition(_ index: CELValue, count: Int) throws(CELError) -> Int? {
        let position: Int64
        switch index {
        case .int(let value): position = value
        case .uint(let value):
            guard value <= UInt64(Int64.max) else { return nil }
            position = Int64(value)
        case .double(let value):
            guard let exact = Int64(exactly: value) else {
                throw CELError(.invalidArgument, "unsupported index value: \(value)")
            }
            position = exact
        default:
            throw CELError(.noSuchOverload, "no such overload: _[_](list, \(index.celType))")
        }
        guard position >= 0, position < count else { return nil }
        return Int(position)
    }

    /// `value[index]` on lists and maps.
    static func index(_ value: CELValue, _ key: CELValue) throws(CELError) -> CELValue {
        switch value {
        case .list(let elements):
            guard let position = try listPosition(key, count: elements.count) else {
                throw CELError(.noSuchKey, "index out of range: \(key.debugDescription)")
            }
            return elements[position]
        case .map(let map):
            guard key.isValidIndexKey else { throw CELError.noOverload("_[_]", value, key) }
            if let found = map[key] { return found }
            throw CELError.noSuchKey(key)
        case .optional(let wrapped):
            guard let wrapped else { return .optional(nil) }
            return try optionalIndex(wrapped, key)
        default:
            throw CELError.noOverload("_[_]", value, key)
        }
    }

    /// `value[?index]`: an optional of the element, none when absent.
    static func optionalIndex(_ value: CELValue, _ key: CELValue) throws(CELError) -> CELValue {
        switch value {
        case .list(let elements):
            guard let position = try listPosition(key, count: elements.count) else { return .optional(nil) }
            return .optional(elements[position])
        case .map(let map):
            guard key.isValidIndexKey else { throw CELError.noOverload("_[?_]", value, key) }
            return .optional(map[key])
        case .optional(let wrapped):
            guard let wrapped else { return .optional(nil) }
            return try optionalIndex(wrapped, key)
        default:
            throw CELError.noOverload("_[?_]", value, key)
        }
    }
}

extension CELValue {
    /// Map lookups accept the key types plus doubles (compared by numeric value).
    var isValidIndexKey: Bool {
        switch self {
        case .bool, .int, .uint, .string, .double: return true
        default: return false
        }
    }
}
