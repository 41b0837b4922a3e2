import Foundation
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

    static let execRequest = RequestAttributes(
        user: user, verb: "create", resource: "pods", subresource: "exec", namespace: "prod", name: "web-0",
        exec: .init(command: ["sh", "-c", "ls"], container: "app", tty: true, stdin: false, line: "ls"))
    static let webhookRequest = RequestAttributes(
        user: user, verb: "update", operation: .update, group: "apps", resource: "deployments", namespace: "prod",
        name: "web", source: .webhook, namespaceLabels: ["env": "prod"])

    @Test("every request path the engine answers in place is what it selects from the variable")
    func pathsAsSelected() throws {
        for request in [Self.execRequest, Self.webhookRequest] {
            var bindings = RequestBindings(now: Date(timeIntervalSince1970: 0))
            for path in CELRequestPath.allCases {
                let variable = path.global == "request" ? request.celRequest : request.celExec
                var selected: CELValue? = variable
                for field in path.fields { selected = try selected.map { try CELAccess.select($0, field) } }
                #expect(bindings.value(at: path, for: request) == selected, "\(path)")
                #expect(
                    bindings.value(at: path, for: request)?.debugDescription == selected?.debugDescription, "\(path)")
            }
        }
    }

    @Test(
        "an expression over request paths gives the value and cost it gives over the variables",
        arguments: [
            "request.namespace == 'prod' && request.user.groups.exists(g, g.startsWith('sr'))",
            "request.resource.resource + '/' + request.subresource + ' by ' + request.user.name",
            "exec.line.startsWith('l') && exec.command.size() == 3 && exec.tty && !exec.stdin",
            "request.user.groups.size() + request.groups.size()",
            "request.namespace + string(request.user.extra.size())",
            "request.operation + request.source + request.verb + request.name + request.resource.group",
            "has(request.user.uid) && request.user.uid == '1001' && request.resource.version == 'v1'",
            "exec.container + request.namespaceLabels.env",
            "[{'namespace': 'x'}].exists(request, request.namespace == 'x') && request.namespace == 'prod'",
        ])
    func programsOverPaths(source: String) throws {
        let program = try CELEnvironment.portcullisPolicy.compile(source)
        for request in [Self.execRequest, Self.webhookRequest] {
            var activation = CELActivation(["request": request.celRequest])
            if let exec = request.celExec { activation["exec"] = exec }
            let expected = Result { () throws(CELError) in try program.evaluateWithCost(activation) }
            var bindings = RequestBindings(now: Date(timeIntervalSince1970: 0))
            var scratch: [CELValue?] = []
            let inPlace = Result { () throws(CELError) in
                try program.evaluateWithCost(
                    costLimit: CELCost.defaultLimit, scratch: &scratch,
                    inputs: { bindings.value(of: $0, for: request) })
            }
            switch (expected, inPlace) {
            case (.success(let a), .success(let b)):
                #expect(a.value == b.value && a.cost == b.cost, "\(source)")
            case (.failure(let a), .failure(let b)):
                #expect(a.kind == b.kind && a.message == b.message, "\(source)")
            default:
                Issue.record("\(source): \(expected) against \(inPlace)")
            }
        }
    }

    @Test("field chains read shaped records by position, and give what selecting by name gives")
    func shapedRecords() throws {
        let request = Self.webhookRequest.celRequest
        let chains = [
            ["user", "groups"], ["namespace"], ["namespaceLabels", "env"], ["user", "missing"], ["verb", "x"],
        ]
        for fields in chains {
            let chain = CELFieldChain(fields)
            let expected = Result { () throws(CELError) in
                var value = request
                for field in fields { value = try CELAccess.select(value, field) }
                return value
            }
            let selected = Result { () throws(CELError) in try chain.select(from: request) }
            switch (expected, selected) {
            case (.success(let a), .success(let b)): #expect(a == b, "\(fields)")
            case (.failure(let a), .failure(let b)): #expect(a.message == b.message, "\(fields)")
            default: Issue.record("\(fields): \(expected) against \(selected)")
            }
        }
    }
}
