import Foundation
import Policy

/// The answer of an ``ApprovalStore`` for one held request.
public enum ApprovalVerdict: Sendable, Equatable {
    /// An approval covers this request; it may go through.
    case granted(request: String, approvedBy: String)
    /// A request for exactly this is already waiting.
    case pending(request: String)
    /// A new request was filed.
    case requested(request: String)
}

/// Where requests held by a Review rule wait for approval.
///
/// Two stores exist: ``ClusterApprovals`` (AccessRequest objects in the cluster, shared by every
/// replica and guarded by the webhook; the production path) and ``LocalApprovals`` (in the
/// proxy's memory, for clusters without the CRD; one replica, lost on restart).
public protocol ApprovalStore: Sendable {
    /// The namespace the AccessRequests live in; it is part of the `approve` command shown.
    var namespace: String { get }

    /// Finds an active approval that covers exactly `request` (same requester, verb, resource,
    /// object and command), or a pending one; otherwise files it.
    func check(_ request: AccessRequest.Spec, now: Date) async throws -> ApprovalVerdict

    /// The AccessRequest `name`, as the clock leaves it at `now`: what a held command line polls
    /// while it waits for a decision.
    func accessRequest(named name: String, now: Date) async throws -> AccessRequest
}

extension AccessRequest.Spec {
    /// The spec of the AccessRequest for a request held by `review`.
    static func held(
        attributes: RequestAttributes, info: RequestInfo, review: Decision.ReviewRequirement, message: String
    ) -> AccessRequest.Spec {
        // A port-forward connection's port stands in for the command, so an approval covers one port.
        let command =
            attributes.exec.map { $0.line.isEmpty ? $0.command.joined(separator: " ") : $0.line }
            ?? attributes.portForward.map { "port \($0.port)" }
        let resource = attributes.resourceDescription
        let target = info.namespace.isEmpty ? info.name : "\(info.namespace)/\(info.name)"
        let summary = AccessRequest.Summary(
            text: "\(attributes.verb) \(resource) \(target)" + (command.map { ": \($0)" } ?? ""),
            verb: attributes.verb, resource: resource, namespace: info.namespace, name: info.name, command: command,
            fingerprint: RequestFingerprint.make(
                user: attributes.user.name, verb: attributes.verb, resource: resource, namespace: info.namespace,
                name: info.name, command: command))
        return AccessRequest.Spec(
            requester: .init(user: attributes.user.name, groups: attributes.user.groups), request: summary,
            policy: review.rule.policy, rule: review.rule.rule, message: message,
            approvers: .init(
                users: review.spec.approverUsers.map(\.pattern), groups: review.spec.approverGroups.map(\.pattern)),
            grantFor: "\(review.spec.grantFor.components.seconds)s")
    }

    /// Whether an AccessRequest with this spec is for the same access as `other`.
    func covers(_ other: AccessRequest.Spec) -> Bool {
        AccessRequest(metadata: .init(name: ""), spec: self).covers(
            user: other.requester.user, verb: other.request.verb, resource: other.request.resource,
            namespace: other.request.namespace, name: other.request.name, command: other.request.command)
    }
}
