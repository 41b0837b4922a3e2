import Foundation
import Policy
import Testing

@testable import KubeProxy

/// One line at a time against the policies, as the guard asks.
@Suite("ExecLineJudge")
struct ExecLineJudgeTests {
    typealias Line = CommandLineReconstructor.Line

    static func judge(user: RequestAttributes.UserInfo = StdinLineGuardTests.alice) throws -> ExecLineJudge {
        let engine = PolicyEngine(
            policies: try PolicyCompiler.compile(try PolicyLoader.parse(StdinLineGuardTests.policyYAML, file: "t")))
        let target = "/api/v1/namespaces/prod/pods/web/exec?command=sh&container=app&stdin=true&tty=true"
        let info = try RequestInfo(method: "POST", target: target)
        return ExecLineJudge(
            policies: PolicyStore(engine),
            attributes: info.attributes(user: user, query: RequestInfo.query(of: target)),
            info: info, approvals: nil, settings: LineCheckSettings())
    }

    static func verdict(
        _ line: Line, user: RequestAttributes.UserInfo = StdinLineGuardTests.alice
    ) async throws
        -> LineVerdict
    {
        try await judge(user: user).judge(line) { _ in }
    }

    @Test("an empty line is not evaluated; a plain one is allowed and marked without its text")
    func emptyAndAllowed() async throws {
        #expect(try await Self.verdict(Line("")) == .unchecked)
        #expect(try await Self.verdict(Line("ls -l")) == LineVerdict(outcome: .allowed, marker: "line allowed"))
    }

    @Test("a denied line names the rule and its message, and the marker carries the line")
    func denied() async throws {
        let verdict = try await Self.verdict(Line("rm -rf /var"))
        #expect(verdict.outcome == .blocked)
        #expect(verdict.notice == "blocked by policy lines/no-rm-rf: recursive deletes are blocked")
        #expect(verdict.marker == "line blocked by policy lines/no-rm-rf: rm -rf /var")
    }

    @Test("an uncertain line is blocked where a line policy applies, and judged as usual where none does")
    func uncertain() async throws {
        let recalled = try await Self.verdict(Line("ls", uncertainty: .history))
        #expect(recalled.outcome == .blocked)
        #expect(recalled.notice?.contains("recalled from the shell's history") == true)
        #expect(recalled.marker == "line blocked (uncertain: history): ls")
        let completed = try await Self.verdict(Line("cat /etc/pa", uncertainty: .completion))
        #expect(completed.notice?.contains("completed by the shell") == true)
        // A Deny is still the reason shown when the guess already matches one.
        let denied = try await Self.verdict(Line("rm -rf /x", uncertainty: .editing))
        #expect(denied.notice == "blocked by policy lines/no-rm-rf: recursive deletes are blocked")
        // No policy reads this user's lines: the guess is as good as any line.
        let responder = RequestAttributes.UserInfo(name: "carol", groups: ["break-glass"])
        #expect(try await Self.verdict(Line("ls", uncertainty: .history), user: responder).outcome == .allowed)
    }

    @Test("markers keep at most the first 256 characters of a line")
    func longMarker() async throws {
        let long = "rm -rf /" + String(repeating: "a", count: 400)
        let marker = try #require(try await Self.verdict(Line(long)).marker)
        #expect(marker == "line blocked by policy lines/no-rm-rf: " + String(long.prefix(256)) + "…")
    }

    @Test("wait limits read as whole seconds, or as Swift prints shorter ones")
    func durations() {
        #expect(ExecLineJudge.describe(.seconds(300)) == "300 s")
        #expect(ExecLineJudge.describe(.milliseconds(200)) == "0.2 seconds")
    }
}
