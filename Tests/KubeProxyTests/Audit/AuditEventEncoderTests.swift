import Foundation
import NIOCore
import NIOHTTP1
import Policy
import Testing

@testable import KubeProxy

@Suite("Audit events as JSON lines")
struct AuditEventEncoderTests {
    static func record(
        uri: String = "/api/v1/namespaces/dev/pods/web", agent: String = "kubectl/v1.33.0"
    ) throws
        -> AuditRecord
    {
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: uri)
        head.headers.add(name: "User-Agent", value: agent)
        var record = AuditRecord(
            request: ProxyRequest(
                head: head, body: ByteBuffer(), clientCertificates: [], remoteAddress: "127.0.0.1",
                receivedAt: Date(timeIntervalSince1970: 1_800_000_000.25)))
        record.user = .init(name: "bob", groups: ["sre", "system:authenticated"])
        record.impersonatedUser = .init(name: "alice", groups: ["developers"])
        record.info = try RequestInfo(method: "GET", target: uri)
        record.responseCode = 200
        record.annotations["portcullis.dev/approved"] = "ns/ar-1 by bob"
        return record
    }

    static func parse(_ line: [UInt8]) throws -> [String: Any] {
        #expect(line.last == UInt8(ascii: "\n"))
        #expect(line.dropLast().contains(UInt8(ascii: "\n")) == false, "one event, one line")
        return try #require(try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any])
    }

    @Test("the event has the audit.k8s.io/v1 shape with both identities and the annotations")
    func shape() throws {
        let event = try Self.parse(
            AuditEventEncoder.line(try Self.record(), completedAt: Date(timeIntervalSince1970: 1_800_000_001)))
        #expect(event["apiVersion"] as? String == "audit.k8s.io/v1")
        #expect(event["stage"] as? String == "ResponseComplete")
        #expect(event["verb"] as? String == "get")
        #expect((event["user"] as? [String: Any])?["username"] as? String == "bob")
        #expect((event["impersonatedUser"] as? [String: Any])?["groups"] as? [String] == ["developers"])
        let objectRef = try #require(event["objectRef"] as? [String: Any])
        #expect(objectRef["resource"] as? String == "pods")
        #expect(objectRef["namespace"] as? String == "dev")
        #expect(objectRef["name"] as? String == "web")
        #expect(objectRef["apiGroup"] == nil)
        #expect((event["responseStatus"] as? [String: Any])?["code"] as? Int == 200)
        #expect(event["requestReceivedTimestamp"] as? String == "2027-01-15T08:00:00.250000Z")
        #expect(event["stageTimestamp"] as? String == "2027-01-15T08:00:01.000000Z")
        let annotations = try #require(event["annotations"] as? [String: String])
        #expect(annotations["portcullis.dev/approved"] == "ns/ar-1 by bob")
        #expect(annotations["portcullis.dev/session"] == event["auditID"] as? String)
    }

    @Test("quotes, backslashes, control characters and non-ASCII survive a round trip")
    func escaping() throws {
        let agent = "evil\"agent\\\n\u{1}\u{7F}\tüñí😀/"
        let event = try Self.parse(AuditEventEncoder.line(try Self.record(agent: agent), completedAt: Date()))
        #expect(event["userAgent"] as? String == agent)
    }

    @Test("an unauthenticated request is recorded as system:anonymous")
    func anonymous() throws {
        var record = try Self.record()
        record.user = nil
        let event = try Self.parse(AuditEventEncoder.line(record, completedAt: Date()))
        #expect((event["user"] as? [String: Any])?["username"] as? String == "system:anonymous")
        #expect(event["impersonatedUser"] == nil)
    }
}
