import Foundation

/// A bounded map from a token digest to a value with an expiry time, used by the TokenReview and
/// OIDC authenticators so that a client's repeated token is not re-checked on every request.
///
/// A pure value: the caller supplies `now` (the clock is injected) and owns the locking. Keys are
/// ``TokenDigest``s, so the cache never holds a token. When full, expired entries are dropped
/// first, then the entry closest to expiry: an attacker flooding the cache with fresh tokens only
/// evicts the shortest-lived entries and cannot grow memory past ``capacity``.
struct ExpiringCache<Value: Sendable>: Sendable {
    private struct Entry: Sendable {
        var value: Value
        var expires: Date
    }

    /// The most entries the cache holds.
    let capacity: Int
    private var entries: [TokenDigest: Entry] = [:]

    init(capacity: Int) {
        self.capacity = max(0, capacity)
    }

    var count: Int { entries.count }

    /// The value for `key` if it has not expired at `now`; an expired entry is removed.
    mutating func value(for key: TokenDigest, now: Date) -> Value? {
        guard let entry = entries[key] else { return nil }
        if entry.expires <= now {
            entries[key] = nil
            return nil
        }
        return entry.value
    }

    /// Stores `value` until `expires`. Does nothing when `expires` is not after `now` or the
    /// capacity is zero.
    mutating func insert(_ value: Value, for key: TokenDigest, expires: Date, now: Date) {
        guard capacity > 0, expires > now else { return }
        if entries[key] == nil, entries.count >= capacity {
            entries = entries.filter { $0.value.expires > now }
            if entries.count >= capacity,
                let soonest = entries.min(by: { $0.value.expires < $1.value.expires })?.key
            {
                entries[soonest] = nil
            }
        }
        entries[key] = Entry(value: value, expires: expires)
    }

    mutating func removeAll() {
        entries.removeAll()
    }
}

/// Time arithmetic shared by the authenticators (a namespace, so that no extension on a standard
/// type can clash with another part of the module).
enum AuthenticationTime {
    /// `duration` in seconds, as Foundation's `TimeInterval`.
    static func interval(_ duration: Duration) -> TimeInterval {
        let parts = duration.components
        return TimeInterval(parts.seconds) + TimeInterval(parts.attoseconds) / 1e18
    }
}
