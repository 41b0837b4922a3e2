import Foundation
import Policy

/// Builds a JSON Patch (RFC 6902) that brings an object to what Mutate rules ask for, applying
/// each operation to a working copy so later operations see earlier ones.
///
/// Idempotent by construction, which is what makes reinvocation safe: an operation whose result is
/// already in place emits nothing, so a second pass over the mutated object produces an empty
/// patch. Missing parent objects are created (`add /metadata/labels/team` on an object without
/// labels first adds `/metadata/labels: {}`), and `replace` of a missing member becomes `add`.
struct JSONPatchBuilder {
    private(set) var object: [String: Any]
    private(set) var operations: [[String: Any]] = []

    init(object: [String: Any]) {
        self.object = object
    }

    struct PatchError: Error {
        let message: String
    }

    mutating func apply(_ operation: Decision.Mutation.Operation) throws(PatchError) {
        let tokens = operation.path.tokens
        switch operation.operation {
        case .remove:
            guard value(at: tokens) != nil else { return }
            emit(["op": "remove", "path": operation.path.description])
            object = try updated(object, tokens[...], with: nil) as? [String: Any] ?? object
        case .add, .replace:
            let newValue: Any
            do {
                newValue = try operation.value?.jsonObject() ?? NSNull()
            } catch {
                throw PatchError(message: "the value for \(operation.path) cannot be written as JSON: \(error.message)")
            }
            if let current = value(at: tokens), Self.equal(current, newValue) { return }
            // Create missing parents, outermost first, so every emitted operation applies.
            for depth in 1..<max(1, tokens.count) where value(at: Array(tokens[..<depth])) == nil {
                let parent = Array(tokens[..<depth])
                emit(["op": "add", "path": JSONPointer(tokens: parent).description, "value": [String: Any]()])
                object = try updated(object, parent[...], with: [String: Any]()) as? [String: Any] ?? object
            }
            let exists = value(at: tokens) != nil
            emit([
                "op": exists && operation.operation == .replace ? "replace" : "add",
                "path": operation.path.description, "value": newValue,
            ])
            object = try updated(object, tokens[...], with: newValue) as? [String: Any] ?? object
        }
    }

    func encoded() -> Data {
        (try? JSONSerialization.data(withJSONObject: operations, options: [.sortedKeys, .withoutEscapingSlashes]))
            ?? Data()
    }

    private mutating func emit(_ operation: [String: Any]) {
        operations.append(operation)
    }

    private func value(at tokens: [String]) -> Any? {
        var current: Any = object
        for token in tokens {
            if let map = current as? [String: Any], let next = map[token] {
                current = next
            } else if let list = current as? [Any], let index = Int(token), list.indices.contains(index) {
                current = list[index]
            } else {
                return nil
            }
        }
        return current
    }

    /// `container` with the value at `tokens` set (or removed when `value` is nil).
    private func updated(_ container: Any, _ tokens: ArraySlice<String>, with value: Any?) throws(PatchError) -> Any {
        guard let token = tokens.first else { return value ?? NSNull() }
        let rest = tokens.dropFirst()
        if var map = container as? [String: Any] {
            if rest.isEmpty {
                map[token] = value
            } else {
                map[token] = try updated(map[token] ?? [String: Any](), rest, with: value)
            }
            return map
        }
        if var list = container as? [Any] {
            let index = token == "-" ? list.count : Int(token) ?? -1
            guard index >= 0, index <= list.count else {
                throw PatchError(message: "\(token) is not an index of the list at this path")
            }
            if rest.isEmpty {
                if let value {
                    if index == list.count { list.append(value) } else { list[index] = value }
                } else if index < list.count {
                    list.remove(at: index)
                }
            } else {
                guard index < list.count else {
                    throw PatchError(message: "index \(index) is past the end of the list")
                }
                list[index] = try updated(list[index], rest, with: value)
            }
            return list
        }
        throw PatchError(message: "the path goes through a value that is neither an object nor a list")
    }

    private static func equal(_ a: Any, _ b: Any) -> Bool {
        guard let left = try? CELValue(jsonObject: a), let right = try? CELValue(jsonObject: b) else { return false }
        return left == right
    }
}
