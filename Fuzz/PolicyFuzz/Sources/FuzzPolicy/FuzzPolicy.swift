// libFuzzer callback (handed to the driver in main.swift): arbitrary text into the CEL compiler and
// evaluator, and into the YAML policy loader and compiler. Any crash, hang (libFuzzer's -timeout)
// or sanitizer report is a bug; errors thrown for bad input are the expected outcome.
import Foundation
import Policy

/// The first input byte picks how the rest is used:
/// - even: a CEL expression, compiled with `CELEnvironment.portcullisPolicy` (bit 1 set: with the
///   checker off, so ill-typed expressions reach the evaluator too) and evaluated when it compiles;
/// - odd: a YAML policy stream, loaded, compiled and, when it compiles, evaluated for one request.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPolicy(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size > 0 else { return 0 }
    let mode = data[0]
    let text = String(decoding: UnsafeBufferPointer(start: data + 1, count: size - 1), as: UTF8.self)
    if mode & 1 == 0 {
        FuzzInput.evaluateExpression(text, checked: mode & 2 == 0)
    } else {
        FuzzInput.loadPolicies(text)
    }
    return 0
}

/// LeakSanitizer cannot follow references that Swift keeps in enum payloads with tag bits set, so
/// values built once by lazily initialised globals (the function registry, type tables) look leaked.
/// Allocations made inside a global's one-time initialiser are not leaks: suppress only those.
@_cdecl("__lsan_default_suppressions")
public func leakSuppressions() -> UnsafePointer<CChar> {
    let suppressions: StaticString = "leak:swift_once\nleak:once_slow\n"
    return UnsafeRawPointer(suppressions.utf8Start).assumingMemoryBound(to: CChar.self)
}

enum FuzzInput {
    /// Small enough that no single input can run for long, large enough for real comprehensions.
    static let costLimit: UInt64 = 10_000

    static let uncheckedEnvironment = CELEnvironment(
        variables: CELEnvironment.portcullisVariables, enableChecker: false)

    static func evaluateExpression(_ source: String, checked: Bool) {
        let environment = checked ? CELEnvironment.portcullisPolicy : uncheckedEnvironment
        guard let program = try? environment.compile(source) else { return }
        _ = try? program.evaluate(activation, costLimit: costLimit)
    }

    static func loadPolicies(_ text: String) {
        guard let policies = try? PolicyLoader.parse(text, file: "fuzz.yaml"),
            let compiled = try? PolicyCompiler.compile(policies)
        else { return }
        let engine = PolicyEngine(
            policies: compiled, options: .init(expressionCostLimit: costLimit, requestCostLimit: 4 * costLimit))
        for request in requests { _ = engine.evaluate(request, now: now) }
    }

    static let now = Date(timeIntervalSince1970: 1_750_000_000)

    static let object: CELValue = try! CELValue(
        json: Data(
            #"""
            {"apiVersion": "apps/v1", "kind": "Deployment",
             "metadata": {"name": "web", "namespace": "prod", "labels": {"team": "payments", "tier": "frontend"},
                          "annotations": {"portcullis.dev/owner": "alice@example.com"}},
             "spec": {"replicas": 3, "template": {"spec": {"hostNetwork": false, "containers": [
                {"name": "app", "image": "registry.example.com/web:1.4.2", "ports": [{"containerPort": 8080}],
                 "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}},
                 "env": [{"name": "DB_PASSWORD", "value": "hunter2"}]}]}}},
             "data": {"token": "c2VjcmV0"}}
            """#.utf8))

    /// The activation of `evaluateExpression`: every variable of the Portcullis environment.
    static let activation = CELActivation([
        "request": [
            "user": [
                "name": "alice", "uid": "1001", "groups": ["developers", "sre-oncall"],
                "extra": ["scopes": ["read", "write"]],
            ],
            "groups": ["developers", "sre-oncall"], "verb": "create", "operation": "CREATE",
            "resource": ["group": "apps", "version": "v1", "resource": "deployments"],
            "subresource": "", "namespace": "prod", "name": "web", "source": "proxy",
        ],
        "object": object,
        "oldObject": .null,
        "exec": [
            "command": ["sh", "-c", "ls"], "container": "app", "tty": true, "stdin": true,
            "line": "psql -h db -c 'DROP TABLE users' | tee /tmp/out",
        ],
        "portForward": ["port": 5432, "protocol": "postgres"],
        "sql": ["statement": "SELECT * FROM users WHERE id = 1", "command": "SELECT"],
        "variables": ["limit": 3, "names": ["a", "b"]],
        "params": ["maxReplicas": 5],
        "now": .timestamp(try! CELTimestamp(seconds: 1_750_000_000)),
    ])

    /// The requests of `loadPolicies`: one admission request with an object, one exec line.
    static let requests = [
        RequestAttributes(
            user: .init(name: "alice", groups: ["developers"]), verb: "create", operation: .create, group: "apps",
            resource: "deployments", namespace: "prod", name: "web", source: .webhook,
            namespaceLabels: ["env": "prod"], object: object),
        RequestAttributes(
            user: .init(name: "system:serviceaccount:ci:deployer", groups: ["system:serviceaccounts"]),
            verb: "create", resource: "pods", subresource: "exec", namespace: "prod-eu", name: "web-0",
            exec: .init(command: ["sh"], container: "app", tty: true, stdin: true, line: "rm -rf /var/lib/data")),
    ]
}
