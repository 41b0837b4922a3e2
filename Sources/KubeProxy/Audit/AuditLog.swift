import Foundation
import NIOHTTP1
import Policy

/// One request's audit event, shaped like an `audit.k8s.io/v1` Event so existing audit pipelines
/// read it, with Portcullis's decision in `annotations`.
struct AuditRecord: Sendable {
    let auditID: String
    let method: String
    let requestURI: String
    let sourceIP: String
    let userAgent: String
    let receivedAt: Date
    var user: RequestAttributes.UserInfo?
    /// Whom the caller acts as, when a policy let them impersonate someone (`kubectl --as`).
    var impersonatedUser: RequestAttributes.UserInfo?
    var info: RequestInfo?
    var decision: Decision?
    var annotations: [String: String] = [:]
    var responseCode: Int = 0

    init(request: ProxyRequest) {
        auditID = UUID().uuidString.lowercased()
        method = request.head.method.rawValue
        requestURI = request.head.uri
        sourceIP = request.remoteAddress
        userAgent = request.head.headers.first(name: "user-agent") ?? ""
        receivedAt = request.receivedAt
    }

    func event(completedAt: Date) -> [String: Any] {
        var event: [String: Any] = [
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": auditID,
            "stage": "ResponseComplete", "requestURI": requestURI, "verb": info?.verb ?? method.lowercased(),
            "sourceIPs": [sourceIP], "userAgent": userAgent,
            "requestReceivedTimestamp": Self.timestamp(receivedAt), "stageTimestamp": Self.timestamp(completedAt),
            "responseStatus": ["metadata": [String: Any](), "code": responseCode],
        ]
        if let user {
            // The proxy authenticated the caller and impersonates them (or whom a policy let them
            // act as).
            func info(_ user: RequestAttributes.UserInfo) -> [String: Any] {
                ["username": user.name, "uid": user.uid, "groups": user.groups]
            }
            event["user"] = info(user)
            event["impersonatedUser"] = info(impersonatedUser ?? user)
        } else {
            event["user"] = ["username": "system:anonymous", "groups": ["system:unauthenticated"]]
        }
        if let info, info.isResourceRequest {
            var objectRef: [String: Any] = ["resource": info.resource, "apiVersion": info.apiVersion]
            if !info.apiGroup.isEmpty { objectRef["apiGroup"] = info.apiGroup }
            if !info.namespace.isEmpty { objectRef["namespace"] = info.namespace }
            if !info.name.isEmpty { objectRef["name"] = info.name }
            if !info.subresource.isEmpty { objectRef["subresource"] = info.subresource }
            event["objectRef"] = objectRef
        }
        var annotations = self.annotations
        if let decision {
            annotations["portcullis.dev/decision"] = decision.outcome.rawValue
            if let rule = decision.decidedBy {
                annotations["portcullis.dev/policy"] = rule.policy
                annotations["portcullis.dev/rule"] = rule.rule
            }
            if !decision.masks.isEmpty {
                annotations["portcullis.dev/masked-by"] = decision.masks.map(\.rule.description).joined(separator: ",")
            }
            if !decision.warnings.isEmpty {
                annotations["portcullis.dev/warnings"] = decision.warnings.joined(separator: "; ")
            }
        }
        annotations["portcullis.dev/session"] = auditID
        event["annotations"] = annotations
        return event
    }

    static func timestamp(_ date: Date) -> String {
        date.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true))
    }
}

/// Appends audit events as JSON lines, one per request, flushed as they are written so that a
/// crash loses nothing already answered. Tokens never reach it: records carry identities, not
/// credentials.
public final class AuditLog: Sendable {
    private let handle: LockedValue<FileHandle?>

    /// `path` nil: audit events are dropped (tests that do not look at them).
    public init(path: String?) throws {
        guard let path else {
            handle = LockedValue(nil)
            return
        }
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600])
            else {
                throw UpstreamConfiguration.Error(message: "cannot create the audit log \(path)")
            }
        }
        let file = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try file.seekToEnd()
        handle = LockedValue(file)
    }

    func write(_ record: AuditRecord, completedAt: Date = Date()) {
        guard
            var line = try? JSONSerialization.data(
                withJSONObject: record.event(completedAt: completedAt), options: [.sortedKeys, .withoutEscapingSlashes])
        else { return }
        line.append(UInt8(ascii: "\n"))
        handle.withValue { try? $0?.write(contentsOf: line) }
    }
}
