import Synchronization

/// The values of a map made from parsed JSON, each converted to a `CELValue` the first time it is
/// read and kept from then on.
///
/// An admission review carries the whole object (and on UPDATE the old one), managed fields and
/// status included, while policies read a few fields of it, often none: converting on demand
/// costs only the parts an expression reaches. The map's keys are known from the start, so `size`,
/// `in` and `has` convert nothing.
///
/// `@unchecked Sendable`: `sources` is `JSONSerialization` output (arrays, dictionaries, strings,
/// numbers, null), immutable and only read; the converted values are behind the mutex.
final class CELDeferredValues: @unchecked Sendable {
    private let sources: [Any]
    private let converted: Mutex<[CELValue?]>

    init(_ sources: [Any]) {
        self.sources = sources
        converted = Mutex([CELValue?](repeating: nil, count: sources.count))
    }

    func value(at position: Int) -> CELValue {
        converted.withLock { slots in
            if let value = slots[position] { return value }
            // Children are deferred in turn; their mutexes are their own, so nesting cannot deadlock.
            let value = CELValue(deferredJSONObject: sources[position])
            slots[position] = value
            return value
        }
    }

    /// How many of the values have been converted so far.
    var convertedCount: Int { converted.withLock { slots in slots.count(where: { $0 != nil }) } }
}

extension CELValue {
    /// Wraps `JSONSerialization` output as a CEL value whose maps convert their entries when an
    /// expression first reads them: the same value as `init(jsonObject:)` gives (equal, same
    /// iteration order), paid for field by field. Lists convert their elements at once (maps among
    /// them stay deferred).
    ///
    /// Unlike `init(jsonObject:)`, which rejects the whole value, a leaf that is not a JSON value
    /// becomes `null`; `JSONSerialization` never produces one.
    public init(deferredJSONObject object: Any) {
        switch object {
        case let dictionary as [String: Any]:
            let entries = dictionary.sorted { $0.key < $1.key }
            self = .map(CELMap(deferredKeys: entries.map(\.key), values: CELDeferredValues(entries.map(\.value))))
        case let array as [Any]:
            self = .list(array.map(CELValue.init(deferredJSONObject:)))
        default:
            self = (try? CELValue(jsonObject: object)) ?? .null
        }
    }
}
