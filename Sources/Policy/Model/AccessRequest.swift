import Foundation

/// An `AccessRequest` (`portcullis.dev/v1alpha1`): a request or command held by a Review rule,
/// waiting for an approver. It lives in the cluster (a CRD) so every proxy replica and the
/// webhook see the same state; its JSON shape is the CRD's.
///
/// Approval rules, enforced by the webhook on every path an approver might use: only someone in
/// the approver set may approve or deny, never the requester, and an approval lasts `grantFor`
/// from the moment it is given.
public struct AccessRequest: Sendable, Hashable, Codable {
    public var apiVersion: String = PolicyAPI.apiVersion
    public var kind: String = "AccessRequest"
    public var metadata: Metadata
    public var spec: Spec
    public var status: Status?

    public init(metadata: Metadata, spec: Spec, status: Status? = nil) {
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }

    public struct Metadata: Sendable, Hashable, Codable {
        public var name: String
        public var namespace: String?
        public var uid: String?
        public var resourceVersion: String?
        public var creationTimestamp: String?
        public var labels: [String: String]?

        public init(name: String, namespace: String? = nil, labels: [String: String]? = nil) {
            self.name = name
            self.namespace = namespace
            self.labels = labels
        }
    }

    public struct Spec: Sendable, Hashable, Codable {
        public var requester: Subject
        public var request: Summary
        public var policy: String
        public var rule: String
        /// The rule's message, shown to approvers.
        public var message: String
        public var approvers: Approvers
        /// Go duration syntax, e.g. `1h`.
        public var grantFor: String

        public init(
            requester: Subject, request: Summary, policy: String, rule: String, message: String, approvers: Approvers,
            grantFor: String
        ) {
            self.requester = requester
            self.request = request
            self.policy = policy
            self.rule = rule
            self.message = message
            self.approvers = approvers
            self.grantFor = grantFor
        }
    }

    public struct Subject: Sendable, Hashable, Codable {
        public var user: String
        public var groups: [String]

        public init(user: String, groups: [String]) {
            self.user = user
            self.groups = groups
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            user = try container.decode(String.self, forKey: .user)
            groups = try container.decodeIfPresent([String].self, forKey: .groups) ?? []
        }
    }

    /// What was asked for, in words and as a fingerprint that identifies "the same request" when
    /// it is retried.
    public struct Summary: Sendable, Hashable, Codable {
        /// e.g. `exec in prod/web (app): psql -U admin`.
        public var text: String
        public var verb: String
        public var resource: String
        public var namespace: String?
        public var name: String?
        /// The command line for exec and SQL statements.
        public var command: String?
        /// Stable digest of the request's identity (see ``RequestFingerprint``), for lookups only:
        /// it is not collision-resistant, so ``covers(user:verb:resource:namespace:name:command:)``
        /// compares the fields themselves.
        public var fingerprint: String

        public init(
            text: String, verb: String, resource: String, namespace: String? = nil, name: String? = nil,
            command: String? = nil, fingerprint: String
        ) {
            self.text = text
            self.verb = verb
            self.resource = resource
            self.namespace = namespace
            self.name = name
            self.command = command
            self.fingerprint = fingerprint
        }
    }

    public struct Approvers: Sendable, Hashable, Codable {
        public var users: [String]
        public var groups: [String]

        public init(users: [String] = [], groups: [String] = []) {
            self.users = users
            self.groups = groups
        }

        /// Either list may be absent, as the CRD allows.
        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            users = try container.decodeIfPresent([String].self, forKey: .users) ?? []
            groups = try container.decodeIfPresent([String].self, forKey: .groups) ?? []
        }
    }

    public enum State: String, Sendable, Hashable, Codable {
        case pending = "Pending"
        case approved = "Approved"
        case denied = "Denied"
        case expired = "Expired"
    }

    public struct Status: Sendable, Hashable, Codable {
        public var state: State
        public var decidedBy: String?
        /// RFC 3339.
        public var decidedAt: String?
        /// RFC 3339; an approval stops letting the request through after this.
        public var expiresAt: String?
        public var reason: String?

        public init(
            state: State, decidedBy: String? = nil, decidedAt: String? = nil, expiresAt: String? = nil,
            reason: String? = nil
        ) {
            self.state = state
            self.decidedBy = decidedBy
            self.decidedAt = decidedAt
            self.expiresAt = expiresAt
            self.reason = reason
        }
    }

    public var state: State { status?.state ?? .pending }

    /// Why `user` may not decide this request, or nil when they may.
    public func refusal(toDecideBy user: String, groups: [String]) -> String? {
        if user == spec.requester.user {
            return "\(user) requested this access and cannot approve or deny it"
        }
        let userAllowed = spec.approvers.users.contains { pattern in
            (try? Glob(pattern))?.matches(user) ?? (pattern == user)
        }
        let groupAllowed = spec.approvers.groups.contains { pattern in
            groups.contains { (try? Glob(pattern))?.matches($0) ?? (pattern == $0) }
        }
        guard userAllowed || groupAllowed else {
            let names = (spec.approvers.users.map { "user \($0)" } + spec.approvers.groups.map { "group \($0)" })
                .joined(separator: ", ")
            return "\(user) is not an approver of this request (approvers: \(names))"
        }
        return nil
    }

    /// Whether this request is for exactly the given access (the fields, not the fingerprint).
    public func covers(
        user: String, verb: String, resource: String, namespace: String?, name: String?, command: String?
    ) -> Bool {
        spec.requester.user == user && spec.request.verb == verb && spec.request.resource == resource
            && (spec.request.namespace ?? "") == (namespace ?? "") && (spec.request.name ?? "") == (name ?? "")
            && (spec.request.command ?? "") == (command ?? "")
    }

    /// Whether an approval lets the request through at `now`.
    public func grantIsActive(at now: Date) -> Bool {
        guard state == .approved, let expiresAt = status?.expiresAt, let expiry = Self.parseTimestamp(expiresAt) else {
            return false
        }
        return now < expiry
    }

    /// The status an approval by `user` at `now` gives.
    public func approvalStatus(by user: String, at now: Date) -> Status {
        let grant = parseGoDuration(spec.grantFor) ?? .seconds(3600)
        let seconds = Double(grant.components.seconds) + Double(grant.components.attoseconds) / 1e18
        return Status(
            state: .approved, decidedBy: user, decidedAt: Self.formatTimestamp(now),
            expiresAt: Self.formatTimestamp(now.addingTimeInterval(seconds)))
    }

    /// `grantFor` in seconds.
    public static func grantDuration(_ text: String) -> TimeInterval? {
        parseGoDuration(text).map { Double($0.components.seconds) + Double($0.components.attoseconds) / 1e18 }
    }

    public static func formatTimestamp(_ date: Date) -> String {
        date.formatted(
            .iso8601.year().month().day().dateSeparator(.dash).time(includingFractionalSeconds: false).timeZone(
                separator: .omitted))
    }

    public static func parseTimestamp(_ text: String) -> Date? {
        try? Date(text, strategy: .iso8601)
    }
}

/// A short digest of the parts of a request that make it "the same request" for an approval: who
/// asks, what verb on which object, and the command. It is an index key (for a label selector), not
/// proof: FNV collisions can be forged, so a grant is only honoured after ``AccessRequest/covers``
/// compares the fields.
public enum RequestFingerprint {
    public static func make(
        user: String, verb: String, resource: String, namespace: String?, name: String?, command: String?
    ) -> String {
        let parts = [user, verb, resource, namespace ?? "", name ?? "", command ?? ""]
        // FNV-1a over the NUL-joined parts: stable across processes and replicas (unlike Hasher).
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in parts.joined(separator: "\u{0}").utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return String(hash, radix: 16).leftPadded(to: 16)
    }
}

extension String {
    fileprivate func leftPadded(to length: Int) -> String {
        count >= length ? self : String(repeating: "0", count: length - count) + self
    }
}
