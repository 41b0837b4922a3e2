import Foundation
import Policy
import Testing

@Suite("Loading AccessPolicy documents")
struct PolicyLoaderTests {
    static let complete = """
        apiVersion: portcullis.dev/v1alpha1
        kind: AccessPolicy
        metadata:
          name: prod-guardrails
        spec:
          mode: Warn
          match:
            subjects: [{group: developers}, {user: "agent-*"}, {serviceAccount: "ci/*"}]
            namespaces: ["prod-*"]
            namespaceSelector: {matchLabels: {env: prod}, matchExpressions: [{key: tier, operator: In, values: [web]}]}
            resources: ["pods/exec", "secrets", "deployments.apps"]
            verbs: ["*"]
            operations: [CREATE, CONNECT]
          matchConditions:
          - {name: not-break-glass, expression: "!('break-glass' in request.groups)"}
          variables:
          - name: line
            expression: exec.line
          rules:
          - name: no-recursive-delete
            action: Deny
            expression: |
              exec.line.matches('rm\\\\s+-rf')
            message: recursive deletes are blocked in prod
          - name: psql-needs-approval
            action: Review
            expression: "exec.line.startsWith('psql')"
            message: psql needs an approval
            review: {approvers: {groups: [sre], users: [bob]}, grantFor: 1h30m}
          - name: hide-secrets
            action: Mask
            mask: {fields: ["data.*", "spec.containers[*].env[*].value"], patterns: ["[0-9]{16}"], replacement: "<hidden>"}
        """

    @Test("a complete policy is read into the model")
    func readsCompletePolicy() throws {
        let policies = try PolicyLoader.parse(Self.complete, file: "p.yaml")
        let policy = try #require(policies.first)
        #expect(policies.count == 1)
        #expect(policy.name == "prod-guardrails")
        #expect(policy.mode == .warn)
        #expect(policy.match.subjects.count == 3)
        #expect(policy.match.subjects[2].matches(user: "system:serviceaccount:ci:deployer", groups: []))
        #expect(!policy.match.subjects[2].matches(user: "system:serviceaccount:prod:deployer", groups: []))
        #expect(policy.match.namespaces.map(\.pattern) == ["prod-*"])
        #expect(policy.match.namespaceSelector?.matches(["env": "prod", "tier": "web"]) == true)
        #expect(policy.match.namespaceSelector?.matches(["env": "prod", "tier": "db"]) == false)
        #expect(policy.match.resources.map(\.text) == ["pods/exec", "secrets", "deployments.apps"])
        #expect(policy.match.operations == [.create, .connect])
        #expect(policy.matchConditions.map(\.name) == ["not-break-glass"])
        #expect(policy.variables.first?.expression.source == "exec.line")
        #expect(policy.rules.map(\.action) == [.deny, .review, .mask])
        #expect(policy.rules[0].expression?.source == "exec.line.matches('rm\\\\s+-rf')\n")
        #expect(policy.rules[1].review?.approverGroups.map(\.pattern) == ["sre"])
        #expect(policy.rules[1].review?.grantFor == .seconds(5400))
        #expect(policy.rules[2].mask?.fields.map(\.text) == ["data.*", "spec.containers[*].env[*].value"])
        #expect(policy.rules[2].mask?.replacement == "<hidden>")
    }

    @Test("expression positions map back to the file, inline and in blocks")
    func expressionLocations() throws {
        let policy = try #require(try PolicyLoader.parse(Self.complete, file: "p.yaml").first)
        let block = try #require(policy.rules[0].expression)
        #expect(block.location == SourceLocation(file: "p.yaml", line: 23, column: 7))
        #expect(block.fileLocation(line: 1, column: 10) == SourceLocation(file: "p.yaml", line: 23, column: 16))
        let quoted = try #require(policy.rules[1].expression)
        #expect(quoted.location == SourceLocation(file: "p.yaml", line: 27, column: 18))
        #expect(quoted.fileLocation(line: 1, column: 6) == SourceLocation(file: "p.yaml", line: 27, column: 23))
    }

    @Test("several documents in one stream are all read; empty ones are skipped")
    func multipleDocuments() throws {
        let second = Self.complete.replacingOccurrences(of: "name: prod-guardrails", with: "name: second")
        let policies = try PolicyLoader.parse(Self.complete + "\n---\n---\n" + second, file: "p.yaml")
        #expect(policies.map(\.name) == ["prod-guardrails", "second"])
    }

    @Test("one bad document fails the whole stream, with every problem listed")
    func allOrNothing() {
        let broken = Self.complete.replacingOccurrences(of: "name: prod-guardrails", with: "name: second")
            .replacingOccurrences(of: "mode: Warn", with: "mode: Strict")
            .replacingOccurrences(of: "verbs: [\"*\"]", with: "verbz: [\"*\"]")
        let errors = loadErrors(Self.complete + "\n---\n" + broken)
        #expect(errors.map(\.kind) == [.invalidValue, .unknownKey])
    }

    @Test("a YAML syntax error points at its line and column")
    func yamlSyntax() {
        let errors = loadErrors("apiVersion: portcullis.dev/v1alpha1\nkind: [AccessPolicy\nmetadata: {}\n")
        #expect(errors.count == 1)
        #expect(errors.first?.kind == .yamlSyntax)
        #expect(errors.first?.location.line == 3)
    }

    @Test("policy names must be unique across files")
    func duplicatePolicyNames() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("policies-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try Self.complete.write(to: directory.appendingPathComponent("a.yaml"), atomically: true, encoding: .utf8)
        try Self.complete.write(to: directory.appendingPathComponent("b.yml"), atomically: true, encoding: .utf8)
        try "not a policy".write(to: directory.appendingPathComponent("notes.txt"), atomically: true, encoding: .utf8)
        #expect {
            try PolicyLoader.load(paths: [directory.path])
        } throws: { error in
            guard let errors = (error as? PolicyLoadErrors)?.errors, errors.count == 1 else { return false }
            return errors[0].kind == .duplicateName && errors[0].location.file.hasSuffix("b.yml")
                && errors[0].hint.contains("a.yaml:1:1")
        }
    }

    @Test("a missing file is an error naming it")
    func missingFile() {
        #expect {
            try PolicyLoader.load(paths: ["/nonexistent/policies.yaml"])
        } throws: { error in
            (error as? PolicyLoadErrors)?.errors.first?.description
                == "/nonexistent/policies.yaml:1:1: error: no such file or directory"
        }
    }

    private func loadErrors(_ text: String) -> [PolicyLoadError] {
        do {
            _ = try PolicyLoader.parse(text, file: "p.yaml")
            return []
        } catch {
            return error.errors
        }
    }
}
