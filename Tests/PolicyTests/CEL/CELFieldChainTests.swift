import Testing

@testable import Policy

/// Chains of field selections (`request.user.groups`) are planned as one step; they must cost and
/// fail exactly as one selection at a time would.
@Suite("CEL field chains")
struct CELFieldChainTests {
    static let request: CELValue = [
        "user": ["name": "alice", "groups": ["dev", "sre"]], "namespace": "prod",
        "items": [["name": "first", "spec": ["size": 3]]],
    ]

    /// Value (or error) and cost of `source` with `request` bound, in a plain environment, in
    /// one with a container (qualified names are resolved first), and with the checker on.
    static func outcomes(_ source: String, costLimit: UInt64 = CELCost.defaultLimit) -> [String] {
        let environments = [
            CELEnvironment(variables: ["request": .dyn], enableChecker: false),
            CELEnvironment(variables: ["request": .dyn], enableChecker: false, container: "portcullis.test"),
            CELEnvironment(variables: ["request": .dyn], enableChecker: true),
        ]
        return environments.map { environment in
            do throws(CELError) {
                let (value, cost) = try environment.compile(source).evaluateWithCost(
                    CELActivation(["request": request]), costLimit: costLimit)
                return "\(value) cost \(cost)"
            } catch {
                return "error \(error.kind) \(error.message)"
            }
        }
    }

    @Test(
        "a chain gives the value and cost of the same selections written as indexes",
        arguments: [
            ("request.user.name", "request['user']['name']"),
            ("request.namespace", "request['namespace']"),
            ("request.user.groups", "request['user']['groups']"),
            ("request.items.exists(i, i.spec.size == 3)", "request['items'].exists(i, i['spec']['size'] == 3)"),
            ("[request][0].user.name", "[request][0]['user']['name']"),
            (
                "request.items.map(i, i.name + request.namespace)",
                "request['items'].map(i, i['name'] + request['namespace'])"
            ),
        ])
    func chains(source: String, reference: String) {
        let outcomes = Self.outcomes(source)
        #expect(outcomes == Self.outcomes(reference))
        #expect(outcomes.allSatisfy { !$0.hasPrefix("error") })
    }

    @Test(
        "a chain fails at the first field that is missing or not a map",
        arguments: [
            ("request.user.email", "error noSuchKey no such key: email"),
            ("request.nothing.name", "error noSuchKey no such key: nothing"),
            ("request.items.exists(i, i.spec.missing == 3)", "error noSuchKey no such key: missing"),
            ("request.namespace.size", "error noSuchOverload type 'string' does not support field selection"),
        ])
    func failures(source: String, expected: String) {
        #expect(Self.outcomes(source) == [String](repeating: expected, count: 3))
    }

    @Test("the whole chain is charged before the variable is read, as nested selections charge it")
    func chargedUpFront() {
        // Three names cost 3: a limit of 2 stops the chain before it reads anything.
        for outcome in Self.outcomes("request.user.name", costLimit: 2) {
            #expect(outcome == "error costLimitExceeded \(CELCost.limitExceededMessage)")
        }
        for outcome in Self.outcomes("request.user.name", costLimit: 3) { #expect(outcome == "\"alice\" cost 3") }
        // An unbound variable is reported after the charge, as before.
        let unbound = try? CELEnvironment(variables: ["request": .dyn], enableChecker: false).compile("request.user")
            .evaluateWithCost(CELActivation(), costLimit: 100)
        #expect(unbound == nil)
    }
}
