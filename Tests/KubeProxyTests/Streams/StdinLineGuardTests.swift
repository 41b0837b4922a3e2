import Foundation
import NIOCore
import Policy
import SPDY
import Testing

@testable import KubeProxy

/// The line guard on in-memory sessions: what reaches the command, what the user sees, what the
/// recording and the audit counts say.
@Suite("StdinLineGuard")
struct StdinLineGuardTests {
    static let policyYAML = """
        apiVersion: portcullis.dev/v1alpha1
        kind: AccessPolicy
        metadata: {name: lines}
        spec:
          match: {namespaces: [prod], resources: [pods/exec]}
          matchConditions: [{name: not-break-glass, expression: "!('break-glass' in request.user.groups)"}]
          rules:
          - {name: no-rm-rf, action: Deny, expression: "exec.line.matches('rm +-rf')", message: "recursive deletes are blocked"}
          - name: reboot-needs-approval
            action: Review
            expression: "exec.line.startsWith('reboot')"
            message: reboot needs approval
            review: {approvers: {groups: [sre]}, grantFor: 10m}
        """

    static let alice = RequestAttributes.UserInfo(name: "alice", groups: ["developers"])

    /// The guard with the real judge: the policy above, the session's request, an approvals store.
    static func policyGuard(
        terminal: Bool, user: RequestAttributes.UserInfo = alice, approvals: (any ApprovalStore)? = nil,
        settings: LineCheckSettings = LineCheckSettings(pollInterval: .milliseconds(20))
    ) throws -> StdinLineGuard? {
        let engine = PolicyEngine(policies: try PolicyCompiler.compile(try PolicyLoader.parse(policyYAML, file: "t")))
        let target = "/api/v1/namespaces/prod/pods/web/exec?command=sh&container=app&stdin=true&tty=\(terminal)"
        let info = try RequestInfo(method: "POST", target: target)
        let attributes = info.attributes(user: user, query: RequestInfo.query(of: target))
        guard !engine.execLinePolicies(for: attributes).isEmpty else { return nil }
        return StdinLineGuard(
            terminal: terminal,
            judge: ExecLineJudge(
                policies: PolicyStore(engine), attributes: attributes, info: info, approvals: approvals,
                settings: settings))
    }

    static let tty = RemoteCommandOptions(stdin: true, stdout: true, stderr: false, tty: true)
    static let pipe = RemoteCommandOptions(stdin: true, stdout: true, stderr: true, tty: false)

    /// Types `input` (one chunk each), ends stdin, and runs the bridge to its end.
    static func run(
        _ input: [String], options: RemoteCommandOptions, lineGuard: StdinLineGuard?
    ) async -> (FakeUpstream, FakeDownstream, RecordingObserver, RemoteCommandSummary) {
        let upstream = FakeUpstream(status: .success(.success), echoesStdin: true)
        let downstream = FakeDownstream(options: options)
        let observer = RecordingObserver()
        for chunk in input { downstream.type(chunk) }
        downstream.endStdin()
        let summary = await RemoteCommandBridge(
            downstream: downstream, upstream: upstream, observer: observer, lineGuard: lineGuard
        ).run()
        return (upstream, downstream, observer, summary)
    }

    @Test("a guard exists only when a policy reads the line for this session")
    func guardOnlyWhenNeeded() throws {
        #expect(try Self.policyGuard(terminal: true) != nil)
        let responder = RequestAttributes.UserInfo(name: "carol", groups: ["break-glass"])
        #expect(try Self.policyGuard(terminal: true, user: responder) == nil)
    }

    @Test("with a terminal, an allowed line goes up keystroke for keystroke, Enter included")
    func allowedKeystrokes() async throws {
        let lineGuard = try #require(try Self.policyGuard(terminal: true))
        let (upstream, _, observer, summary) = await Self.run(
            ["l", "s", " -l", "\r"], options: Self.tty, lineGuard: lineGuard)
        #expect(upstream.stdinText == "ls -l\r")
        #expect(upstream.stdinClosed)
        #expect(observer.events.contains("m line allowed"))
        #expect(summary.lines == .init(checked: 1, blocked: 0, approved: 0))
        #expect(summary.bytesIn == 6)
    }

    @Test("with a terminal, a denied line's Enter is replaced by Ctrl-C and the user sees why")
    func deniedKeystrokes() async throws {
        let lineGuard = try #require(try Self.policyGuard(terminal: true))
        let (upstream, downstream, observer, summary) = await Self.run(
            ["rm -rf /tmp/x", "\r"], options: Self.tty, lineGuard: lineGuard)
        #expect(upstream.stdinText == "rm -rf /tmp/x\u{03}")
        let notice = "\r\n[portcullis] blocked by policy lines/no-rm-rf: recursive deletes are blocked\r\n"
        #expect(downstream.written(.stdout).contains(notice))
        #expect(observer.events.contains("m line blocked by policy lines/no-rm-rf: rm -rf /tmp/x"))
        #expect(observer.events.contains("stdout \(notice)"), "the notice is in the recording too")
        #expect(summary.lines == .init(checked: 1, blocked: 1, approved: 0))
    }

    @Test("the line checked is the edited one: an erased rm -rf is allowed, an assembled one is not")
    func editedLines() async throws {
        let lineGuard = try #require(try Self.policyGuard(terminal: true))
        let (upstream, _, _, summary) = await Self.run(
            ["rm -rf /x\u{15}echo ok\r", "-rf /x\u{01}rm \r"], options: Self.tty, lineGuard: lineGuard)
        #expect(upstream.stdinText == "rm -rf /x\u{15}echo ok\r-rf /x\u{01}rm \u{03}")
        #expect(summary.lines == .init(checked: 2, blocked: 1, approved: 0))
    }

    @Test("several lines in one chunk are each checked, and input after a blocked line waits for the shell")
    func severalLinesInOneChunk() async throws {
        let lineGuard = try #require(try Self.policyGuard(terminal: true))
        let clock = ContinuousClock()
        let start = clock.now
        let (upstream, _, _, summary) = await Self.run(
            ["echo a\rrm -rf /x\recho b\r"], options: Self.tty, lineGuard: lineGuard)
        #expect(upstream.stdinText == "echo a\rrm -rf /x\u{03}echo b\r")
        #expect(clock.now - start >= StdinLineGuard.settleDelay)
        #expect(summary.lines == .init(checked: 3, blocked: 1, approved: 0))
    }

    @Test("a denied line inside a bracketed paste ends the paste and drops the rest of it")
    func deniedInsidePaste() async throws {
        let lineGuard = try #require(try Self.policyGuard(terminal: true))
        let paste = "\u{1B}[200~echo a\nrm -rf /x\necho b\n\u{1B}[201~"
        let (upstream, _, _, summary) = await Self.run(
            [paste, "ls\r"], options: Self.tty, lineGuard: lineGuard)
        #expect(upstream.stdinText == "\u{1B}[200~echo a\nrm -rf /x\u{1B}[201~\u{03}ls\r")
        #expect(summary.lines == .init(checked: 3, blocked: 1, approved: 0))
    }

    @Test("a line recalled from history is blocked, since a policy reads the lines")
    func historyRecallBlocked() async throws {
        let lineGuard = try #require(try Self.policyGuard(terminal: true))
        let (upstream, downstream, observer, summary) = await Self.run(
            ["\u{1B}[A", "\r"], options: Self.tty, lineGuard: lineGuard)
        #expect(upstream.stdinText == "\u{1B}[A\u{03}")
        #expect(downstream.written(.stdout).contains("recalled from the shell's history"))
        #expect(observer.events.contains("m line blocked (uncertain: history): "))
        #expect(summary.lines?.blocked == 1)
    }

    @Test("an empty line is not checked, and Ctrl-C'd input is never judged")
    func emptyAndAbandoned() async throws {
        let lineGuard = try #require(try Self.policyGuard(terminal: true))
        let (upstream, _, observer, summary) = await Self.run(
            ["\r", "rm -rf /\u{03}", "\r"], options: Self.tty, lineGuard: lineGuard)
        #expect(upstream.stdinText == "\rrm -rf /\u{03}\r")
        #expect(summary.lines == .init(checked: 0, blocked: 0, approved: 0))
        #expect(!observer.events.contains { $0.hasPrefix("m ") })
    }

    @Test("without a terminal, allowed lines go up whole and a denied one ends stdin before it")
    func pipedLines() async throws {
        let lineGuard = try #require(try Self.policyGuard(terminal: false))
        let (upstream, downstream, _, summary) = await Self.run(
            ["echo a\nrm -rf", " /x\necho b\n", "echo c\n"], options: Self.pipe, lineGuard: lineGuard)
        #expect(upstream.stdinText == "echo a\n")
        #expect(upstream.stdinClosed)
        #expect(
            downstream.written(.stderr)
                == "[portcullis] blocked by policy lines/no-rm-rf: recursive deletes are blocked\n")
        #expect(summary.lines == .init(checked: 2, blocked: 1, approved: 0))
    }

    @Test("without a terminal, a last line without a newline is judged at the end of input")
    func lastLineWithoutNewline() async throws {
        let first = try #require(try Self.policyGuard(terminal: false))
        let allowed = await Self.run(["echo a\nls"], options: Self.pipe, lineGuard: first)
        #expect(allowed.0.stdinText == "echo a\nls")
        #expect(allowed.0.stdinClosed)
        #expect(allowed.3.lines?.checked == 2)
        let second = try #require(try Self.policyGuard(terminal: false))
        let denied = await Self.run(["echo a\nrm -rf /x"], options: Self.pipe, lineGuard: second)
        #expect(denied.0.stdinText == "echo a\n")
        #expect(denied.0.stdinClosed)
        #expect(denied.3.lines?.blocked == 1)
    }

    @Test("without a terminal, a line over the limit is held only up to the limit, and blocked")
    func pipedLineOverLimit() async throws {
        let long = String(repeating: "x", count: CommandLineReconstructor.maximumLineLength + 10) + "\n"
        let lineGuard = try #require(try Self.policyGuard(terminal: false))
        let (upstream, downstream, _, summary) = await Self.run(
            ["echo a\n", long], options: Self.pipe, lineGuard: lineGuard)
        #expect(upstream.stdinText == "echo a\n")
        #expect(downstream.written(.stderr).contains("longer than \(CommandLineReconstructor.maximumLineLength)"))
        #expect(summary.lines?.blocked == 1)
    }

    // MARK: Review

    /// Runs a terminal session that types `line`, waits for its AccessRequest, lets `decide` act on
    /// it, then ends the session.
    static func reviewSession(
        _ line: String, store: LocalApprovals,
        settings: LineCheckSettings = LineCheckSettings(
            pollInterval: .milliseconds(20)),
        downstreamBox: Box? = nil, decide: @escaping @Sendable (String) async throws -> Void
    ) async throws -> (FakeUpstream, FakeDownstream, RecordingObserver, RemoteCommandSummary) {
        let upstream = FakeUpstream(status: .success(.success))
        let downstream = FakeDownstream(options: Self.tty)
        downstreamBox?.downstream = downstream
        let observer = RecordingObserver()
        let lineGuard = try #require(try Self.policyGuard(terminal: true, approvals: store, settings: settings))
        let session = Task {
            await RemoteCommandBridge(
                downstream: downstream, upstream: upstream, observer: observer, lineGuard: lineGuard
            ).run()
        }
        downstream.type(line)
        // Generous deadlines: these only run long when the test runner starves this task (the
        // whole suite shares two cores); nothing here is a timing requirement.
        let deadline = ContinuousClock.now + .seconds(60)
        var name: String?
        while name == nil, ContinuousClock.now < deadline {
            name = await store.list(now: Date()).items.first?.metadata.name
            if name == nil { try await Task.sleep(for: .milliseconds(10)) }
        }
        let request = try #require(name)
        // Nothing of the Enter has gone up while the line waits.
        #expect(upstream.stdinText == String(line.dropLast()))
        try await decide(request)
        // The guard has acted on the decision once something follows the held line upstream:
        // its Enter (approved) or a Ctrl-C (refused); then end the session.
        let held = String(line.dropLast())
        while upstream.stdinText == held, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        downstream.endStdin()
        try await Task.sleep(for: .milliseconds(50))
        upstream.endOutput()
        return (upstream, downstream, observer, await session.value)
    }

    @Test("a Review line waits, visibly, until another identity approves it, then runs")
    func reviewApproved() async throws {
        let store = LocalApprovals(namespace: "portcullis-system")
        let (upstream, downstream, observer, summary) = try await Self.reviewSession("reboot now\r", store: store) {
            name in
            _ = try await store.decide(name, .approved, by: "bob", groups: ["sre"], now: Date())
        }
        let name = try #require(await store.list(now: Date()).items.first?.metadata.name)
        #expect(upstream.stdinText == "reboot now\r")
        let shown = downstream.written(.stdout)
        #expect(
            shown.contains(
                "[portcullis] reboot needs approval: waiting for approval \(name): run `portcullis approve -n portcullis-system \(name)` as an approver (group sre)"
            ), "\(shown)")
        #expect(shown.contains("[portcullis] approved by bob (AccessRequest portcullis-system/\(name))"))
        #expect(observer.events.contains("m line approved by bob (portcullis-system/\(name)): reboot now"))
        #expect(summary.lines == .init(checked: 1, blocked: 0, approved: 1))
        let spec = try await store.get(name, now: Date()).spec
        #expect(spec.request.command == "reboot now")
        #expect(spec.requester.user == "alice")
    }

    @Test("a Review line that is denied is cleared like a denied one")
    func reviewDenied() async throws {
        let store = LocalApprovals(namespace: "portcullis-system")
        let (upstream, downstream, _, summary) = try await Self.reviewSession("reboot now\r", store: store) { name in
            _ = try await store.decide(name, .denied, by: "bob", groups: ["sre"], reason: "not today", now: Date())
        }
        #expect(upstream.stdinText == "reboot now\u{03}")
        #expect(downstream.written(.stdout).contains("was denied by bob: not today"))
        #expect(summary.lines == .init(checked: 1, blocked: 1, approved: 0))
    }

    @Test("a Review line nobody decides is refused after the timeout")
    func reviewTimeout() async throws {
        let store = LocalApprovals(namespace: "portcullis-system")
        let settings = LineCheckSettings(approvalTimeout: .milliseconds(200), pollInterval: .milliseconds(20))
        let (upstream, downstream, _, summary) = try await Self.reviewSession(
            "reboot now\r", store: store, settings: settings
        ) { _ in }
        #expect(upstream.stdinText == "reboot now\u{03}")
        #expect(downstream.written(.stdout).contains("was not approved within 0.2 seconds"))
        #expect(summary.lines?.blocked == 1)
    }

    @Test("an approval covers the same line again without waiting")
    func approvalCoversRepeats() async throws {
        let store = LocalApprovals(namespace: "portcullis-system")
        _ = try await Self.reviewSession("reboot now\r", store: store) { name in
            _ = try await store.decide(name, .approved, by: "bob", groups: ["sre"], now: Date())
        }
        let (upstream, _, _, summary) = await Self.run(
            ["reboot now\r"], options: Self.tty,
            lineGuard: try Self.policyGuard(terminal: true, approvals: store))
        #expect(upstream.stdinText == "reboot now\r")
        #expect(summary.lines?.approved == 1)
    }

    @Test("without an approvals store a Review line is blocked")
    func reviewWithoutStore() async throws {
        let (upstream, downstream, _, _) = await Self.run(
            ["reboot\r"], options: Self.tty, lineGuard: try Self.policyGuard(terminal: true))
        #expect(upstream.stdinText == "reboot\u{03}")
        #expect(downstream.written(.stdout).contains("approvals are not configured"))
    }

    @Test("Ctrl-C typed while a line waits for approval ends the wait; the line does not run")
    func reviewInterrupted() async throws {
        let store = LocalApprovals(namespace: "portcullis-system")
        // Far beyond the bound below: while the suite runs on two shared cores the cooperative pool
        // can be busy for tens of seconds, and the Ctrl-C must still be what ended the wait (the
        // message says which it was).
        let settings = LineCheckSettings(approvalTimeout: .seconds(300), pollInterval: .milliseconds(20))
        let clock = ContinuousClock()
        let start = clock.now
        let downstreamBox = Box()
        let (upstream, downstream, observer, summary) = try await Self.reviewSession(
            "reboot now\r", store: store, settings: settings, downstreamBox: downstreamBox
        ) { _ in
            downstreamBox.downstream?.type("\u{03}")
        }
        #expect(clock.now - start < .seconds(240), "the wait ended at the Ctrl-C, not at the 300 s timeout")
        #expect(upstream.stdinText == "reboot now\u{03}\u{03}", "the held Enter never went up")
        #expect(downstream.written(.stdout).contains("stopped waiting for approval"))
        #expect(observer.events.contains { $0.hasPrefix("m line blocked by policy lines/reboot-needs-approval") })
        #expect(summary.lines == .init(checked: 1, blocked: 1, approved: 0))
    }

    @Test("a Ctrl-C already typed when the wait begins ends it at once")
    func reviewInterruptedAhead() async throws {
        let store = LocalApprovals(namespace: "portcullis-system")
        // Far beyond the bound below: while the suite runs on two shared cores the cooperative pool
        // can be busy for tens of seconds, and the Ctrl-C must still be what ended the wait (the
        // message says which it was).
        let settings = LineCheckSettings(approvalTimeout: .seconds(300), pollInterval: .milliseconds(20))
        let clock = ContinuousClock()
        let start = clock.now
        let (upstream, downstream, _, summary) = await Self.run(
            ["reboot now\r", "\u{03}"], options: Self.tty,
            lineGuard: try Self.policyGuard(terminal: true, approvals: store, settings: settings))
        #expect(clock.now - start < .seconds(240), "the wait ended at the Ctrl-C, not at the 300 s timeout")
        #expect(upstream.stdinText == "reboot now\u{03}\u{03}")
        #expect(downstream.written(.stdout).contains("stopped waiting for approval"))
        #expect(summary.lines?.blocked == 1)
    }
}

/// Hands the session's in-memory client to a test's callback.
final class Box: @unchecked Sendable {
    var downstream: FakeDownstream?
}
