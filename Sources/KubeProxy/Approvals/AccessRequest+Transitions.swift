import Foundation
import Policy

/// The life of an AccessRequest, as the local store applies it (the webhook enforces the same
/// rules on the cluster's objects):
///
/// ```
///  Pending ──approve (approver, not the requester)──▶ Approved ──expiresAt──▶ Expired
///     │ └────deny (approver, not the requester)─────▶ Denied
///     └──────────────pendingLifetime───────────────────────────────────────▶ Expired
/// ```
/// Decided and expired requests never change again. Who decided and when is stamped from the
/// authenticated caller and the clock, never taken from what the client sent.
extension AccessRequest {
    /// The request after `user` (with `groups`) sets it to `state` at `now`.
    func deciding(
        _ state: State, by user: String, groups: [String], reason: String?, at now: Date
    ) throws(ApprovalsError) -> AccessRequest {
        guard self.state == .pending else {
            throw ApprovalsError(.conflict, "AccessRequest \(metadata.name) was already \(self.state.rawValue)")
        }
        if let refusal = refusal(toDecideBy: user, groups: groups) {
            throw ApprovalsError(.forbidden, refusal)
        }
        var decided = self
        switch state {
        case .approved:
            decided.status = approvalStatus(by: user, at: now)
        case .denied:
            decided.status = Status(state: .denied, decidedBy: user, decidedAt: Self.formatTimestamp(now))
        case .pending, .expired:
            throw ApprovalsError(
                .invalid, "status.state must be Approved or Denied, not \(state.rawValue); expiry is the clock's")
        }
        decided.status?.reason = reason
        return decided
    }

    /// The request as the clock leaves it at `now`: an approval past `expiresAt`, or a request
    /// left pending for `pendingLifetime`, is Expired.
    func aged(at now: Date, pendingLifetime: TimeInterval) -> AccessRequest {
        var aged = self
        switch state {
        case .approved where !grantIsActive(at: now):
            aged.status?.state = .expired
        case .pending:
            let created = metadata.creationTimestamp.flatMap(Self.parseTimestamp) ?? now
            if now >= created.addingTimeInterval(pendingLifetime) {
                aged.status = Status(state: .expired, reason: "not decided within \(Int(pendingLifetime))s")
            }
        case .approved, .denied, .expired:
            break
        }
        return aged
    }
}
