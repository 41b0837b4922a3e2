import Foundation
import Policy
import Testing

@testable import KubeProxy

/// A held `psql` exec by alice, approvable by group sre for 10 minutes.
func heldSpec(user: String = "alice", command: String = "psql --version") -> AccessRequest.Spec {
    AccessRequest.Spec(
        requester: .init(user: user, groups: ["developers"]),
        request: .init(
            text: "create pods/exec dev/web: \(command)", verb: "create", resource: "pods/exec", namespace: "dev",
            name: "web", command: command,
            fingerprint: RequestFingerprint.make(
                user: user, verb: "create", resource: "pods/exec", namespace: "dev", name: "web", command: command)),
        policy: "test-approvals", rule: "psql-needs-approval", message: "psql in dev needs an approval",
        approvers: .init(users: ["lead-*"], groups: ["sre"]), grantFor: "600s")
}

@Suite("Local approvals store")
struct LocalApprovalsTests {
    let start = Date(timeIntervalSince1970: 1_750_000_000)

    func requested(_ verdict: ApprovalVerdict) throws -> String {
        guard case .requested(let name) = verdict else {
            throw ApprovalsError(.invalid, "expected a new request, got \(verdict)")
        }
        return name
    }

    @Test("a held request is filed, stays pending, and an approver's approval grants exactly it until it expires")
    func roundTrip() async throws {
        let store = LocalApprovals(namespace: "portcullis-system")
        let name = try requested(try await store.check(heldSpec(), now: start))
        #expect(name.wholeMatch(of: /ar-[a-z0-9]{5}/) != nil)
        #expect(try await store.check(heldSpec(), now: start.addingTimeInterval(1)) == .pending(request: name))

        await #expect(throws: ApprovalsError(.forbidden, "alice requested this access and cannot approve or deny it")) {
            try await store.decide(name, .approved, by: "alice", groups: ["sre"], now: start.addingTimeInterval(2))
        }
        await #expect(throws: ApprovalsError.self) {
            try await store.decide(name, .approved, by: "mallory", groups: ["developers"], now: start)
        }
        #expect(try await store.get(name, now: start).state == .pending)

        let approvedAt = start.addingTimeInterval(60)
        let approved = try await store.decide(name, .approved, by: "bob", groups: ["sre"], now: approvedAt)
        #expect(approved.status?.decidedBy == "bob")
        #expect(approved.status?.decidedAt == AccessRequest.formatTimestamp(approvedAt))
        #expect(approved.status?.expiresAt == AccessRequest.formatTimestamp(approvedAt.addingTimeInterval(600)))

        #expect(
            try await store.check(heldSpec(), now: approvedAt.addingTimeInterval(599))
                == .granted(request: name, approvedBy: "bob"))
        // Another command, or another user asking for the same, is not covered.
        #expect(
            try await store.check(heldSpec(command: "psql -c 'drop table x'"), now: approvedAt)
                != .granted(request: name, approvedBy: "bob"))
        #expect(
            try await store.check(heldSpec(user: "carol"), now: approvedAt)
                != .granted(request: name, approvedBy: "bob"))

        let later = approvedAt.addingTimeInterval(600)
        let renewed = try requested(try await store.check(heldSpec(), now: later))
        #expect(renewed != name)
        #expect(try await store.get(name, now: later).state == .expired)
    }

    @Test("an approver user pattern may decide; a denial is final and a retry files a new request")
    func deny() async throws {
        let store = LocalApprovals(namespace: "ns")
        let name = try requested(try await store.check(heldSpec(), now: start))
        let denied = try await store.decide(
            name, .denied, by: "lead-dana", groups: [], reason: "not now", now: start.addingTimeInterval(5))
        #expect(denied.state == .denied)
        #expect(denied.status?.decidedBy == "lead-dana")
        #expect(denied.status?.reason == "not now")
        #expect(denied.status?.expiresAt == nil)
        await #expect(throws: ApprovalsError(.conflict, "AccessRequest \(name) was already Denied")) {
            try await store.decide(name, .approved, by: "bob", groups: ["sre"], now: start.addingTimeInterval(6))
        }
        let again = try requested(try await store.check(heldSpec(), now: start.addingTimeInterval(7)))
        #expect(again != name)
    }

    @Test("only Approved and Denied are decisions, and a stale resourceVersion is a conflict")
    func invalidDecisions() async throws {
        let store = LocalApprovals(namespace: "ns")
        let name = try requested(try await store.check(heldSpec(), now: start))
        for state in [AccessRequest.State.expired, .pending] {
            await #expect(throws: ApprovalsError.self) {
                try await store.decide(name, state, by: "bob", groups: ["sre"], now: start)
            }
        }
        await #expect(throws: ApprovalsError.self) {
            try await store.decide(name, .approved, by: "bob", groups: ["sre"], resourceVersion: "0", now: start)
        }
        await #expect(throws: ApprovalsError(.invalid, "status.reason is longer than 1024 bytes")) {
            try await store.decide(
                name, .approved, by: "bob", groups: ["sre"], reason: String(repeating: "x", count: 1025), now: start)
        }
        await #expect(throws: ApprovalsError(.notFound, "accessrequests.portcullis.dev \"ar-nope\" not found")) {
            try await store.decide("ar-nope", .approved, by: "bob", groups: ["sre"], now: start)
        }
        #expect(try await store.get(name, now: start).state == .pending)
    }

    @Test(
        "the pending limit refuses new requests until one expires; expired and denied ones are dropped after retention")
    func limits() async throws {
        let store = LocalApprovals(
            namespace: "ns", limits: .init(maximumPending: 2, maximumStored: 3, pendingLifetime: 100, retention: 50))
        let first = try requested(try await store.check(heldSpec(command: "psql 1"), now: start))
        _ = try requested(try await store.check(heldSpec(command: "psql 2"), now: start))
        await #expect(throws: ApprovalsError.self) {
            try await store.check(heldSpec(command: "psql 3"), now: start.addingTimeInterval(1))
        }
        do {
            _ = try await store.check(heldSpec(command: "psql 3"), now: start.addingTimeInterval(1))
            Issue.record("a third pending request was accepted")
        } catch {
            #expect(error.kind == .full)
            #expect(KubernetesStatus(error).code == 503)
            #expect(error.message.contains("already holds 2 pending requests"))
        }
        // A retry of a pending request is not a new one, so it is answered even when full.
        #expect(
            try await store.check(heldSpec(command: "psql 1"), now: start.addingTimeInterval(2))
                == .pending(request: first))

        // After pendingLifetime both expire, which frees the pending slots.
        let expiredAt = start.addingTimeInterval(100)
        _ = try requested(try await store.check(heldSpec(command: "psql 3"), now: expiredAt))
        #expect(try await store.get(first, now: expiredAt).state == .expired)
        #expect(await store.list(now: expiredAt).items.count == 3)
        // The store is at maximumStored: the oldest settled request makes room.
        _ = try requested(try await store.check(heldSpec(command: "psql 4"), now: expiredAt))
        #expect(await store.list(now: expiredAt).items.count == 3)
        // After retention the expired ones are gone.
        let gone = expiredAt.addingTimeInterval(50)
        #expect(Set(await store.list(now: gone).items.compactMap(\.spec.request.command)) == ["psql 3", "psql 4"])
        await #expect(throws: ApprovalsError.self) { try await store.get(first, now: gone) }
    }
}
