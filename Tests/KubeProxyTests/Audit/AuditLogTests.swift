import Foundation
import NIOCore
import NIOHTTP1
import Testing

@testable import KubeProxy

@Suite("Audit log file")
struct AuditLogTests {
    static func record(_ uri: String) -> AuditRecord {
        AuditRecord(
            request: ProxyRequest(
                head: HTTPRequestHead(version: .http1_1, method: .GET, uri: uri), body: ByteBuffer(),
                clientCertificates: [], remoteAddress: "127.0.0.1", receivedAt: Date()))
    }

    @Test(
        "a new file is created private; lines are appended after what is there, also from a second log on the same file"
    )
    func appends() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("audit-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("audit.jsonl").path

        let first = try AuditLog(path: path)
        first.write(Self.record("/api/one"))
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)

        let second = try AuditLog(path: path)
        second.write(Self.record("/api/two"))
        first.write(Self.record("/api/three"))

        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        let uris = try lines.map { line in
            let event = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            return event["requestURI"] as? String
        }
        #expect(uris == ["/api/one", "/api/two", "/api/three"])
    }

    @Test("a path that cannot be opened is an error naming it")
    func unopenable() {
        #expect {
            try AuditLog(path: "/nonexistent-directory/audit.jsonl")
        } throws: { error in
            "\(error)".contains("/nonexistent-directory/audit.jsonl")
        }
    }
}
