import Foundation
import Testing

@testable import Policy

@Suite("CEL cost limits, concurrency and JSON")
struct CELRuntimeTests {
    @Test("evaluation stops with costLimitExceeded once the budget is spent")
    func costLimit() throws {
        let program = try CELEnvironment(variables: ["l": .list(.int)]).compile("l.map(x, l.map(y, x * y)).size()")
        let list = CELValue.list((0..<200).map { .int($0) })
        let (_, cost) = try program.evaluateWithCost(CELActivation(["l": list]))
        #expect(cost > 40_000)
        do {
            _ = try program.evaluate(CELActivation(["l": list]), costLimit: 1_000)
            Issue.record("expected the cost limit to be exceeded")
        } catch {
            #expect(error.kind == .costLimitExceeded)
            #expect(error.message == "operation cancelled: actual cost limit exceeded")
        }
    }

    @Test("the default cost limit is Kubernetes' per-expression limit")
    func defaultLimit() throws {
        #expect(CELCost.defaultLimit == 1_000_000)
        let program = try CELEnvironment(variables: [:]).compile(
            "lists.range(1000).map(x, lists.range(1000).map(y, y)).size()")
        #expect(throws: CELError.self) { try program.evaluate(CELActivation()) }
    }

    @Test("string functions cost in proportion to the string length")
    func traversalCost() throws {
        let program = try CELEnvironment(variables: ["s": .string]).compile("s.contains('z')")
        let short = try program.evaluateWithCost(CELActivation(["s": "abc"])).cost
        let long = try program.evaluateWithCost(CELActivation(["s": .string(String(repeating: "a", count: 10_000))]))
            .cost
        #expect(long >= short + 999)
    }

    @Test("a cost-limit error is not absorbed by || or exists()")
    func costNotAbsorbed() throws {
        let program = try CELEnvironment(variables: [:]).compile(
            "lists.range(100).exists(x, lists.range(100).map(y, y).size() == 0) || true")
        #expect(throws: CELError.self) { try program.evaluate(CELActivation(), costLimit: 500) }
    }

    @Test("one program evaluates concurrently from many tasks")
    func concurrency() async throws {
        let program = try CELEnvironment.portcullisPolicy.compile(
            "request.namespace.startsWith('prod') && request.user.groups.exists(g, g == 'sre')")
        let results = try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<200 {
                group.addTask {
                    let activation = CELActivation([
                        "request": ["namespace": index % 2 == 0 ? "prod-a" : "dev", "user": ["groups": ["sre"]]]
                    ])
                    return try program.evaluate(activation) == .bool(index % 2 == 0)
                }
            }
            return try await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(results.count == 200)
        #expect(results.allSatisfy { $0 })
    }

    @Test("JSON converts to CEL values and back")
    func json() throws {
        let value = try CELValue(
            json: Data(#"{"a": 1, "b": 1.5, "c": true, "d": null, "e": [1, "x"], "f": 18446744073709551615}"#.utf8))
        #expect(value == ["a": 1, "b": 1.5, "c": true, "d": .null, "e": [1, "x"], "f": .uint(.max)])
        let object = try JSONSerialization.jsonObject(with: Data(#"{"n": 0, "t": false}"#.utf8))
        #expect(try CELValue(jsonObject: object) == ["n": 0, "t": false])
        #expect(
            try CELValue(jsonObject: ["x": 1, "y": true, "z": "s"] as [String: Any]) == ["x": 1, "y": true, "z": "s"])
        let back = try CELValue.map(CELMap(["ts": .timestamp(try CELTimestamp(seconds: 0)), "b": .bytes([104, 105])]))
            .jsonObject()
        let data = try JSONSerialization.data(withJSONObject: back, options: [.sortedKeys])
        #expect(String(decoding: data, as: UTF8.self) == #"{"b":"aGk=","ts":"1970-01-01T00:00:00Z"}"#)
        #expect(throws: CELError.self) { try CELValue.double(.nan).jsonObject() }
    }
}
