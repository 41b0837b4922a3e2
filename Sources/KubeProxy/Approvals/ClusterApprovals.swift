import Foundation
import NIOHTTP1
import Policy

/// Where held requests wait for approval: `AccessRequest` objects in the cluster, written with the
/// proxy's own identity. Every replica reads the same objects, so an approval given through any
/// path (another replica, `kubectl`, `portcullis approve`) releases the request everywhere; the
/// webhook makes sure only a listed approver who is not the requester can give it.
public struct ClusterApprovals: Sendable {
    public enum Verdict: Sendable, Equatable {
        /// An approval covers this request; it may go through.
        case granted(request: String, approvedBy: String)
        /// A request for exactly this is already waiting.
        case pending(request: String)
        /// A new request was filed.
        case requested(request: String)
    }

    let client: KubernetesClient
    public let namespace: String

    public init(client: KubernetesClient, namespace: String) {
        self.client = client
        self.namespace = namespace
    }

    static let fingerprintLabel = "portcullis.dev/fingerprint"

    var collection: String { "/apis/\(PolicyAPI.group)/\(PolicyAPI.version)/namespaces/\(namespace)/accessrequests" }

    /// Finds an approval for `summary` asked by `requester`, or files a request for one.
    public func check(
        requester: AccessRequest.Subject, summary: AccessRequest.Summary, decision: Decision.ReviewRequirement,
        message: String, now: Date = Date()
    ) async throws -> Verdict {
        let existing = try await requests(fingerprint: summary.fingerprint).filter {
            $0.covers(
                user: requester.user, verb: summary.verb, resource: summary.resource, namespace: summary.namespace,
                name: summary.name, command: summary.command)
        }
        if let approved = existing.first(where: { $0.grantIsActive(at: now) }) {
            return .granted(request: approved.metadata.name, approvedBy: approved.status?.decidedBy ?? "")
        }
        if let pending = existing.first(where: { $0.state == .pending }) {
            return .pending(request: pending.metadata.name)
        }
        let grant = decision.spec.grantFor.components.seconds
        let request = AccessRequest(
            metadata: .init(name: "", namespace: namespace, labels: [Self.fingerprintLabel: summary.fingerprint]),
            spec: .init(
                requester: requester, request: summary, policy: decision.rule.policy, rule: decision.rule.rule,
                message: message,
                approvers: .init(
                    users: decision.spec.approverUsers.map(\.pattern),
                    groups: decision.spec.approverGroups.map(\.pattern)),
                grantFor: "\(grant)s"),
            status: nil)
        var object = try JSONSerialization.jsonObject(with: JSONEncoder().encode(request)) as? [String: Any] ?? [:]
        var metadata = object["metadata"] as? [String: Any] ?? [:]
        metadata["name"] = nil
        metadata["generateName"] = "ar-"
        object["metadata"] = metadata
        let created = try await client.json(.POST, collection, object)
        let name = (created["metadata"] as? [String: Any])?["name"] as? String ?? "?"
        return .requested(request: name)
    }

    func requests(fingerprint: String) async throws -> [AccessRequest] {
        let list = try await client.json(.GET, "\(collection)?labelSelector=\(Self.fingerprintLabel)%3D\(fingerprint)")
        let items = list["items"] as? [[String: Any]] ?? []
        return items.compactMap { item in
            (try? JSONSerialization.data(withJSONObject: item)).flatMap {
                try? JSONDecoder().decode(AccessRequest.self, from: $0)
            }
        }
    }
}
