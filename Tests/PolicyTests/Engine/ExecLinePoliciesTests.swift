import Foundation
import Policy
import Testing

/// Which policies read the lines of an exec session: whether the proxy checks them at all.
@Suite("PolicyEngine.execLinePolicies")
struct ExecLinePoliciesTests {
    typealias T = PolicyEngineTests

    static func session(
        namespace: String = "prod", tty: Bool = true, command: [String] = ["sh"],
        user: RequestAttributes.UserInfo = T.alice
    ) -> RequestAttributes {
        RequestAttributes(
            user: user, verb: "create", resource: "pods", subresource: "exec", namespace: namespace, name: "web",
            exec: .init(command: command, container: "app", tty: tty, stdin: true))
    }

    static let execMatch = "{namespaces: [prod], resources: [pods/exec]}"

    @Test("a rule reading exec.line counts; one reading only exec.command does not")
    func readsTheLine() throws {
        let engine = try T.engine(
            T.policy(
                "lines", match: Self.execMatch,
                rules: "  - {name: r, action: Deny, message: m, expression: \"exec.line.contains('rm')\"}")
                + T.policy(
                    "commands", match: Self.execMatch,
                    rules: "  - {name: r, action: Deny, message: m, expression: \"exec.command[0] == 'rm'\"}"))
        #expect(engine.execLinePolicies(for: Self.session()) == ["lines"])
    }

    @Test("match excludes: another namespace, another resource")
    func matchExcludes() throws {
        let engine = try T.engine(
            T.policy(
                "lines", match: Self.execMatch,
                rules: "  - {name: r, action: Deny, message: m, expression: \"exec.line.contains('rm')\"}"))
        #expect(engine.execLinePolicies(for: Self.session(namespace: "dev")).isEmpty)
        var attach = Self.session()
        attach.subresource = "attach"
        #expect(engine.execLinePolicies(for: attach).isEmpty)
    }

    @Test("reads through variables, messages, has(), indexing and exec handed on whole all count")
    func indirectReads() throws {
        let rules = [
            "variables", "message", "has", "index", "computed-index", "whole",
        ]
        let yaml =
            T.policy(
                "variables", match: Self.execMatch,
                extra: "  variables: [{name: l, expression: \"exec.line\"}]",
                rules: "  - {name: r, action: Deny, message: m, expression: \"variables.l == 'x'\"}")
            + T.policy(
                "message", match: Self.execMatch,
                rules:
                    "  - {name: r, action: Deny, message: m, expression: \"true\", messageExpression: \"'no ' + exec.line\"}"
            )
            + T.policy(
                "has", match: Self.execMatch,
                rules: "  - {name: r, action: Deny, message: m, expression: \"has(exec.line)\"}")
            + T.policy(
                "index", match: Self.execMatch,
                rules: "  - {name: r, action: Deny, message: m, expression: \"exec['line'] == 'x'\"}")
            + T.policy(
                "computed-index", match: Self.execMatch,
                rules: "  - {name: r, action: Deny, message: m, expression: \"exec['li' + 'ne'] == 'x'\"}")
            + T.policy(
                "whole", match: Self.execMatch,
                rules: "  - {name: r, action: Deny, message: m, expression: \"[exec].exists(e, e.line == 'x')\"}")
            + T.policy(
                "other-index", match: Self.execMatch,
                rules: "  - {name: r, action: Deny, message: m, expression: \"exec['tty'] == true\"}")
        let engine = try T.engine(yaml)
        #expect(engine.execLinePolicies(for: Self.session()) == rules)
    }

    @Test("a matchCondition that is false without the line excludes the policy; one reading the line cannot")
    func matchConditions() throws {
        let yaml =
            T.policy(
                "interactive-only", match: Self.execMatch,
                extra: "  matchConditions: [{name: tty, expression: \"exec.tty\"}]",
                rules: "  - {name: r, action: Deny, message: m, expression: \"exec.line.contains('rm')\"}")
            + T.policy(
                "not-break-glass", match: Self.execMatch,
                extra: "  matchConditions: [{name: bg, expression: \"!('break-glass' in request.user.groups)\"}]",
                rules: "  - {name: r, action: Deny, message: m, expression: \"exec.line.contains('rm')\"}")
            + T.policy(
                "line-condition", match: Self.execMatch,
                extra: "  matchConditions: [{name: l, expression: \"exec.line.startsWith('kubectl')\"}]",
                rules: "  - {name: r, action: Deny, message: m, expression: \"true\"}")
        let engine = try T.engine(yaml)
        #expect(
            engine.execLinePolicies(for: Self.session())
                == ["interactive-only", "not-break-glass", "line-condition"])
        #expect(engine.execLinePolicies(for: Self.session(tty: false)) == ["not-break-glass", "line-condition"])
        let responder = RequestAttributes.UserInfo(name: "carol", groups: ["break-glass"])
        #expect(engine.execLinePolicies(for: Self.session(user: responder)) == ["interactive-only", "line-condition"])
        // With a line, the line's own conditions are decided too.
        var typed = Self.session()
        typed.exec?.line = "ls"
        #expect(engine.execLinePolicies(for: typed) == ["interactive-only", "not-break-glass"])
    }

    @Test("the example guardrails read the line in prod, and not for break-glass responders")
    func examples() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        let engine = try PolicyEngine(paths: [root.appendingPathComponent("manifests/policies/examples").path])
        #expect(engine.execLinePolicies(for: Self.session()).contains("exec-guardrails"))
        #expect(engine.execLinePolicies(for: Self.session(namespace: "dev")).isEmpty)
        let responder = RequestAttributes.UserInfo(name: "carol", groups: ["sre", "break-glass"])
        #expect(!engine.execLinePolicies(for: Self.session(user: responder)).contains("exec-guardrails"))
    }
}
