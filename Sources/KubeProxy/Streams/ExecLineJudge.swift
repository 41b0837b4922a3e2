import Foundation
import Policy

/// How typed command lines are checked (`approvals.lineWaitSeconds` in the configuration).
public struct LineCheckSettings: Sendable, Equatable {
    /// How long a line held by a Review rule waits for a decision before it is refused.
    public static let defaultApprovalTimeout: Duration = .seconds(300)

    public var approvalTimeout: Duration
    /// How often a held line asks the approvals store whether it was decided.
    public var pollInterval: Duration

    public init(approvalTimeout: Duration = Self.defaultApprovalTimeout, pollInterval: Duration = .seconds(1)) {
        self.approvalTimeout = approvalTimeout
        self.pollInterval = pollInterval
    }
}

/// What happens to one submitted line.
struct LineVerdict: Sendable, Equatable {
    enum Outcome: String, Sendable, Equatable {
        /// An empty line: nothing to check (the session's command was checked before it started).
        case unchecked
        case allowed
        /// A Review rule held it and an approver let it through.
        case approved
        case blocked
    }

    var outcome: Outcome
    /// For the user's terminal: why the line was blocked, or who approved it.
    var notice: String?
    /// For the recording.
    var marker: String?

    static let unchecked = LineVerdict(outcome: .unchecked)
}

/// Decides submitted lines; a stand-in replaces it in the guard's tests.
protocol LineJudge: Sendable {
    /// `notify` shows a line of text to the user while the judge waits (for an approval).
    func judge(_ line: CommandLineReconstructor.Line, notify: (String) async -> Void) async -> LineVerdict
}

/// Judges each line with the policies in force, as the gate judged the request that opened the
/// session: the same attributes, with `exec.line` set.
///
/// - Deny: blocked, with the rule and its message.
/// - An uncertain line (see ``CommandLineReconstructor/Uncertainty``) is blocked whenever a policy
///   that reads `exec.line` applies to it: the text it would check is not what the shell runs.
///   Where no such policy applies (a break-glass user, a policy scoped to other commands), the line
///   is as good as any other.
/// - Review: the same AccessRequest flow as the gate's, with the line as the request's command;
///   the line waits, polling the store, until it is approved (let through), denied, expired or
///   ``LineCheckSettings/approvalTimeout`` passes (blocked). An approval covers the same line
///   for its `grantFor`, as it does for a whole request.
/// - Allow: let through.
struct ExecLineJudge: LineJudge {
    let policies: PolicyStore
    /// The attributes of the request that opened the session.
    let attributes: RequestAttributes
    let info: RequestInfo
    let approvals: (any ApprovalStore)?
    let settings: LineCheckSettings

    /// Longest line text put in a recording marker.
    static let maximumMarkerText = 256

    func judge(_ line: CommandLineReconstructor.Line, notify: (String) async -> Void) async -> LineVerdict {
        guard !line.text.isEmpty || line.uncertainty != nil else { return .unchecked }
        var request = attributes
        if request.exec == nil { request.exec = .init(command: [], container: "") }
        request.exec?.line = line.text
        let now = Date()
        let engine = policies.engine
        let decision = engine.evaluate(request, now: now)
        let quoted = Self.quote(line.text)
        if decision.outcome == .deny {
            let by = decision.decidedBy.map { " by policy \($0)" } ?? ""
            return LineVerdict(
                outcome: .blocked, notice: "blocked\(by): \(decision.message)",
                marker: "line blocked\(by): \(quoted)")
        }
        if let reason = line.uncertainty, !engine.execLinePolicies(for: request, now: now).isEmpty {
            return LineVerdict(
                outcome: .blocked,
                notice:
                    "blocked: \(Self.describe(reason)), so the proxy cannot check what it runs; type the command in full",
                marker: "line blocked (uncertain: \(reason.rawValue)): \(quoted)")
        }
        switch decision.outcome {
        case .allow, .deny:
            return LineVerdict(outcome: .allowed, marker: "line allowed")
        case .review:
            return await review(decision, request: request, quoted: quoted, notify: notify)
        }
    }

    private func review(
        _ decision: Decision, request: RequestAttributes, quoted: String, notify: (String) async -> Void
    ) async -> LineVerdict {
        let by = decision.decidedBy.map { " by policy \($0)" } ?? ""
        func blocked(_ why: String) -> LineVerdict {
            LineVerdict(
                outcome: .blocked, notice: "blocked\(by): \(why)", marker: "line blocked\(by) (review): \(quoted)")
        }
        guard let review = decision.review else { return blocked(decision.message) }
        let approvers = ProxyGate.describeApprovers(review)
        guard let approvals else {
            return blocked("\(decision.message) (this needs approval by \(approvers); approvals are not configured)")
        }
        let spec = AccessRequest.Spec.held(
            attributes: request, info: info, review: review, message: decision.message)
        let name: String
        do {
            switch try await approvals.check(spec, now: Date()) {
            case .granted(let request, let approvedBy):
                return approved(request, by: approvedBy, store: approvals, quoted: quoted)
            case .pending(let request), .requested(let request):
                name = request
            }
        } catch {
            return blocked("\(decision.message); approvals cannot be checked right now (\(error))")
        }
        await notify(
            "\(decision.message): waiting for approval \(name): run `portcullis approve -n \(approvals.namespace) \(name)` as an approver (\(approvers)); the line is refused if nobody decides within \(Self.describe(settings.approvalTimeout))"
        )
        let clock = ContinuousClock()
        let deadline = clock.now + settings.approvalTimeout
        while clock.now < deadline {
            do {
                try await Task.sleep(for: min(settings.pollInterval, deadline - clock.now))
            } catch {
                // The client typed Ctrl-C (see LineWaitInterrupt), or the session is ending.
                return blocked("stopped waiting for approval \(name); the line was not run")
            }
            guard let current = try? await approvals.accessRequest(named: name, now: Date()) else { continue }
            switch current.state {
            case .approved:
                return approved(name, by: current.status?.decidedBy ?? "?", store: approvals, quoted: quoted)
            case .denied:
                let reason = current.status?.reason.map { ": \($0)" } ?? ""
                return blocked("\(name) was denied by \(current.status?.decidedBy ?? "an approver")\(reason)")
            case .expired:
                return blocked("\(name) expired before anyone approved it")
            case .pending:
                continue
            }
        }
        return blocked("\(name) was not approved within \(Self.describe(settings.approvalTimeout))")
    }

    private func approved(_ name: String, by approver: String, store: any ApprovalStore, quoted: String) -> LineVerdict
    {
        LineVerdict(
            outcome: .approved, notice: "approved by \(approver) (AccessRequest \(store.namespace)/\(name))",
            marker: "line approved by \(approver) (\(store.namespace)/\(name)): \(quoted)")
    }

    static func describe(_ reason: CommandLineReconstructor.Uncertainty) -> String {
        switch reason {
        case .history: "this line was recalled from the shell's history"
        case .completion: "this line was completed by the shell"
        case .editing: "this line was edited with keys whose effect depends on the shell"
        case .tooLong: "this line is longer than \(CommandLineReconstructor.maximumLineLength) characters"
        }
    }

    /// `300 s`, or `0.2 seconds` below a second.
    static func describe(_ duration: Duration) -> String {
        duration >= .seconds(1) && duration.components.attoseconds == 0
            ? "\(duration.components.seconds) s" : "\(duration)"
    }

    static func quote(_ text: String) -> String {
        let scalars = text.unicodeScalars
        guard scalars.count > maximumMarkerText else { return text }
        return String(String.UnicodeScalarView(scalars.prefix(maximumMarkerText))) + "…"
    }
}
