/// A CEL map value: insertion-ordered entries with keys of type bool, int, uint or string.
///
/// Lookups follow cel-spec "Numeric values" heterogeneous equality: `{1: 'a'}[1u]` and
/// `{1: 'a'}[1.0]` find the entry. Small maps are searched linearly; larger ones keep a hash
/// index. The storage is immutable and shared, so copying a map is cheap.
///
/// A map made from parsed JSON with `CELValue(deferredJSONObject:)` converts each value the first
/// time it is read (see ``CELDeferredValues``); it is otherwise the same map.
public struct CELMap: Sendable, Hashable, Sequence {
    public typealias Element = (key: CELValue, value: CELValue)

    private final class Storage: Sendable {
        let keys: [CELValue]
        /// The values, unless `deferred` holds them.
        let values: [CELValue]
        let deferred: CELDeferredValues?
        let index: [CELMapKey: Int]?
        /// `shape.number` of a record built over a shape (its keys are the shape's), else nil.
        let shapeNumber: Int?

        init(
            keys: [CELValue], values: [CELValue], deferred: CELDeferredValues? = nil, index: [CELMapKey: Int]?,
            shapeNumber: Int? = nil
        ) {
            self.keys = keys
            self.values = values
            self.deferred = deferred
            self.index = index
            self.shapeNumber = shapeNumber
        }

        @inline(__always)
        func value(at position: Int) -> CELValue {
            if let deferred { return deferred.value(at: position) }
            return values[position]
        }
    }

    /// Maps up to this many entries are searched linearly instead of through a hash index.
    static let linearSearchLimit = 8

    private let storage: Storage

    public static let empty = CELMap(validatedKeys: [], values: [], index: nil)

    private init(validatedKeys keys: [CELValue], values: [CELValue], index: [CELMapKey: Int]?) {
        storage = Storage(keys: keys, values: values, index: index)
    }

    /// Builds a map from entries, rejecting invalid key types and duplicate keys (cel-spec
    /// "Maps": keys may only be int, uint, bool or string).
    public init(entries: some Sequence<(CELValue, CELValue)>) throws(CELError) {
        var builder = Builder()
        for (key, value) in entries { try builder.add(key, value) }
        self = builder.build()
    }

    /// Builds a map where a repeated key keeps the last value, and keys of invalid types are dropped.
    public init(uniqueKeysWithLastValues entries: some Sequence<(CELValue, CELValue)>) {
        var builder = Builder()
        for (key, value) in entries { builder.set(key, value) }
        self = builder.build()
    }

    /// Builds a map with string keys, as JSON objects have.
    public init(_ dictionary: [String: CELValue]) {
        var builder = Builder()
        for (key, value) in dictionary.sorted(by: { $0.key < $1.key }) { builder.set(.string(key), value) }
        self = builder.build()
    }

    /// A record-like map whose string keys are distinct and already in ascending order, the
    /// order `init(_:)` gives: built without a dictionary in between, for the maps the engine
    /// makes on every request. Up to `recordFieldLimit` fields are searched linearly, which is
    /// cheaper than hashing for a handful of short names.
    init(orderedFields fields: [(String, CELValue)]) {
        assert(zip(fields, fields.dropFirst()).allSatisfy { $0.0 < $1.0 }, "fields must be distinct and sorted")
        let keys = fields.map { CELValue.string($0.0) }
        var index: [CELMapKey: Int]?
        if keys.count > Self.recordFieldLimit {
            index = Dictionary(uniqueKeysWithValues: fields.enumerated().map { (.string(CELStringKey($1.0)), $0) })
        }
        storage = Storage(keys: keys, values: fields.map(\.1), index: index)
    }

    /// Records up to this many fields are searched linearly.
    static let recordFieldLimit = 16

    /// A record whose keys, distinct string values in ascending order, are built once and shared
    /// by every map made from them (the engine's per-request variables): one allocation fewer per
    /// map than `init(orderedFields:)`, and no key strings copied. Up to `recordFieldLimit` keys
    /// are searched linearly, as there.
    init(recordKeys keys: [CELValue], values: [CELValue]) {
        assert(keys.count == values.count, "a value for each key")
        assert(
            zip(keys, keys.dropFirst()).allSatisfy {
                if case .string(let a) = $0, case .string(let b) = $1 { return a < b }
                return false
            }, "keys must be distinct strings in ascending order")
        var index: [CELMapKey: Int]?
        if keys.count > Self.recordFieldLimit {
            index = Dictionary(
                uniqueKeysWithValues: keys.enumerated().compactMap { position, key in
                    CELMapKey(key: key).map { ($0, position) }
                })
        }
        storage = Storage(keys: keys, values: values, index: index)
    }

    /// A record over the keys of `shape`, one value for each, in the same order: searched like
    /// `init(recordKeys:values:)`, and read by position by field chains planned against the shape.
    init(shape: CELRecordShape, values: [CELValue]) {
        assert(shape.keys.count == values.count, "a value for each key")
        assert(shape.keys.count <= Self.recordFieldLimit, "shaped records are searched linearly")
        storage = Storage(keys: shape.keys, values: values, index: nil, shapeNumber: shape.number)
    }

    /// The shape the record was built over (`CELRecordShape.known[shapeNumber]`), if any.
    @inline(__always)
    var shapeNumber: Int? { storage.shapeNumber }

    /// The value at a position of the record's shape (`CELFieldChain` finds it when planning).
    @inline(__always)
    func value(atShapePosition position: Int) -> CELValue { storage.values[position] }

    /// A map over string keys whose values are converted when first read: `keys` must be distinct,
    /// in ascending order, and as many as `deferred` holds.
    init(deferredKeys keys: [String], values deferred: CELDeferredValues) {
        let keyValues = keys.map(CELValue.string)
        var index: [CELMapKey: Int]?
        if keys.count > Self.linearSearchLimit {
            index = Dictionary(uniqueKeysWithValues: keys.enumerated().map { (.string(CELStringKey($1)), $0) })
        }
        storage = Storage(keys: keyValues, values: [], deferred: deferred, index: index)
    }

    /// The deferred values, for tests that check what was converted.
    var deferredValues: CELDeferredValues? { storage.deferred }

    public var count: Int { storage.keys.count }
    public var isEmpty: Bool { storage.keys.isEmpty }
    public var keys: [CELValue] { storage.keys }
    public var values: [CELValue] {
        guard storage.deferred != nil else { return storage.values }
        return storage.keys.indices.map(storage.value(at:))
    }

    /// Whether the map has `key`, without reading (or converting) its value.
    public func contains(key: CELValue) -> Bool { position(of: key) != nil }

    /// The value for `key`, using CEL's heterogeneous numeric key equality.
    public subscript(key: CELValue) -> CELValue? {
        guard let position = position(of: key) else { return nil }
        return storage.value(at: position)
    }

    private func position(of key: CELValue) -> Int? {
        if let index = storage.index {
            guard let mapKey = CELMapKey(lookup: key) else { return nil }
            return index[mapKey]
        }
        if case .string(let text) = key {
            // Lengths first: most keys of a record differ from the field in length, and the
            // length of a native string is stored, while comparing bytes is a call.
            let length = text.utf8.count
            for (position, candidate) in storage.keys.enumerated() {
                if case .string(let other) = candidate, other.utf8.count == length, CELText.equal(other, text) {
                    return position
                }
            }
            return nil
        }
        guard let mapKey = CELMapKey(lookup: key) else { return nil }
        for (position, candidate) in storage.keys.enumerated() where CELMapKey(lookup: candidate) == mapKey {
            return position
        }
        return nil
    }

    /// The value for a string key: the hot path of field selection (`object.spec`).
    @inline(__always)
    public subscript(field field: String) -> CELValue? { self[.string(field)] }

    public func makeIterator() -> some IteratorProtocol<Element> {
        zip(storage.keys, values).lazy.map { (key: $0.0, value: $0.1) }.makeIterator()
    }

    public static func == (lhs: CELMap, rhs: CELMap) -> Bool {
        if lhs.storage === rhs.storage { return true }
        guard lhs.count == rhs.count else { return false }
        for (key, value) in lhs {
            guard let other = rhs[key], other == value else { return false }
            // Structural equality also needs the same key kinds (1 and 1u differ).
            guard rhs.keys.contains(where: { $0 == key }) else { return false }
        }
        return true
    }

    public func hash(into hasher: inout Hasher) {
        // Order-independent: combine per-entry hashes commutatively.
        var combined = 0
        for (key, value) in self {
            var entry = Hasher()
            entry.combine(key)
            entry.combine(value)
            combined ^= entry.finalize()
        }
        hasher.combine(count)
        hasher.combine(combined)
    }

    /// Accumulates entries in order, then builds an immutable map.
    public struct Builder {
        private var keys: [CELValue] = []
        private var values: [CELValue] = []
        private var mapKeys: [CELMapKey] = []
        /// Built only once the map outgrows `linearSearchLimit`.
        private var index: [CELMapKey: Int]?

        public init() {}

        private func position(of mapKey: CELMapKey) -> Int? {
            if let index { return index[mapKey] }
            return mapKeys.firstIndex(of: mapKey)
        }

        private mutating func append(_ key: CELValue, _ mapKey: CELMapKey, _ value: CELValue) {
            keys.append(key)
            values.append(value)
            mapKeys.append(mapKey)
            if index != nil {
                index?[mapKey] = keys.count - 1
            } else if keys.count > CELMap.linearSearchLimit {
                index = Dictionary(uniqueKeysWithValues: mapKeys.enumerated().map { ($0.element, $0.offset) })
            }
        }

        /// Adds an entry; a key of an invalid type or a repeated key is an error.
        public mutating func add(_ key: CELValue, _ value: CELValue) throws(CELError) {
            guard let mapKey = CELMapKey(key: key) else {
                throw CELError(.invalidArgument, "unsupported key type: \(key.celType)")
            }
            guard position(of: mapKey) == nil else {
                throw CELError(.invalidArgument, "Failed with repeated key: \(key.debugDescription)")
            }
            append(key, mapKey, value)
        }

        /// Adds or replaces an entry; keys of invalid types are ignored.
        public mutating func set(_ key: CELValue, _ value: CELValue) {
            guard let mapKey = CELMapKey(key: key) else { return }
            if let existing = position(of: mapKey) {
                values[existing] = value
            } else {
                append(key, mapKey, value)
            }
        }

        public func build() -> CELMap {
            CELMap(validatedKeys: keys, values: values, index: index)
        }
    }
}

/// A map key normalised for CEL's heterogeneous equality: numbers are compared by value.
enum CELMapKey: Hashable, Sendable {
    case bool(Bool)
    case integer(Int64)
    /// A uint above `Int64.max`.
    case largeUnsigned(UInt64)
    case string(CELStringKey)

    /// The key of a map entry; only bool, int, uint and string values are valid keys.
    init?(key: CELValue) {
        switch key {
        case .bool(let value): self = .bool(value)
        case .int(let value): self = .integer(value)
        case .uint(let value): self = value <= UInt64(Int64.max) ? .integer(Int64(value)) : .largeUnsigned(value)
        case .string(let value): self = .string(CELStringKey(value))
        default: return nil
        }
    }

    /// The key to look up: also accepts a double with an integral value.
    init?(lookup: CELValue) {
        if case .double(let value) = lookup {
            if let exact = Int64(exactly: value) {
                self = .integer(exact)
            } else if let exact = UInt64(exactly: value) {
                self = .largeUnsigned(exact)
            } else {
                return nil
            }
            return
        }
        self.init(key: lookup)
    }
}

/// A string compared and hashed by its code points, not by Swift's canonical equivalence.
struct CELStringKey: Hashable, Sendable {
    let text: String

    init(_ text: String) { self.text = text }

    static func == (lhs: CELStringKey, rhs: CELStringKey) -> Bool { CELText.equal(lhs.text, rhs.text) }
    func hash(into hasher: inout Hasher) { CELText.hash(text, into: &hasher) }
}
