import Foundation
import NIOCore
import NIOHTTP1
import Policy
import Testing

@testable import KubeProxy

/// The hand-written encoder against the event the proxy used to build as a `[String: Any]` for
/// `JSONSerialization`: same keys, same values. Known, deliberate differences, as kube-apiserver
/// writes them: an empty `uid` and an empty `objectRef.apiVersion` are left out, and timestamps
/// carry microseconds.
@Suite("Audit events against the JSONSerialization reference")
struct AuditEventReferenceTests {
    static let completedAt = Date(timeIntervalSince1970: 1_800_000_001.5)

    /// The former `AuditRecord.event(completedAt:)`, with the differences above applied.
    static func reference(_ record: AuditRecord) -> [String: Any] {
        var event: [String: Any] = [
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": record.auditID,
            "stage": record.stage, "requestURI": record.requestURI,
            "verb": record.info?.verb ?? record.method.lowercased(), "sourceIPs": [record.sourceIP],
            "userAgent": record.userAgent,
            "requestReceivedTimestamp": AuditEventEncoder.timestamp(record.receivedAt),
            "stageTimestamp": AuditEventEncoder.timestamp(completedAt),
            "responseStatus": ["metadata": [String: Any](), "code": record.responseCode],
            "annotations": record.allAnnotations,
        ]
        func info(_ user: RequestAttributes.UserInfo) -> [String: Any] {
            var info: [String: Any] = ["username": user.name, "groups": user.groups]
            if !user.uid.isEmpty { info["uid"] = user.uid }
            return info
        }
        if let user = record.user {
            event["user"] = info(user)
            event["impersonatedUser"] = info(record.impersonatedUser ?? user)
        } else {
            event["user"] = ["username": "system:anonymous", "groups": ["system:unauthenticated"]]
        }
        if let info = record.info, info.isResourceRequest {
            var objectRef: [String: Any] = ["resource": info.resource]
            for (key, value) in [
                ("apiVersion", info.apiVersion), ("apiGroup", info.apiGroup), ("namespace", info.namespace),
                ("name", info.name), ("subresource", info.subresource),
            ] where !value.isEmpty {
                objectRef[key] = value
            }
            event["objectRef"] = objectRef
        }
        return event
    }

    static func record(method: HTTPMethod = .GET, uri: String, agent: String? = "kubectl/v1.33.0") -> AuditRecord {
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: uri)
        if let agent { head.headers.add(name: "User-Agent", value: agent) }
        return AuditRecord(
            request: ProxyRequest(
                head: head, body: ByteBuffer(), clientCertificates: [], remoteAddress: "10.0.0.7",
                receivedAt: Date(timeIntervalSince1970: 1_800_000_000.25)))
    }

    /// Both as parsed JSON objects, compared as Foundation compares property lists.
    static func expectSame(_ record: AuditRecord) throws {
        let line = AuditEventEncoder.line(record, completedAt: completedAt)
        let encoded = try #require(try JSONSerialization.jsonObject(with: Data(line)) as? NSDictionary)
        let expected = try #require(
            try JSONSerialization.jsonObject(with: JSONSerialization.data(withJSONObject: reference(record)))
                as? NSDictionary)
        #expect(encoded == expected, "\(String(decoding: line, as: UTF8.self))")
    }

    @Test("every field set: both identities with uids, a full objectRef, a decision, annotations")
    func everyField() throws {
        var record = Self.record(method: .PATCH, uri: "/apis/apps/v1/namespaces/dev/deployments/web/scale?dryRun=All")
        record.user = .init(name: "bob", uid: "u-1", groups: ["sre", "system:authenticated"])
        record.impersonatedUser = .init(name: "alice", uid: "u-2", groups: ["developers"])
        record.info = try RequestInfo(method: "PATCH", target: record.requestURI)
        record.decision = Decision(
            outcome: .allow, decidedBy: .init(policy: "apps", rule: "scale"), warnings: ["one", "two"])
        record.annotations["portcullis.dev/approved"] = "ns/ar-1 by bob"
        record.responseCode = 201
        record.stage = "ResponseStarted"
        let objectRef = try #require(record.info)
        #expect(objectRef.subresource == "scale" && objectRef.apiGroup == "apps", "the case covers every field")
        try Self.expectSame(record)
    }

    @Test("optional fields missing: anonymous, no request info, no decision, no user agent")
    func optionalFieldsMissing() throws {
        try Self.expectSame(Self.record(uri: "/healthz", agent: nil))
    }

    @Test("a non-resource request and a cluster-scoped one have no or a partial objectRef")
    func partialObjectRef() throws {
        for uri in ["/version", "/api/v1/nodes", "/api/v1/namespaces/dev"] {
            var record = Self.record(uri: uri)
            record.user = .init(name: "carol", groups: [])
            record.info = try RequestInfo(method: "GET", target: uri)
            record.decision = Decision(outcome: .deny)
            record.responseCode = 403
            try Self.expectSame(record)
        }
    }

    @Test("tricky strings in every position round-trip, escaped as JSON requires")
    func trickyStrings() throws {
        let tricky = "q\"b\\n\nc\u{1}d\u{1F}é漢😀</"
        var record = Self.record(uri: "/api/v1/namespaces/dev/pods/web?x=%22", agent: tricky)
        record.user = .init(name: tricky, uid: tricky, groups: [tricky, ""])
        record.info = try RequestInfo(method: "GET", target: record.requestURI)
        record.annotations[tricky] = tricky
        try Self.expectSame(record)

        let line = String(decoding: AuditEventEncoder.line(record, completedAt: Self.completedAt), as: UTF8.self)
        #expect(line.contains(#""userAgent":"q\"b\\n\nc\u0001d\u001fé漢😀</""#))
        #expect(line.filter { $0 == "\n" }.count == 1, "raw newlines only end the line")
    }
}
