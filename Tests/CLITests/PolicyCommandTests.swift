import Foundation
import Sandbox
import TestSupport
import Testing

/// `portcullis policy lint|eval|test`, run as the real binary.
@Suite("portcullis policy", .timeLimit(.minutes(5)))
struct PolicyCommandTests {
    static let examples = Paths.packageRoot.appendingPathComponent("manifests/policies/examples").path
    static let broken = Paths.packageRoot.appendingPathComponent("Tests/PolicyTests/Fixtures/broken").path

    @Test("lint accepts the example policies")
    func lintExamples() async throws {
        let result = try await portcullis(["policy", "lint", Self.examples])
        #expect(result.exitCode == 0, "\(result.standardError)")
        #expect(result.standardOutput == "8 policies OK\n")
    }

    @Test("lint reports every problem with file:line:column and exits 1")
    func lintBroken() async throws {
        let result = try await portcullis([
            "policy", "lint", Self.broken + "/01-unknown-key.yaml", Self.broken + "/15-cel-type-error.yaml",
        ])
        #expect(result.exitCode == 1)
        let lines = result.standardError.split(separator: "\n").map(String.init)
        #expect(
            lines.contains { $0.hasSuffix("01-unknown-key.yaml:7:5: error: unknown key \"namespace\" in spec.match") })
        #expect(
            lines.contains {
                $0.contains("15-cel-type-error.yaml:12:28: error: CEL: found no matching overload for '_+_'")
            })
        #expect(lines.last == "2 problems found")
    }

    @Test("eval prints the value as JSON, or the error with its column")
    func eval() async throws {
        let bindings = try Paths.makeScratchDirectory("eval").appendingPathComponent("b.json")
        try Data(#"{"request": {"namespace": "prod-eu", "user": {"groups": ["sre"]}}, "limit": 3}"#.utf8).write(
            to: bindings)
        let ok = try await portcullis([
            "policy", "eval", "[request.namespace.startsWith('prod'), request.user.groups.size() + limit]",
            "--bindings",
            bindings.path,
        ])
        #expect(ok.exitCode == 0, "\(ok.standardError)")
        #expect(ok.standardOutput == "[true,4]\n")
        let bad = try await portcullis(["policy", "eval", "1 + ", "--bindings", bindings.path])
        #expect(bad.exitCode == 1)
        #expect(bad.standardError.hasPrefix("error: 1:5: Syntax error"))
        let overflow = try await portcullis(["policy", "eval", "9223372036854775807 + 1"])
        #expect(overflow.exitCode == 1)
        #expect(overflow.standardError.contains("overflow"))
    }

    @Test("test runs the example cases, prints a table and exits 0")
    func testExamples() async throws {
        let result = try await portcullis([
            "policy", "test", Paths.packageRoot.appendingPathComponent("manifests/policies/tests").path,
        ])
        #expect(result.exitCode == 0, "\(result.standardOutput)\(result.standardError)")
        #expect(result.standardOutput.hasPrefix("RESULT  SUITE"))
        #expect(
            result.standardOutput.contains(
                try Regex(
                    #"PASS +examples +rm -rf is blocked in prod +Deny +Deny \(exec-guardrails/no-recursive-delete\)"#)))
        #expect(result.standardOutput.hasSuffix("35 passed, 0 failed\n"))
        #expect(result.standardOutput.contains(try Regex(#"PASS +sandbox +printenv in dev waits for sre +Review"#)))
    }

    @Test("test exits 1 and shows what differed when a case fails")
    func testFailure() async throws {
        let directory = try Paths.makeScratchDirectory("policy-test")
        try """
        apiVersion: portcullis.dev/v1alpha1
        kind: PolicyTest
        metadata: {name: wrong}
        policies: [\(Self.examples)]
        cases:
        - name: expects the wrong outcome
          request: {user: {name: alice}, verb: create, resource: pods/exec, namespace: prod, exec: {command: [rm, -rf, /]}}
          expect: {outcome: Allow}
        """.write(to: directory.appendingPathComponent("portcullis-test.yaml"), atomically: true, encoding: .utf8)
        let result = try await portcullis(["policy", "test", directory.path])
        #expect(result.exitCode == 1)
        #expect(
            result.standardOutput.contains(
                try Regex(
                    #"FAIL +wrong +expects the wrong outcome +Allow +Deny \(exec-guardrails/no-recursive-delete\)"#)))
        #expect(result.standardOutput.contains("outcome Deny, expected Allow"))
        #expect(result.standardOutput.hasSuffix("0 passed, 1 failed\n"))
    }

    private func portcullis(_ arguments: [String]) async throws -> ProcessResult {
        try await ProcessRunner.run(Paths.productsDirectory.appendingPathComponent("portcullis"), arguments: arguments)
    }
}
