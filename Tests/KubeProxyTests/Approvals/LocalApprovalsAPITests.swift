import Foundation
import Policy
import Testing

@testable import KubeProxy

/// The AccessRequest API paths the proxy serves from its local store, called as the gate calls them.
@Suite("Local approvals API")
struct LocalApprovalsAPITests {
    let now = Date(timeIntervalSince1970: 1_750_000_000)
    static let base = "/apis/portcullis.dev/v1alpha1/namespaces/portcullis-system/accessrequests"
    let alice = RequestAttributes.UserInfo(name: "alice", groups: ["developers"])
    let bob = RequestAttributes.UserInfo(name: "bob", groups: ["sre"])

    func call(
        _ api: LocalApprovalsAPI, _ method: String, _ target: String, as caller: RequestAttributes.UserInfo,
        body: Any? = nil, contentType: String? = nil
    ) async throws(ApprovalsError) -> [String: Any] {
        let info = try! RequestInfo(method: method, target: target)
        let data = body.map { try! JSONSerialization.data(withJSONObject: $0) } ?? Data()
        let json = try await api.serve(
            info, query: RequestInfo.query(of: target), contentType: contentType, body: data, caller: caller, now: now)
        return try! JSONSerialization.jsonObject(with: json) as! [String: Any]
    }

    func filed() async throws -> (LocalApprovalsAPI, String) {
        let store = LocalApprovals(namespace: "portcullis-system")
        guard case .requested(let name) = try await store.check(heldSpec(), now: now) else {
            throw ApprovalsError(.invalid, "not filed")
        }
        return (LocalApprovalsAPI(store: store), name)
    }

    /// What `portcullis approve` sends (ApproveCommand.swift), with a forged decider and expiry.
    static var forgedApproval: [String: Any] {
        [
            "status": [
                "state": "Approved", "decidedBy": "mallory", "decidedAt": "2000-01-01T00:00:00Z",
                "expiresAt": "2999-01-01T00:00:00Z", "reason": "looks fine",
            ]
        ]
    }

    @Test("get and list show the request in the AccessRequest shape; other namespaces are empty")
    func reads() async throws {
        let (api, name) = try await filed()
        let object = try await call(api, "GET", "\(Self.base)/\(name)", as: alice)
        #expect(object["kind"] as? String == "AccessRequest")
        #expect((object["metadata"] as? [String: Any])?["namespace"] as? String == "portcullis-system")
        #expect((object["status"] as? [String: Any])?["state"] as? String == "Pending")
        #expect(((object["spec"] as? [String: Any])?["requester"] as? [String: Any])?["user"] as? String == "alice")

        let list = try await call(api, "GET", Self.base, as: bob)
        #expect(list["kind"] as? String == "AccessRequestList")
        #expect((list["items"] as? [Any])?.count == 1)
        let selected = try await call(
            api, "GET", "\(Self.base)?labelSelector=portcullis.dev%2Ffingerprint%3D\(heldSpec().request.fingerprint)",
            as: bob)
        #expect((selected["items"] as? [Any])?.count == 1)
        let unselected = try await call(
            api, "GET", "\(Self.base)?labelSelector=portcullis.dev%2Ffingerprint%3Dx", as: bob)
        #expect((unselected["items"] as? [Any])?.count == 0)
        let everywhere = try await call(api, "GET", "/apis/portcullis.dev/v1alpha1/accessrequests", as: bob)
        #expect((everywhere["items"] as? [Any])?.count == 1)
        let elsewhere = try await call(
            api, "GET", "/apis/portcullis.dev/v1alpha1/namespaces/dev/accessrequests", as: bob)
        #expect((elsewhere["items"] as? [Any])?.count == 0)
        await #expect(throws: ApprovalsError.self) {
            _ = try await call(
                api, "GET", "/apis/portcullis.dev/v1alpha1/namespaces/dev/accessrequests/\(name)", as: bob)
        }
    }

    @Test(
        "portcullis approve's merge patch: the requester is refused, an approver's decision is stamped from who they are"
    )
    func approveByPatch() async throws {
        let (api, name) = try await filed()
        let path = "\(Self.base)/\(name)/status"
        do {
            _ = try await call(
                api, "PATCH", path, as: alice, body: Self.forgedApproval, contentType: "application/merge-patch+json")
            Issue.record("the requester approved her own request")
        } catch {
            #expect(error.kind == .forbidden)
            #expect(KubernetesStatus(error).code == 403)
            #expect(error.message == "alice requested this access and cannot approve or deny it")
        }
        let approved = try await call(
            api, "PATCH", path, as: bob, body: Self.forgedApproval, contentType: "application/merge-patch+json")
        let status = try #require(approved["status"] as? [String: Any])
        #expect(status["state"] as? String == "Approved")
        #expect(status["decidedBy"] as? String == "bob")
        #expect(status["decidedAt"] as? String == AccessRequest.formatTimestamp(now))
        #expect(status["expiresAt"] as? String == AccessRequest.formatTimestamp(now.addingTimeInterval(600)))
        #expect(status["reason"] as? String == "looks fine")

        do {
            _ = try await call(
                api, "PATCH", path, as: bob, body: Self.forgedApproval, contentType: "application/merge-patch+json")
            Issue.record("a decided request was decided again")
        } catch {
            #expect(KubernetesStatus(error).code == 409)
        }
    }

    @Test("a PUT of the whole object denies; a changed spec, a stale resourceVersion or a non-decision is refused")
    func updates() async throws {
        let (api, name) = try await filed()
        let path = "\(Self.base)/\(name)/status"
        var object = try await call(api, "GET", path, as: bob)

        var changedSpec = object
        var spec = object["spec"] as! [String: Any]
        spec["grantFor"] = "8760h"
        changedSpec["spec"] = spec
        changedSpec["status"] = ["state": "Approved"]
        await #expect(throws: ApprovalsError.self) { _ = try await call(api, "PUT", path, as: bob, body: changedSpec) }

        var stale = object
        var metadata = object["metadata"] as! [String: Any]
        metadata["resourceVersion"] = "999"
        stale["metadata"] = metadata
        stale["status"] = ["state": "Denied"]
        await #expect(throws: ApprovalsError.self) { _ = try await call(api, "PUT", path, as: bob, body: stale) }

        object["status"] = ["state": "Pending"]
        await #expect(throws: ApprovalsError.self) { _ = try await call(api, "PUT", path, as: bob, body: object) }

        object["status"] = ["state": "Denied", "decidedBy": "mallory"]
        let denied = try await call(api, "PUT", path, as: bob, body: object)
        #expect((denied["status"] as? [String: Any])?["state"] as? String == "Denied")
        #expect((denied["status"] as? [String: Any])?["decidedBy"] as? String == "bob")
    }

    @Test(
        "calls the local store does not serve get the apiserver's status codes",
        arguments: [
            ("POST", base, nil, 405), ("DELETE", "\(base)/NAME", nil, 405),
            ("GET", "\(base)?watch=true", nil, 405),
            ("PATCH", "\(base)/NAME", "application/merge-patch+json", 405),
            ("PATCH", "\(base)/NAME/status", "application/json-patch+json", 415),
            ("PATCH", "\(base)/NAME/status", "application/strategic-merge-patch+json", 415),
            ("GET", "/apis/portcullis.dev/v1beta1/namespaces/portcullis-system/accessrequests", nil, 404),
            ("GET", "\(base)?labelSelector=a!%3Db", nil, 400),
            ("GET", "\(base)/ar-missing", nil, 404),
        ] as [(String, String, String?, Int)])
    func refusals(method: String, target: String, contentType: String?, code: Int) async throws {
        let (api, name) = try await filed()
        do {
            _ = try await call(
                api, method, target.replacingOccurrences(of: "NAME", with: name), as: bob, body: Self.forgedApproval,
                contentType: contentType)
            Issue.record("\(method) \(target) was served")
        } catch {
            #expect(KubernetesStatus(error).code == code, "\(error)")
        }
    }
}
