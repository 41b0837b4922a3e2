import Foundation

/// JSON Merge Patch (RFC 7386) on `JSONSerialization` values: objects merge key by key, `null`
/// removes a key, anything else replaces the target.
enum JSONMergePatch {
    static func apply(_ patch: Any, to target: Any?) -> Any {
        guard let patch = patch as? [String: Any] else { return patch }
        var result = target as? [String: Any] ?? [:]
        for (key, value) in patch {
            if value is NSNull {
                result[key] = nil
            } else {
                result[key] = apply(value, to: result[key])
            }
        }
        return result
    }
}
