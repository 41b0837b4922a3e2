import Foundation
import Policy

/// AccessRequests kept in the proxy's memory, for clusters that do not serve the
/// `accessrequests.portcullis.dev` CRD. The proxy also serves the AccessRequest API paths from
/// this store (see ``LocalApprovalsAPI``), so `portcullis approve` works unchanged against it.
///
/// Only for a single replica: another replica does not see these requests, and a restart loses
/// them (pending requests must be filed again, approvals given again). ``ClusterApprovals`` is the
/// production path.
public actor LocalApprovals: ApprovalStore {
    /// Bounds on what the store holds; memory is the only thing backing it.
    public struct Limits: Sendable, Hashable {
        /// Requests waiting for a decision; one more is refused with 503 until approvers catch up
        /// or pending requests expire.
        public var maximumPending: Int
        /// Requests of any state; settled (denied, expired) ones are dropped first to make room.
        public var maximumStored: Int
        /// A request nobody decides within this becomes Expired, and a retry files a new one.
        public var pendingLifetime: TimeInterval
        /// How long denied and expired requests stay visible before they are dropped.
        public var retention: TimeInterval

        public init(
            maximumPending: Int = 256, maximumStored: Int = 1024, pendingLifetime: TimeInterval = 3600,
            retention: TimeInterval = 600
        ) {
            self.maximumPending = maximumPending
            self.maximumStored = maximumStored
            self.pendingLifetime = pendingLifetime
            self.retention = retention
        }
    }

    /// Longest `status.reason` an approver may record.
    public static let maximumReasonBytes = 1024

    public nonisolated let namespace: String
    public nonisolated let limits: Limits
    private var requests: [String: AccessRequest] = [:]
    /// When each request reached a final state (Denied, Expired), for `retention`.
    private var settledAt: [String: Date] = [:]
    private var lastResourceVersion = 0

    public init(namespace: String, limits: Limits = Limits()) {
        self.namespace = namespace
        self.limits = limits
    }

    public func check(_ spec: AccessRequest.Spec, now: Date) throws(ApprovalsError) -> ApprovalVerdict {
        age(at: now)
        let existing = requests.values.filter { $0.spec.covers(spec) }.sorted(by: Self.creationOrder)
        if let approved = existing.first(where: { $0.grantIsActive(at: now) }) {
            return .granted(request: approved.metadata.name, approvedBy: approved.status?.decidedBy ?? "")
        }
        if let pending = existing.first(where: { $0.state == .pending }) {
            return .pending(request: pending.metadata.name)
        }
        try makeRoom()
        var request = AccessRequest(
            metadata: .init(
                name: newName(), namespace: namespace,
                labels: [ClusterApprovals.fingerprintLabel: spec.request.fingerprint]),
            spec: spec, status: .init(state: .pending))
        request.metadata.uid = RandomUUID.make()
        request.metadata.creationTimestamp = AccessRequest.formatTimestamp(now)
        store(request)
        return .requested(request: request.metadata.name)
    }

    /// Sets request `name` to `state` as decided by `user`. `resourceVersion`, when given, must
    /// be the request's current one (as the apiserver's optimistic concurrency requires).
    public func decide(
        _ name: String, _ state: AccessRequest.State, by user: String, groups: [String], reason: String? = nil,
        resourceVersion: String? = nil, now: Date
    ) throws(ApprovalsError) -> AccessRequest {
        age(at: now)
        guard let current = requests[name] else { throw Self.notFound(name) }
        if let resourceVersion, resourceVersion != current.metadata.resourceVersion {
            throw ApprovalsError(
                .conflict,
                "AccessRequest \(name) has been modified; please apply your changes to the latest version and try again"
            )
        }
        if let reason, reason.utf8.count > Self.maximumReasonBytes {
            throw ApprovalsError(.invalid, "status.reason is longer than \(Self.maximumReasonBytes) bytes")
        }
        let decided = try current.deciding(state, by: user, groups: groups, reason: reason, at: now)
        store(decided)
        if decided.state == .denied { settledAt[name] = now }
        return requests[name] ?? decided
    }

    public func accessRequest(named name: String, now: Date) throws(ApprovalsError) -> AccessRequest {
        try get(name, now: now)
    }

    public func get(_ name: String, now: Date) throws(ApprovalsError) -> AccessRequest {
        age(at: now)
        guard let request = requests[name] else { throw Self.notFound(name) }
        return request
    }

    /// Every request, oldest first, and the store's current resource version.
    public func list(now: Date) -> (items: [AccessRequest], resourceVersion: String) {
        age(at: now)
        return (requests.values.sorted(by: Self.creationOrder), String(lastResourceVersion))
    }

    /// Expires what the clock has expired, and drops settled requests past `retention`.
    private func age(at now: Date) {
        for (name, request) in requests {
            let aged = request.aged(at: now, pendingLifetime: limits.pendingLifetime)
            if aged.state != request.state {
                store(aged)
                settledAt[name] = now
            }
        }
        for (name, settled) in settledAt where now >= settled.addingTimeInterval(limits.retention) {
            requests[name] = nil
            settledAt[name] = nil
        }
    }

    private func makeRoom() throws(ApprovalsError) {
        let pending = requests.values.count { $0.state == .pending }
        if pending >= limits.maximumPending {
            throw ApprovalsError(
                .full,
                "the proxy's local approvals store already holds \(limits.maximumPending) pending requests; "
                    + "try again once approvers have decided some, or they expire after "
                    + "\(Int(limits.pendingLifetime))s")
        }
        while requests.count >= limits.maximumStored {
            guard let oldest = settledAt.min(by: { $0.value < $1.value })?.key else {
                throw ApprovalsError(
                    .full, "the proxy's local approvals store holds its maximum of \(limits.maximumStored) requests")
            }
            requests[oldest] = nil
            settledAt[oldest] = nil
        }
    }

    private func store(_ request: AccessRequest) {
        var request = request
        lastResourceVersion += 1
        request.metadata.resourceVersion = String(lastResourceVersion)
        requests[request.metadata.name] = request
    }

    /// `ar-` and five characters, as the apiserver's `generateName` makes them.
    private func newName() -> String {
        let alphabet = Array("bcdfghjklmnpqrstvwxz2456789")
        while true {
            let name = "ar-" + String((0..<5).map { _ in alphabet.randomElement()! })
            if requests[name] == nil { return name }
        }
    }

    static func notFound(_ name: String) -> ApprovalsError {
        ApprovalsError(.notFound, "accessrequests.\(PolicyAPI.group) \"\(name)\" not found")
    }

    private static func creationOrder(_ a: AccessRequest, _ b: AccessRequest) -> Bool {
        // RFC 3339 timestamps in UTC sort as text.
        (a.metadata.creationTimestamp ?? "", a.metadata.name) < (b.metadata.creationTimestamp ?? "", b.metadata.name)
    }
}
