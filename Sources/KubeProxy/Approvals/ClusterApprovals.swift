import Foundation
import NIOHTTP1
import Policy

/// Where held requests wait for approval: `AccessRequest` objects in the cluster, written with the
/// proxy's own identity. Every replica reads the same objects, so an approval given through any
/// path (another replica, `kubectl`, `portcullis approve`) releases the request everywhere; the
/// webhook makes sure only a listed approver who is not the requester can give it.
public struct ClusterApprovals: ApprovalStore {
    let client: KubernetesClient
    public let namespace: String

    public init(client: KubernetesClient, namespace: String) {
        self.client = client
        self.namespace = namespace
    }

    static let fingerprintLabel = "portcullis.dev/fingerprint"
    /// Pending requests in the cluster expire by the webhook's rules, not by this proxy's clock.
    static let unboundedLifetime: TimeInterval = 100 * 365 * 86400

    var collection: String { "/apis/\(PolicyAPI.group)/\(PolicyAPI.version)/namespaces/\(namespace)/accessrequests" }

    public func check(_ spec: AccessRequest.Spec, now: Date) async throws -> ApprovalVerdict {
        let existing = try await requests(fingerprint: spec.request.fingerprint).filter { $0.spec.covers(spec) }
        if let approved = existing.first(where: { $0.grantIsActive(at: now) }) {
            return .granted(request: approved.metadata.name, approvedBy: approved.status?.decidedBy ?? "")
        }
        if let pending = existing.first(where: { $0.state == .pending }) {
            return .pending(request: pending.metadata.name)
        }
        let request = AccessRequest(
            metadata: .init(
                name: "", namespace: namespace, labels: [Self.fingerprintLabel: spec.request.fingerprint]),
            spec: spec, status: nil)
        var object = try JSONSerialization.jsonObject(with: JSONEncoder().encode(request)) as? [String: Any] ?? [:]
        var metadata = object["metadata"] as? [String: Any] ?? [:]
        metadata["name"] = nil
        metadata["generateName"] = "ar-"
        object["metadata"] = metadata
        let created = try await client.json(.POST, collection, object)
        let name = (created["metadata"] as? [String: Any])?["name"] as? String ?? "?"
        return .requested(request: name)
    }

    public func accessRequest(named name: String, now: Date) async throws -> AccessRequest {
        let object = try await client.json(.GET, "\(collection)/\(name)")
        let request = try JSONDecoder().decode(AccessRequest.self, from: JSONSerialization.data(withJSONObject: object))
        // The cluster's objects age only when the webhook sees a change: apply the clock here.
        return request.aged(at: now, pendingLifetime: Self.unboundedLifetime)
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

    /// Whether the cluster serves the AccessRequest API (the CRD is installed), asked with the
    /// proxy's own identity through API discovery. Any answer other than 200 or 404 is an error:
    /// `auto` must not fall back to the local store because the apiserver was briefly unreachable.
    public static func isServed(by client: KubernetesClient) async throws -> Bool {
        let response = try await client.send(.GET, "/apis/\(PolicyAPI.group)/\(PolicyAPI.version)")
        switch response.status {
        case 200:
            let object = (try? JSONSerialization.jsonObject(with: response.body)) as? [String: Any]
            let resources = object?["resources"] as? [[String: Any]] ?? []
            return resources.contains { $0["name"] as? String == "accessrequests" }
        case 404:
            return false
        default:
            throw KubernetesClient.Failure(
                description: "API discovery of \(PolicyAPI.group)/\(PolicyAPI.version) answered \(response.status): "
                    + response.statusMessage)
        }
    }
}
