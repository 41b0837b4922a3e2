import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import Policy

/// The outcome of authenticating a caller.
public enum CallerAuthentication: Sendable {
    case authenticated(RequestAttributes.UserInfo, method: String)
    /// Credentials were presented and refused; `detail` is for the audit log only.
    case rejected(detail: String)
    /// No credentials at all.
    case anonymous
}

/// Authenticates a caller from its bearer token and TLS client certificate chain.
public typealias CallerAuthenticator =
    @Sendable (_ bearerToken: String?, _ clientCertificates: [NIOSSLCertificate]) async ->
    CallerAuthentication

/// One client request, as the gate sees it.
struct ProxyRequest: Sendable {
    var head: HTTPRequestHead
    var body: ByteBuffer
    var clientCertificates: [NIOSSLCertificate]
    var remoteAddress: String
    var receivedAt: Date
}

/// What to do with a request.
enum GateVerdict: Sendable {
    case respond(KubernetesStatus, AuditRecord)
    /// A 200 the proxy answers itself (the local AccessRequest API).
    case answer(json: Data, AuditRecord)
    case forward(UpstreamRequest, AuditRecord)
}

/// The request to send upstream, and what to do to its response.
struct UpstreamRequest: Sendable {
    var head: HTTPRequestHead
    var body: ByteBuffer?
    var isUpgrade: Bool
    var warnings: [String]
    var masks: [Decision.Mask]
    var isWatch: Bool
    /// What the policies were asked about this request (exec and attach check typed lines with it).
    var attributes: RequestAttributes?
}

/// Decides every request: who is calling, what they ask for, and what the policies say. The NIO
/// handler only moves bytes; everything that can wait on I/O (TokenReview, OIDC keys, approvals)
/// happens here, in async code.
struct ProxyGate: Sendable {
    let policies: PolicyStore
    let authenticate: CallerAuthenticator
    let upstreamHost: String
    let authorization: UpstreamAuthorization
    /// Where Review decisions wait for approval; nil: Review answers 403 without a request.
    let approvals: (any ApprovalStore)?

    /// Largest request body read: the apiserver's own limit, since bodies are buffered so that
    /// policies can see the object.
    static let maximumRequestBody = 3 * 1024 * 1024

    func decide(_ request: ProxyRequest) async -> GateVerdict {
        var audit = AuditRecord(request: request)
        let bearer = Self.bearerToken(request.head.headers)
        var user: RequestAttributes.UserInfo
        switch await authenticate(bearer, request.clientCertificates) {
        case .authenticated(let identity, let method):
            user = identity
            audit.user = identity
            audit.annotations["portcullis.dev/authentication"] = method
        case .rejected(let detail):
            audit.annotations["portcullis.dev/authentication-failure"] = detail
            return .respond(.unauthorized(), audit)
        case .anonymous:
            audit.annotations["portcullis.dev/authentication-failure"] = "no credentials"
            return .respond(.unauthorized(), audit)
        }
        let info: RequestInfo
        do {
            info = try RequestInfo(method: request.head.method.rawValue, target: request.head.uri)
        } catch {
            audit.annotations["portcullis.dev/rejected"] = error.message
            return .respond(.badRequest("the request path cannot be used: \(error.message)"), audit)
        }
        audit.info = info
        // Acting as someone else through the proxy would let one caller borrow another's policies
        // and RBAC, and the apiserver trusts only the proxy to impersonate: so a client's
        // impersonation must be explicitly allowed by policy. Discovery (non-resource paths) is
        // answered as the caller instead of refused: it reveals nothing about access, and kubectl
        // cannot show the reason of a refused discovery request (it prints "unknown").
        if info.isResourceRequest {
            do {
                if let impersonation = try ImpersonationRequest(headers: request.head.headers) {
                    if let refusal = impersonation.refusal(
                        by: user, engine: policies.engine, now: request.receivedAt)
                    {
                        audit.annotations["portcullis.dev/decision"] = "Deny"
                        return .respond(.forbidden(refusal), audit)
                    }
                    user = impersonation.identity
                    audit.impersonatedUser = user
                }
            } catch {
                audit.annotations["portcullis.dev/decision"] = "Deny"
                return .respond(.badRequest(error.message), audit)
            }
        }
        let query = RequestInfo.query(of: request.head.uri)
        var attributes = info.attributes(user: user, query: query)
        if ["create", "update", "patch"].contains(info.verb), request.body.readableBytes > 0,
            request.head.headers.first(name: "content-type")?.lowercased().contains("json") ?? true
        {
            attributes.object = try? CELValue(json: Data(request.body.readableBytesView))
        }
        let decision = policies.engine.evaluate(attributes, now: request.receivedAt)
        audit.decision = decision
        switch decision.outcome {
        case .deny:
            return .respond(.forbidden(decision.message, resource: info.resource, name: info.name), audit)
        case .review:
            if let refusal = await reviewRefusal(
                decision, attributes: attributes, info: info, receivedAt: request.receivedAt, audit: &audit)
            {
                return .respond(refusal, audit)
            }
        case .allow:
            break
        }
        if let local = approvals as? LocalApprovals, LocalApprovalsAPI.serves(info) {
            // Without the CRD the apiserver knows no AccessRequests: the proxy is their API server.
            audit.annotations["portcullis.dev/served-by"] = "local-approvals"
            do {
                let json = try await LocalApprovalsAPI(store: local).serve(
                    info, query: query, contentType: request.head.headers.first(name: "content-type"),
                    body: Data(request.body.readableBytesView), caller: user, now: request.receivedAt)
                return .answer(json: json, audit)
            } catch {
                return .respond(KubernetesStatus(error), audit)
            }
        }
        let isUpgrade = request.head.headers.contains(name: "upgrade")
        var uri = info.canonicalPath
        if info.isStream, info.subresource != "portforward" {
            uri += "?" + StreamParameters(query: query).canonicalQuery
        } else if let mark = request.head.uri.firstIndex(of: "?") {
            uri += String(request.head.uri[mark...])
        }
        var head = HTTPRequestHead(version: .http1_1, method: request.head.method, uri: uri)
        head.headers = ForwardedHeaders.upstream(
            from: request.head.headers, user: user, authorization: authorization.headerValue(), host: upstreamHost,
            isUpgrade: isUpgrade, extraSession: audit.auditID)
        if !decision.masks.isEmpty {
            // Masking rewrites JSON; ask for JSON rather than protobuf.
            head.headers.replaceOrAdd(
                name: "Accept", value: Self.jsonAccept(request.head.headers.first(name: "accept")))
            head.headers.remove(name: "Accept-Encoding")
        }
        var body: ByteBuffer?
        if request.body.readableBytes > 0 || [.POST, .PUT, .PATCH].contains(request.head.method) {
            body = request.body
            head.headers.replaceOrAdd(name: "Content-Length", value: String(request.body.readableBytes))
        }
        return .forward(
            UpstreamRequest(
                head: head, body: body, isUpgrade: isUpgrade, warnings: decision.warnings, masks: decision.masks,
                isWatch: info.verb == "watch", attributes: info.isStream ? attributes : nil),
            audit)
    }

    /// nil when an active approval lets the request through; otherwise the 403 (or 503) to answer.
    private func reviewRefusal(
        _ decision: Decision, attributes: RequestAttributes, info: RequestInfo, receivedAt: Date,
        audit: inout AuditRecord
    ) async -> KubernetesStatus? {
        guard let review = decision.review else { return .forbidden(decision.message) }
        let approvers = Self.describeApprovers(review)
        guard let approvals else {
            return .forbidden(
                "\(decision.message) (this needs approval by \(approvers))", resource: info.resource, name: info.name)
        }
        let spec = AccessRequest.Spec.held(
            attributes: attributes, info: info, review: review, message: decision.message)
        let verdict: ApprovalVerdict
        do {
            verdict = try await approvals.check(spec, now: receivedAt)
        } catch let error as ApprovalsError {
            audit.annotations["portcullis.dev/approvals-error"] = error.message
            var status = KubernetesStatus(error)
            status.message = "\(decision.message); \(error.message)"
            return status
        } catch {
            audit.annotations["portcullis.dev/approvals-error"] = "\(error)"
            return .unavailable("\(decision.message); approvals cannot be checked right now, so the request is refused")
        }
        // The local store exists only inside this proxy, so the approver must go through it too.
        let through = approvals is LocalApprovals ? " through this proxy" : ""
        let how = "an approver (\(approvers)) runs\(through): kubectl portcullis approve -n \(approvals.namespace)"
        switch verdict {
        case .granted(let request, let approvedBy):
            audit.annotations["portcullis.dev/approved"] = "\(approvals.namespace)/\(request) by \(approvedBy)"
            return nil
        case .pending(let request):
            audit.annotations["portcullis.dev/access-request"] = "\(approvals.namespace)/\(request)"
            return .forbidden(
                "\(decision.message): waiting for approval of AccessRequest \(request); \(how) \(request)")
        case .requested(let request):
            audit.annotations["portcullis.dev/access-request"] = "\(approvals.namespace)/\(request)"
            return .forbidden("\(decision.message): approval requested as AccessRequest \(request); \(how) \(request)")
        }
    }

    static func bearerToken(_ headers: HTTPHeaders) -> String? {
        guard let value = headers.first(name: "authorization") else { return nil }
        let parts = value.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let token = parts[1].trimmingCharacters(in: .whitespaces)
        return token.isEmpty ? nil : token
    }

    /// Keeps the client's Table request (`as=Table`) in JSON form; drops protobuf.
    static func jsonAccept(_ accept: String?) -> String {
        guard let accept else { return "application/json" }
        let kept = accept.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { $0.hasPrefix("application/json") }
        return kept.isEmpty ? "application/json" : kept.joined(separator: ", ")
    }

    static func describeApprovers(_ review: Decision.ReviewRequirement) -> String {
        (review.spec.approverUsers.map { "user \($0.pattern)" }
            + review.spec.approverGroups.map { "group \($0.pattern)" })
            .joined(separator: " or ")
    }
}
