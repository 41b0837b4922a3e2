import Foundation
import Policy
import Testing

@Suite("Policy engine decisions")
struct PolicyEngineTests {
    static func engine(_ yaml: String, default outcome: Decision.Outcome = .allow) throws -> PolicyEngine {
        let policies = try PolicyLoader.parse(yaml, file: "test.yaml")
        return PolicyEngine(policies: try PolicyCompiler.compile(policies), options: .init(defaultOutcome: outcome))
    }

    static func policy(
        _ name: String, mode: String = "Enforce", match: String = "{}", extra: String = "", rules: String
    ) -> String {
        """
        apiVersion: portcullis.dev/v1alpha1
        kind: AccessPolicy
        metadata: {name: \(name)}
        spec:
          mode: \(mode)
          match: \(match)
        \(extra)
          rules:
        \(rules)
        ---

        """
    }

    static let alice = RequestAttributes.UserInfo(name: "alice", groups: ["developers"])

    static func exec(
        _ line: String, namespace: String = "prod", user: RequestAttributes.UserInfo = alice
    ) -> RequestAttributes {
        RequestAttributes(
            user: user, verb: "create", resource: "pods", subresource: "exec", namespace: namespace, name: "web",
            exec: .init(command: ["sh"], container: "app", tty: true, stdin: true, line: line))
    }

    @Test("Deny beats Review beats Allow, and the deciding rule is named")
    func precedence() throws {
        let engine = try Self.engine(
            Self.policy(
                "guard", match: "{resources: [pods/exec]}",
                rules: """
                      - {name: allow-all, action: Allow}
                      - {name: review-psql, action: Review, expression: "exec.line.startsWith('psql')", message: needs approval, review: {approvers: {groups: [sre]}}}
                      - {name: no-drop, action: Deny, expression: "exec.line.contains('DROP')", message: no drops}
                    """))
        #expect(engine.evaluate(Self.exec("ls")).outcome == .allow)
        let review = engine.evaluate(Self.exec("psql -c 'select 1'"))
        #expect(review.outcome == .review)
        #expect(review.decidedBy?.description == "guard/review-psql")
        #expect(review.review?.spec.approverGroups.map(\.pattern) == ["sre"])
        let deny = engine.evaluate(Self.exec("psql -c 'DROP TABLE t'"))
        #expect(deny.outcome == .deny)
        #expect(deny.message == "no drops")
        #expect(deny.results.map(\.status) == [.matched, .matched, .matched])
    }

    @Test("Warn mode turns denials into warnings; Audit mode only records")
    func modes() throws {
        let rules = "      - {name: no-rm, action: Deny, expression: \"exec.line.startsWith('rm')\", message: no rm}"
        let warn = try Self.engine(Self.policy("p", mode: "Warn", rules: rules))
        let warned = warn.evaluate(Self.exec("rm -rf /tmp/x"))
        #expect(warned.outcome == .allow)
        #expect(warned.warnings == ["no rm (p/no-rm, not enforced: mode Warn)"])
        let audit = try Self.engine(Self.policy("p", mode: "Audit", rules: rules))
        let audited = audit.evaluate(Self.exec("rm -rf /tmp/x"))
        #expect(audited.outcome == .allow)
        #expect(audited.warnings.isEmpty)
        #expect(audited.results.first?.status == .matched)
        #expect(audited.results.first?.mode == .audit)
    }

    @Test("Mask and Warn rules stack across policies")
    func stacking() throws {
        let engine = try Self.engine(
            Self.policy(
                "a",
                rules:
                    "      - {name: m1, action: Mask, mask: {fields: [data.*]}}\n      - {name: w1, action: Warn, message: careful}"
            )
                + Self.policy("b", rules: "      - {name: m2, action: Mask, mask: {patterns: ['[0-9]{16}']}}"))
        let decision = engine.evaluate(Self.exec("cat card.txt"))
        #expect(decision.masks.map(\.rule.description) == ["a/m1", "b/m2"])
        #expect(decision.warnings == ["careful"])
        #expect(decision.outcome == .allow)
    }

    @Test("when nothing decides, the configured default applies")
    func defaultOutcome() throws {
        let yaml = Self.policy("p", match: "{namespaces: [prod]}", rules: "      - {name: r, action: Allow}")
        #expect(try Self.engine(yaml, default: .deny).evaluate(Self.exec("ls", namespace: "dev")).outcome == .deny)
        #expect(try Self.engine(yaml, default: .deny).evaluate(Self.exec("ls", namespace: "prod")).outcome == .allow)
        #expect(try Self.engine(yaml, default: .allow).evaluate(Self.exec("ls", namespace: "dev")).outcome == .allow)
    }

    @Test("subjects, namespaces, verbs and operations must all match")
    func matching() throws {
        let engine = try Self.engine(
            Self.policy(
                "p",
                match:
                    "{subjects: [{group: developers}], namespaces: ['prod-*'], verbs: [create], resources: ['pods/exec']}",
                rules: "      - {name: r, action: Deny, message: no}"))
        #expect(engine.evaluate(Self.exec("ls", namespace: "prod-eu")).outcome == .deny)
        #expect(engine.evaluate(Self.exec("ls", namespace: "dev")).outcome == .allow)
        #expect(
            engine.evaluate(Self.exec("ls", namespace: "prod-eu", user: .init(name: "bob", groups: ["sre"]))).outcome
                == .allow)
        var get = Self.exec("ls", namespace: "prod-eu")
        get.verb = "get"
        #expect(engine.evaluate(get).outcome == .allow)
    }

    @Test("a false matchCondition skips the policy; variables are computed once and shared")
    func conditionsAndVariables() throws {
        let engine = try Self.engine(
            Self.policy(
                "p",
                extra: """
                      matchConditions:
                      - {name: not-break-glass, expression: "!('break-glass' in request.user.groups)"}
                      variables:
                      - {name: words, expression: "exec.line.split(' ')"}
                      - {name: program, expression: "variables.words[0]"}
                    """,
                rules:
                    "      - {name: r, action: Deny, expression: \"variables.program == 'rm'\", messageExpression: \"'no ' + variables.program\"}"
            ))
        let denied = engine.evaluate(Self.exec("rm -rf x"))
        #expect(denied.outcome == .deny)
        #expect(denied.message == "no rm")
        let breakGlass = engine.evaluate(Self.exec("rm -rf x", user: .init(name: "alice", groups: ["break-glass"])))
        #expect(breakGlass.outcome == .allow)
        #expect(breakGlass.results.map(\.status) == [.skipped])
    }

    @Test("an expression that fails at run time denies under failurePolicy Fail and is skipped under Ignore")
    func failurePolicy() throws {
        let rules = "      - {name: r, action: Deny, expression: \"object.spec.replicas > 3\", message: too many}"
        let request = RequestAttributes(
            user: Self.alice, verb: "create", group: "apps", resource: "deployments", namespace: "prod",
            object: try CELValue(json: Data(#"{"spec": {}}"#.utf8)))
        let failClosed = try Self.engine(Self.policy("p", rules: rules)).evaluate(request)
        #expect(failClosed.outcome == .deny)
        #expect(failClosed.message.contains("failurePolicy is Fail"))
        #expect(failClosed.results.first?.status == .error)
        let ignored = try Self.engine(Self.policy("p", extra: "  failurePolicy: Ignore", rules: rules)).evaluate(
            request)
        #expect(ignored.outcome == .allow)
        #expect(ignored.results.first?.status == .error)
    }

    @Test("a namespaceSelector with unknown namespace labels fails closed")
    func unknownNamespaceLabels() throws {
        let engine = try Self.engine(
            Self.policy(
                "p", match: "{namespaceSelector: {matchLabels: {env: prod}}}", rules: "      - {name: r, action: Allow}"
            ),
            default: .allow)
        var request = Self.exec("ls")
        #expect(engine.evaluate(request).outcome == .deny)
        request.namespaceLabels = ["env": "prod"]
        #expect(engine.evaluate(request).outcome == .allow)
        request.namespaceLabels = ["env": "dev"]
        #expect(engine.evaluate(request).results.isEmpty)
    }

    @Test("the per-request cost budget stops runaway expressions with a clear error")
    func costBudget() throws {
        let policies = try PolicyLoader.parse(
            Self.policy(
                "p",
                rules:
                    "      - {name: r, action: Deny, expression: \"[1,2,3,4,5,6,7,8,9,10].all(x, [1,2,3,4,5,6,7,8,9,10].all(y, x * y > 0))\", message: m}"
            ),
            file: "t.yaml")
        let engine = PolicyEngine(
            policies: try PolicyCompiler.compile(policies),
            options: .init(expressionCostLimit: 50, requestCostLimit: 50))
        let decision = engine.evaluate(Self.exec("ls"))
        #expect(decision.results.first?.status == .error)
        #expect(decision.results.first?.message.contains("cost") == true)
        #expect(decision.outcome == .deny)
    }

    @Test("an expression that several policies repeat is charged to the request budget each time")
    func repeatedExpressionCost() throws {
        let expression = "request.user.groups.all(g, g.size() > 0)"
        let (_, cost) = try CELEnvironment.portcullisPolicy.compile(expression).evaluateWithCost(
            CELActivation(["request": ["user": ["groups": ["developers"]]]]))
        let rule = "      - {name: r, action: Allow, expression: \"\(expression)\"}"
        let policies = try PolicyLoader.parse(
            Self.policy("p", rules: rule) + Self.policy("q", rules: rule), file: "t.yaml")
        let engine = PolicyEngine(
            policies: try PolicyCompiler.compile(policies),
            options: .init(expressionCostLimit: 10 * cost, requestCostLimit: cost + cost / 2))
        let results = engine.evaluate(Self.exec("ls")).results
        #expect(results.map(\.status) == [.matched, .error])
        #expect(results.last?.message.contains("cost") == true)
    }

    @Test(
        "variables that several policies declare alike are charged to the request budget each time",
        arguments: [10, 3] as [UInt64])
    func repeatedVariablesCost(budgetInHalves: UInt64) throws {
        // Five times the variables' cost is enough for both policies, one and a half for the first.
        let expected: [Decision.RuleResult.Status] = budgetInHalves >= 10 ? [.matched, .matched] : [.matched, .error]
        let expression = "request.user.groups.all(g, g.size() > 0)"
        let (_, cost) = try CELEnvironment.portcullisPolicy.compile(expression).evaluateWithCost(
            CELActivation(["request": ["user": ["groups": ["developers"]]]]))
        let variables = """
              variables:
              - {name: a, expression: "\(expression)"}
              - {name: b, expression: "true"}
            """
        let rule = "      - {name: r, action: Allow, expression: \"variables.a && variables.b\"}"
        let policies = try PolicyLoader.parse(
            Self.policy("p", extra: variables, rules: rule) + Self.policy("q", extra: variables, rules: rule),
            file: "t.yaml")
        // The second policy's variables come to the record the first built; within the budget they
        // are charged at once, beyond it they fail as when evaluated one by one.
        let engine = PolicyEngine(
            policies: try PolicyCompiler.compile(policies),
            options: .init(expressionCostLimit: 10 * cost, requestCostLimit: budgetInHalves * cost / 2 + 4))
        let results = engine.evaluate(Self.exec("ls")).results
        #expect(results.map(\.status) == expected, "\(results)")
        if expected.last == .error { #expect(results.last?.rule.rule == "variables.a") }
    }

    @Test("a failed reload keeps the previous policies in force")
    func storeKeepsGoodSet() throws {
        let store = PolicyStore(
            try Self.engine(Self.policy("p", rules: "      - {name: r, action: Deny, message: no}")))
        let broken = try PolicyLoader.parse(
            Self.policy("q", rules: "      - {name: r, action: Deny, expression: \"request.verb ==\", message: no}"),
            file: "t.yaml")
        #expect(throws: PolicyLoadErrors.self) { try store.replace(with: broken) }
        #expect(store.engine.evaluate(Self.exec("ls")).outcome == .deny)
        let good = try PolicyLoader.parse(Self.policy("q", rules: "      - {name: r, action: Allow}"), file: "t.yaml")
        try store.replace(with: good)
        #expect(store.engine.evaluate(Self.exec("ls")).outcome == .allow)
    }

    @Test("Mutate rules resolve their patch values per request, and only in Enforce mode")
    func mutations() throws {
        let rules = """
                  - name: default-team
                    action: Mutate
                    expression: "!has(object.metadata.labels) || !('team' in object.metadata.labels)"
                    patch:
                    - {op: add, path: /metadata/labels/team, value: unassigned}
                    - {op: add, path: /metadata/annotations/owner, valueExpression: "request.user.name"}
                    - {op: remove, path: /metadata/annotations/debug}
            """
        let request = RequestAttributes(
            user: Self.alice, verb: "create", operation: .create, resource: "pods", namespace: "dev",
            object: try CELValue(json: Data(#"{"metadata": {"name": "p"}}"#.utf8)))
        let decision = try Self.engine(Self.policy("p", rules: rules)).evaluate(request)
        #expect(decision.outcome == .allow)
        let operations = try #require(decision.mutations.first?.operations, "\(decision)")
        #expect(
            operations.map(\.path.description) == [
                "/metadata/labels/team", "/metadata/annotations/owner", "/metadata/annotations/debug",
            ])
        #expect(operations.map(\.value) == [.string("unassigned"), .string("alice"), nil])
        let warned = try Self.engine(Self.policy("p", mode: "Warn", rules: rules)).evaluate(request)
        #expect(warned.mutations.isEmpty)
        #expect(warned.warnings == ["p/default-team would change this object (mode Warn)"])
    }

    @Test(
        "the index narrows by resource and verb, never losing a policy that matches, in load order",
        arguments: [
            ("get", "pods", "", ["get-pods", "any-verb-pods", "all-resources-get-list", "no-resources-list-get"]),
            ("list", "pods", "", ["any-verb-pods", "all-resources-get-list", "no-resources-list-get"]),
            ("deletecollection", "pods", "", ["any-verb-pods", "delete-glob-pods"]),
            ("patch", "pods", "", ["any-verb-pods"]),
            ("get", "secrets", "", ["all-resources-get-list", "no-resources-list-get"]),
            ("watch", "secrets", "", [String]()),
            ("get", "pods", "log", ["no-resources-list-get"]),
            ("get", "deployments", "apps", ["all-resources-get-list", "no-resources-list-get", "apps-get"]),
        ])
    func indexByVerb(verb: String, resource: String, groupOrSubresource: String, expected: [String]) throws {
        let allow = "    - {name: r, action: Allow}"
        let engine = try Self.engine(
            Self.policy("get-pods", match: "{resources: [pods], verbs: [get]}", rules: allow)
                + Self.policy("any-verb-pods", match: "{resources: [pods]}", rules: allow)
                + Self.policy("all-resources-get-list", match: #"{resources: ["*"], verbs: [get, list]}"#, rules: allow)
                + Self.policy("delete-glob-pods", match: #"{resources: [pods], verbs: ["delete*"]}"#, rules: allow)
                + Self.policy("no-resources-list-get", match: "{verbs: [list, get]}", rules: allow)
                + Self.policy("apps-get", match: "{resources: [deployments.apps], verbs: [get]}", rules: allow))
        let isGroup = resource == "deployments"
        let request = RequestAttributes(
            user: Self.alice, verb: verb, group: isGroup ? groupOrSubresource : "", resource: resource,
            subresource: isGroup ? "" : groupOrSubresource, namespace: "dev")
        #expect(engine.evaluate(request).results.map(\.rule.policy) == expected)
    }

    @Test(
        "the index narrows by subresource: a pattern without one is the resource itself, pods/* any of them",
        arguments: [
            ("", ["pods", "pods-and-exec"]),
            ("exec", ["exec", "any-subresource", "pods-and-exec"]),
            ("attach", ["any-subresource"]),
            ("log", ["any-subresource"]),
        ])
    func indexBySubresource(subresource: String, expected: [String]) throws {
        let allow = "    - {name: r, action: Allow}"
        let engine = try Self.engine(
            Self.policy("pods", match: "{resources: [pods]}", rules: allow)
                + Self.policy("exec", match: "{resources: [pods/exec]}", rules: allow)
                + Self.policy("any-subresource", match: #"{resources: ["pods/*"]}"#, rules: allow)
                + Self.policy("pods-and-exec", match: #"{resources: [pods, "pods/exec", "pods/e*"]}"#, rules: allow)
                + Self.policy("services", match: "{resources: [services]}", rules: allow))
        let request = RequestAttributes(
            user: Self.alice, verb: "get", resource: "pods", subresource: subresource, namespace: "dev")
        #expect(engine.evaluate(request).results.map(\.rule.policy) == expected)
    }

    @Test("policies that repeat a match block's parts each get their own answer")
    func repeatedMatchParts() throws {
        let allow = "    - {name: r, action: Allow}"
        let engine = try Self.engine(
            Self.policy("sre", match: "{namespaces: [prod-*], subjects: [{group: sre}]}", rules: allow)
                + Self.policy(
                    "developers", match: "{namespaces: [prod-*], subjects: [{group: developers}]}", rules: allow)
                + Self.policy("sre-again", match: "{namespaces: [dev], subjects: [{group: sre}]}", rules: allow)
                + Self.policy(
                    "get", match: "{resources: [pods/exec], verbs: [get], namespaces: [prod-*]}", rules: allow)
                + Self.policy("create", match: "{resources: [pods/exec], verbs: [create]}", rules: allow)
                + Self.policy(
                    "create-in-dev", match: "{resources: [pods/exec], verbs: [create], namespaces: [dev]}", rules: allow
                ))
        #expect(
            engine.evaluate(Self.exec("ls", namespace: "prod-eu")).results.map(\.rule.policy) == [
                "developers", "create",
            ])
        let sre = RequestAttributes.UserInfo(name: "carol", groups: ["sre"])
        #expect(
            engine.evaluate(Self.exec("ls", namespace: "dev", user: sre)).results.map(\.rule.policy) == [
                "sre-again", "create", "create-in-dev",
            ])
    }

    @Test("an expression reading variables is shared only by policies that declare the same variables")
    func sharedOnlyWithSameVariables() throws {
        func policy(_ name: String, _ variables: [(String, String)]) -> String {
            Self.policy(
                name,
                extra: "  variables:\n"
                    + variables.map { "      - {name: \($0.0), expression: \"\($0.1)\"}" }.joined(separator: "\n"),
                rules: "      - {name: r, action: Deny, expression: \"variables.a\", message: \(name)}")
        }
        let isProd = "request.namespace == 'prod'"
        let isDev = "request.namespace == 'dev'"
        let engine = try Self.engine(
            policy("prod", [("a", isProd), ("b", isDev)]) + policy("dev", [("a", isDev)])
                + policy("prod-again", [("a", isProd), ("b", isDev)])
                + policy("swapped", [("b", isProd), ("a", isDev)])
                + policy("prod-last", [("a", isProd), ("b", isDev)]))
        let results = engine.evaluate(Self.exec("ls", namespace: "dev")).results
        #expect(results.map(\.rule.policy) == ["prod", "dev", "prod-again", "swapped", "prod-last"])
        #expect(results.map(\.status) == [.notMatched, .matched, .notMatched, .matched, .notMatched])
    }

    @Test("kind checks answered by the index give the decisions the checks give, operations included")
    func indexedKindAnswers() throws {
        let engine = try Self.engine(
            Self.policy(
                "literal", match: "{resources: [pods, deployments.apps], verbs: [get, update]}",
                rules: "      - {name: r, action: Deny, message: no}")
                + Self.policy(
                    "operations", match: "{resources: [deployments.apps], verbs: [update], operations: [CREATE]}",
                    rules: "      - {name: r, action: Review, message: ask, review: {approvers: {groups: [sre]}}}"))
        let cases: [(String, String, String, AccessPolicy.Operation?, Decision.Outcome)] = [
            ("", "pods", "get", nil, .deny), ("", "pods", "list", nil, .allow), ("apps", "pods", "get", nil, .allow),
            ("apps", "deployments", "update", .update, .deny), ("apps", "deployments", "update", .create, .deny),
            ("", "deployments", "update", .create, .allow),
        ]
        for (group, resource, verb, operation, outcome) in cases {
            let request = RequestAttributes(
                user: Self.alice, verb: verb, operation: operation, group: group, resource: resource, namespace: "prod")
            let decision = engine.evaluate(request)
            #expect(decision.outcome == outcome, "\(group) \(resource) \(verb)")
            let reviewed = decision.results.contains { $0.rule.policy == "operations" && $0.status == .matched }
            #expect(reviewed == (operation == .create && group == "apps"), "\(group) \(resource) \(verb)")
        }
    }
}
