import Testing

@testable import Policy

/// The engine builds `request` and `exec` from shared key arrays; they must be the maps a
/// dictionary of the same fields gives (values, key order, lookups).
@Suite("Request variables")
struct RequestVariablesTests {
    static let user = RequestAttributes.UserInfo(
        name: "alice", uid: "1001", groups: ["dev", "sre"], extra: ["portcullis.dev/session": ["s1"]])

    @Test("request, with and without namespace labels, and exec are the maps their fields describe")
    func sameAsDictionaries() throws {
        for labels in [nil, ["env": "prod"]] as [[String: String]?] {
            let request = RequestAttributes(
                user: Self.user, verb: "create", operation: .create, group: "apps", version: "v1",
                resource: "deployments", subresource: "scale", namespace: "prod", name: "web", source: .webhook,
                namespaceLabels: labels,
                exec: .init(command: ["sh", "-c", "ls"], container: "app", tty: true, stdin: false, line: "ls"))
            var fields: [String: CELValue] = [
                "groups": ["dev", "sre"], "name": "web", "namespace": "prod", "operation": "CREATE",
                "resource": .map(CELMap(["group": "apps", "resource": "deployments", "version": "v1"])),
                "source": "webhook", "subresource": "scale", "verb": "create",
                "user": .map(
                    CELMap([
                        "name": "alice", "uid": "1001", "groups": ["dev", "sre"],
                        "extra": .map(CELMap(["portcullis.dev/session": ["s1"]])),
                    ])),
            ]
            if let labels { fields["namespaceLabels"] = .map(CELMap(labels.mapValues(CELValue.string))) }
            let expected = CELValue.map(CELMap(fields))
            #expect(request.celRequest == expected)
            #expect(request.celRequest.debugDescription == expected.debugDescription)
            guard case .map(let map) = request.celRequest else {
                Issue.record("request is not a map")
                continue
            }
            for key in fields.keys { #expect(map[field: key] == fields[key], "\(key)") }
            #expect(map[field: "missing"] == nil)
            let exec = CELValue.map(
                CELMap([
                    "command": ["sh", "-c", "ls"], "container": "app", "line": "ls", "stdin": false, "tty": true,
                ]))
            #expect(request.celExec == exec)
            #expect(request.celExec?.debugDescription == exec.debugDescription)
        }
    }
}
