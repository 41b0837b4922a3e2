import Foundation
import Glibc
import NIOConcurrencyHelpers
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

/// Appends audit events as JSON lines, one per request, written as they happen so that a crash
/// loses nothing already answered. Tokens never reach it: records carry identities, not
/// credentials.
///
/// One `write(2)` per event on a descriptor opened for appending (Foundation's `FileHandle` cost
/// as much again per request), so other writers to the same file, such as a second proxy during a
/// rollout, never overwrite lines.
public final class AuditLog: Sendable {
    /// nil when there is no audit file: then nothing is encoded and no lock is taken.
    private let descriptor: Int32?
    private let lock = NIOLock()

    /// `path` nil: audit events are dropped (tests that do not look at them).
    public init(path: String?) throws {
        guard let path else {
            descriptor = nil
            return
        }
        let opened = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard opened >= 0 else {
            throw UpstreamConfiguration.Error(
                message: "cannot open the audit log \(path): \(String(cString: strerror(errno)))")
        }
        descriptor = opened
    }

    deinit {
        if let descriptor { close(descriptor) }
    }

    func write(_ record: AuditRecord, completedAt: Date = Date()) {
        guard let descriptor else { return }
        let line = AuditEventEncoder.line(record, completedAt: completedAt)
        lock.withLock {
            line.withUnsafeBytes { bytes in
                var offset = 0
                while offset < bytes.count {
                    let written = Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                    if written < 0, errno == EINTR { continue }
                    guard written > 0 else { return }  // a full disk: the proxy keeps serving
                    offset += written
                }
            }
        }
    }
}
