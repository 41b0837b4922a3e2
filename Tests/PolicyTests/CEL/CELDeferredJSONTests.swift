import Foundation
import Testing

@testable import Policy

/// `CELValue(deferredJSONObject:)` must be the value `CELValue(jsonObject:)` gives, converted only
/// as far as expressions read it.
@Suite("CEL values from JSON converted on demand")
struct CELDeferredJSONTests {
    /// Random JSON documents from a fixed seed, parsed by JSONSerialization as the webhook parses
    /// reviews: nested objects and arrays, ints, large uints, doubles, bools, null, non-ASCII keys.
    struct JSONGenerator {
        var state: UInt64

        mutating func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }

        static let keys = ["a", "b", "name", "labels", "spec", "é", "e\u{301}", "z", "key-10", "data", "x.y", ""]

        mutating func text() -> String {
            ["", "web", "prod-1", "héllo", "日本", "tab\there", "line\nbreak", "registry.example.com/app:1"][next(8)]
        }

        mutating func value(depth: Int) -> String {
            switch next(depth > 3 ? 6 : 9) {
            case 0: return "null"
            case 1: return next(2) == 0 ? "true" : "false"
            case 2: return String(next(2000) - 1000)
            case 3: return ["1.5", "-0.25", "1e3", "18446744073709551615", "9223372036854775807"][next(5)]
            case 4, 5:
                let encoded = try? JSONSerialization.data(withJSONObject: text(), options: [.fragmentsAllowed])
                return encoded.map { String(decoding: $0, as: UTF8.self) } ?? "\"\""
            case 6:
                return "[" + (0..<next(4)).map { _ in value(depth: depth + 1) }.joined(separator: ",") + "]"
            default:
                var seen = Set<String>()
                var members: [String] = []
                for _ in 0..<next(12) {
                    let key = Self.keys[next(Self.keys.count)]
                    guard seen.insert(key).inserted else { continue }
                    members.append("\"\(key)\":\(value(depth: depth + 1))")
                }
                return "{" + members.joined(separator: ",") + "}"
            }
        }

        mutating func object() throws -> [String: Any] {
            var document: String
            repeat { document = value(depth: 0) } while !document.hasPrefix("{")
            return try #require(try JSONSerialization.jsonObject(with: Data(document.utf8)) as? [String: Any])
        }
    }

    static let expressions = [
        "object", "object == other", "size(object)", "object.a", "has(object.a)", "has(object.spec.name)",
        "'labels' in object", "'é' in object", "object['e\u{301}']", "object.spec.labels.name", "object.data[0]",
        "object.exists(k, k.startsWith('k'))", "object.map(k, k)", "object.all(k, object[k] != null)",
        "object.spec == other.spec", "string(object.?labels.orValue('none'))", "type(object.a)",
        "object.filter(k, has(object.spec)).size()", "[object.b, object.z] == [other.b, other.z]",
    ]

    /// The result of `source`, or its error, as text to compare.
    static func outcome(_ source: String, _ bindings: [String: CELValue]) -> String {
        do {
            return "value \(try evaluate(source, bindings))"
        } catch {
            return "error \(error.kind) \(error.message)"
        }
    }

    @Test("random documents: equal values, hashes, key order and expression results")
    func sameValues() throws {
        var generator = JSONGenerator(state: 2026)
        for _ in 0..<300 {
            let object = try generator.object()
            let other = try generator.object()
            let eager = try CELValue(jsonObject: object)
            let deferred = CELValue(deferredJSONObject: object)
            #expect(deferred == eager)
            #expect(deferred.hashValue == eager.hashValue)
            #expect(deferred.debugDescription == eager.debugDescription)
            let eagerBindings = ["object": eager, "other": try CELValue(jsonObject: other)]
            let deferredBindings = ["object": deferred, "other": CELValue(deferredJSONObject: other)]
            for source in Self.expressions {
                #expect(
                    Self.outcome(source, deferredBindings) == Self.outcome(source, eagerBindings),
                    "\(source) on \(eager)")
            }
        }
    }

    static func pod() -> [String: Any] {
        [
            "apiVersion": "v1", "kind": "Pod",
            "metadata": [
                "name": "web", "namespace": "prod", "labels": ["team": "payments", "tier": "web"],
                "managedFields": [["manager": "kubectl", "fieldsV1": ["f:spec": ["f:containers": [:]]]]],
            ],
            "spec": ["containers": [["name": "app", "image": "registry.example.com/app:1", "ports": [["port": 80]]]]],
            "status": ["phase": "Pending"],
        ]
    }

    static func deferredValues(_ value: CELValue?) throws -> CELDeferredValues {
        guard case .map(let map) = value else {
            throw CELError(.invalidArgument, "not a map: \(String(describing: value))")
        }
        return try #require(map.deferredValues)
    }

    @Test("a field read converts that field's path and nothing else")
    func convertsOnlyWhatIsRead() throws {
        let object = CELValue(deferredJSONObject: Self.pod())
        let root = try Self.deferredValues(object)
        #expect(root.convertedCount == 0)
        // Presence tests, `in` and `size` look at keys only.
        #expect(try evaluate("has(object.spec) && 'status' in object && size(object) == 5", ["object": object]) == true)
        #expect(root.convertedCount == 0)
        #expect(try evaluate("object.metadata.labels.team", ["object": object]) == "payments")
        #expect(root.convertedCount == 1)
        guard case .map(let map) = object, case .map(let metadata)? = map[field: "metadata"] else {
            Issue.record("metadata is not a map")
            return
        }
        let metadataValues = try Self.deferredValues(.map(metadata))
        #expect(metadataValues.convertedCount == 1)  // labels; not name, namespace or managedFields
        #expect(try evaluate("object.metadata.labels.team", ["object": object]) == "payments")
        #expect(root.convertedCount == 1)
        #expect(object == (try CELValue(jsonObject: Self.pod())))
        #expect(root.convertedCount == 5)
    }

    @Test("concurrent readers of one deferred value all see the eager value")
    func concurrentReaders() async throws {
        let eager = try CELValue(jsonObject: Self.pod())
        let deferred = CELValue(deferredJSONObject: Self.pod())
        let results = await withTaskGroup(of: Bool.self) { group in
            for reader in 0..<16 {
                group.addTask {
                    let source = reader % 2 == 0 ? "object.spec.containers[0].image" : "object"
                    return (try? evaluate(source, ["object": deferred])) == (try? evaluate(source, ["object": eager]))
                }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(results == [Bool](repeating: true, count: 16))
    }
}
