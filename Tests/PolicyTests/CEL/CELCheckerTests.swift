import Foundation
import Testing

@testable import Policy

@Suite("CEL checker and the Portcullis environment")
struct CELCheckerTests {
    let environment = CELEnvironment.portcullisPolicy

    func compileError(_ source: String) -> CELError? {
        do {
            _ = try environment.compile(source)
            return nil
        } catch {
            return error
        }
    }

    @Test("unknown variables and functions are compile errors with positions")
    func undeclared() {
        let error = compileError("request.namespace == 'a' && reqest.name == 'b'")
        #expect(error?.kind == .undeclaredReference)
        #expect(error?.location?.column == 29)
        #expect(compileError("frobnicate(request.name)")?.kind == .undeclaredReference)
    }

    @Test("provable type errors are reported")
    func typeErrors() {
        #expect(compileError("request.user.name + 1")?.kind == .typeMismatch)
        #expect(compileError("size(1)")?.kind == .typeMismatch)
        #expect(compileError("exec.tty && 'yes'")?.kind == .typeMismatch)
        #expect(compileError("portForward.port.startsWith('8')")?.kind == .typeMismatch)
        #expect(compileError("request.verb.missing")?.kind == .typeMismatch)
    }

    @Test("dynamic expressions are not rejected")
    func dynamicAccepted() throws {
        for source in [
            "object.spec.replicas > 3", "object.metadata.name + 1 == 2", "has(object.metadata.labels.team)",
            "variables.limit * 2 < size(object.spec.containers)", "request.custom.field == 1",
            "object.spec.containers.all(c, c.image.endsWith(':latest'))", "dyn(request.name) + 1 > 0",
            "object.?spec.?replicas.orValue(1) > 0", "'break-glass' in request.user.groups",
        ] {
            #expect(throws: Never.self, "\(source)") { _ = try environment.compile(source) }
        }
    }

    @Test("the result type is deduced")
    func resultTypes() throws {
        #expect(try environment.compile("request.namespace == 'prod'").resultType == .bool)
        #expect(try environment.compile("exec.command").resultType == .list(.string))
        #expect(try environment.compile("size(request.groups)").resultType == .int)
        #expect(try environment.compile("object.spec").resultType == .dyn)
        #expect(try environment.compile("[1, 2].map(x, x * 2)").resultType == .list(.int))
        #expect(try environment.compile("request.user.groups.exists(g, g == 'sre')").resultType == .bool)
    }

    @Test("the checker can be turned off")
    func checkerOff() throws {
        let lenient = CELEnvironment(variables: [:], enableChecker: false)
        let program = try lenient.compile("undeclared + 1")
        #expect(program.resultType == .dyn)
        #expect(throws: CELError.self) { try program.evaluate(CELActivation()) }
    }

    @Test("policy rules from the design evaluate")
    func designRules() throws {
        let activation = CELActivation([
            "request": try CELValue(
                json: Data(
                    #"{"user": {"name": "ana", "groups": ["developers"]}, "verb": "create", "operation": "CREATE", "namespace": "prod-a", "resource": {"group": "", "version": "v1", "resource": "pods"}, "subresource": "exec"}"#
                        .utf8)),
            "exec": ["command": ["sh", "-c", "rm -rf /tmp"], "line": "rm -rf /tmp", "tty": true, "stdin": true],
            "object": ["metadata": ["labels": ["app": "web"]]],
        ])
        let rules: [(String, CELValue)] = [
            ("!('break-glass' in request.user.groups)", .bool(true)),
            ("exec.line.matches('\\\\brm\\\\s+-[a-z]*r[a-z]*f')", .bool(true)),
            ("exec.line.startsWith('psql')", .bool(false)),
            ("request.resource.resource == 'secrets'", .bool(false)),
            ("request.operation == 'CREATE' && !has(object.metadata.labels.team)", .bool(true)),
        ]
        for (source, expected) in rules {
            #expect(try environment.compile(source).evaluate(activation) == expected, "\(source)")
        }
    }

    @Test("invalid constant regexes are compile errors when literals are validated")
    func regexLiterals() {
        #expect(compileError("exec.line.matches('(')")?.kind == .invalidArgument)
    }
}
