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
    /// `ResponseComplete` for ordinary requests; a stream session writes `ResponseStarted` at its
    /// 101 and `ResponseComplete` when it ends, both with the same auditID (the session id).
    var stage = "ResponseComplete"

    init(request: ProxyRequest) {
        auditID = RandomUUID.make()
        method = request.head.method.rawValue
        requestURI = request.head.uri
        sourceIP = request.remoteAddress
        userAgent = request.head.headers.first(name: "user-agent") ?? ""
        receivedAt = request.receivedAt
    }

    /// The annotations with the decision's: policy, rule, masks, warnings and the session id.
    var allAnnotations: [String: String] {
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
        return annotations
    }
}

/// Appends audit events as JSON lines, one per request, flushed as they are written so that a
/// crash loses nothing already answered. Tokens never reach it: records carry identities, not
/// credentials.
public final class AuditLog: Sendable {
    /// nil when there is no audit file: then nothing is encoded and no lock is taken.
    private let handle: LockedValue<FileHandle>?

    /// `path` nil: audit events are dropped (tests that do not look at them).
    public init(path: String?) throws {
        guard let path else {
            handle = nil
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
        guard let handle else { return }
        let line = AuditEventEncoder.line(record, completedAt: completedAt)
        handle.withValue { try? $0.write(contentsOf: line) }
    }
}
