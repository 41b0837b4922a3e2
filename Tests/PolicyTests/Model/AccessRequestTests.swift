import Foundation
import Policy
import Testing

@Suite("AccessRequest approvals")
struct AccessRequestTests {
    static func request(grantFor: String = "1h") -> AccessRequest {
        AccessRequest(
            metadata: .init(name: "ar-1"),
            spec: .init(
                requester: .init(user: "alice", groups: ["developers"]),
                request: .init(
                    text: "exec in prod/web: psql", verb: "create", resource: "pods/exec", namespace: "prod",
                    name: "web",
                    command: "psql",
                    fingerprint: RequestFingerprint.make(
                        user: "alice", verb: "create", resource: "pods/exec", namespace: "prod", name: "web",
                        command: "psql")),
                policy: "prod", rule: "psql-needs-approval", message: "psql needs approval",
                approvers: .init(users: ["carol"], groups: ["sre", "db-*"]), grantFor: grantFor))
    }

    @Test("the requester can never decide their own request, even as an approver")
    func requesterCannotApprove() {
        #expect(Self.request().refusal(toDecideBy: "alice", groups: ["sre"])?.contains("cannot approve") == true)
    }

    @Test("approvers are matched by user or group, with globs")
    func approverMatching() {
        let request = Self.request()
        #expect(request.refusal(toDecideBy: "bob", groups: ["sre"]) == nil)
        #expect(request.refusal(toDecideBy: "carol", groups: []) == nil)
        #expect(request.refusal(toDecideBy: "dan", groups: ["db-admins"]) == nil)
        #expect(request.refusal(toDecideBy: "eve", groups: ["developers"])?.contains("not an approver") == true)
    }

    @Test("an approval lasts grantFor from the moment it is given")
    func grantWindow() {
        var request = Self.request(grantFor: "30m")
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        #expect(!request.grantIsActive(at: now))
        request.status = request.approvalStatus(by: "bob", at: now)
        #expect(request.status?.expiresAt == "2027-01-15T08:30:00Z")
        #expect(request.grantIsActive(at: now.addingTimeInterval(29 * 60)))
        #expect(!request.grantIsActive(at: now.addingTimeInterval(30 * 60)))
        request.status?.state = .denied
        #expect(!request.grantIsActive(at: now))
    }

    @Test("a grant covers exactly the request it was made for")
    func covers() {
        let request = Self.request()
        #expect(
            request.covers(
                user: "alice", verb: "create", resource: "pods/exec", namespace: "prod", name: "web", command: "psql"))
        #expect(
            !request.covers(
                user: "alice", verb: "create", resource: "pods/exec", namespace: "prod", name: "web",
                command: "psql -c 'drop'"))
        #expect(
            !request.covers(
                user: "bob", verb: "create", resource: "pods/exec", namespace: "prod", name: "web", command: "psql"))
    }

    @Test("the JSON shape round-trips and uses the CRD's field names")
    func json() throws {
        var request = Self.request()
        request.status = .init(state: .pending)
        let data = try JSONEncoder().encode(request)
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains(#""apiVersion":"portcullis.dev\/v1alpha1""#))
        #expect(text.contains(#""state":"Pending""#))
        #expect(try JSONDecoder().decode(AccessRequest.self, from: data) == request)
    }

    @Test("fingerprints are stable and differ for different commands")
    func fingerprints() {
        let a = RequestFingerprint.make(user: "u", verb: "v", resource: "r", namespace: nil, name: nil, command: "ls")
        #expect(
            a == RequestFingerprint.make(user: "u", verb: "v", resource: "r", namespace: "", name: "", command: "ls"))
        #expect(
            a != RequestFingerprint.make(user: "u", verb: "v", resource: "r", namespace: nil, name: nil, command: "ls ")
        )
        #expect(a.count == 16)
    }
}
