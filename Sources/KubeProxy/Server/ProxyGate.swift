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
public struct CallerAuthenticator: Sendable {
    public typealias Immediate =
        @Sendable (_ bearerToken: String?, _ clientCertificates: [NIOSSLCertificate]) -> CallerAuthentication?
    public typealias Eventual =
        @Sendable (_ bearerToken: String?, _ clientCertificates: [NIOSSLCertificate]) async -> CallerAuthentication

    /// The answer when it needs no waiting (static tokens, certificates, cached answers): the
    /// request is then decided on its event loop. nil: ``eventually`` must be asked.
    public let immediately: Immediate
    /// The answer, waiting on the network (TokenReview, OIDC keys) if need be.
    public let eventually: Eventual

    public init(immediately: @escaping Immediate, eventually: @escaping Eventual) {
        self.immediately = immediately
        self.eventually = eventually
    }

    /// An authenticator that never waits.
    public init(_ authenticate: @escaping Immediate) {
        self.immediately = authenticate
        self.eventually = { token, certificates in authenticate(token, certificates) ?? .anonymous }
    }
}

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

/// How far ``ProxyGate/begin(_:)`` got.
enum GateProgress: Sendable {
    case decided(GateVerdict)
    /// The rest needs waiting (authentication over the network, an approval check, the local
    /// AccessRequest API): ``ProxyGate/finish(_:)`` goes on from where `begin` stopped.
    case waiting(PendingRequest)
}

/// A request part-way through the gate.
struct PendingRequest: Sendable {
    enum Step: Sendable {
        case authenticate(bearerToken: String?)
        case approval(CheckedRequest, Decision.ReviewRequirement, any ApprovalStore)
        case localAPI(CheckedRequest, LocalApprovals)
    }

    let request: ProxyRequest
    let step: Step
}

/// What the gate knows of a request once the policies have decided.
struct CheckedRequest: Sendable {
    var audit: AuditRecord
    var user: RequestAttributes.UserInfo
    var info: RequestInfo
    var query: [String: [String]]
    var attributes: RequestAttributes
    var decision: Decision
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

    /// Decides `request`, waiting for whatever the decision needs.
    func decide(_ request: ProxyRequest) async -> GateVerdict {
        await settle(begin(request))
    }

    /// Decides `request` as far as it can without waiting. Most requests (a static token, a client
    /// certificate or a cached token answer, and no approval to check) are decided here, on the
    /// connection's event loop, without a hop into Swift concurrency and back.
    func begin(_ request: ProxyRequest) -> GateProgress {
        let bearer = Self.bearerToken(request.head.headers)
        guard let caller = authenticate.immediately(bearer, request.clientCertificates) else {
            return .waiting(PendingRequest(request: request, step: .authenticate(bearerToken: bearer)))
        }
        return check(request, caller: caller)
    }

    /// Finishes a request ``begin(_:)`` could not decide.
    func finish(_ pending: PendingRequest) async -> GateVerdict {
        let request = pending.request
        switch pending.step {
        case .authenticate(let bearer):
            return await settle(
                check(request, caller: await authenticate.eventually(bearer, request.clientCertificates)))
        case .approval(var checked, let review, let approvals):
            if let refusal = await approvalRefusal(
                review, approvals: approvals, checked: &checked, at: request.receivedAt)
            {
                return .respond(refusal, checked.audit)
            }
            return await settle(approved(request, checked))
        case .localAPI(let checked, let store):
            return await serveLocally(request, checked, store: store)
        }
    }

    private func settle(_ progress: GateProgress) async -> GateVerdict {
        switch progress {
        case .decided(let verdict): verdict
        case .waiting(let pending): await finish(pending)
        }
    }

    /// Everything after authentication up to the policy decision.
    private func check(_ request: ProxyRequest, caller: CallerAuthentication) -> GateProgress {
        var audit = AuditRecord(request: request)
        var user: RequestAttributes.UserInfo
        switch caller {
        case .authenticated(let identity, let method):
            user = identity
            audit.user = identity
            audit.annotations["portcullis.dev/authentication"] = method
        case .rejected(let detail):
            audit.annotations["portcullis.dev/authentication-failure"] = detail
            return .decided(.respond(.unauthorized(), audit))
        case .anonymous:
            audit.annotations["portcullis.dev/authentication-failure"] = "no credentials"
            return .decided(.respond(.unauthorized(), audit))
        }
        let info: RequestInfo
        do {
            info = try RequestInfo(method: request.head.method.rawValue, target: request.head.uri)
        } catch {
            audit.annotations["portcullis.dev/rejected"] = error.message
            return .decided(.respond(.badRequest("the request path cannot be used: \(error.message)"), audit))
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
                        return .decided(.respond(.forbidden(refusal), audit))
                    }
                    user = impersonation.identity
                    audit.impersonatedUser = user
                }
            } catch {
                audit.annotations["portcullis.dev/decision"] = "Deny"
                return .decided(.respond(.badRequest(error.message), audit))
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
        let checked = CheckedRequest(
            audit: audit, user: user, info: info, query: query, attributes: attributes, decision: decision)
        switch decision.outcome {
        case .deny:
            return .decided(.respond(.forbidden(decision.message, resource: info.resource, name: info.name), audit))
        case .review:
            guard let review = decision.review else { return .decided(.respond(.forbidden(decision.message), audit)) }
            guard let approvals else {
                let approvers = Self.describeApprovers(review)
                return .decided(
                    .respond(
                        .forbidden(
                            "\(decision.message) (this needs approval by \(approvers))", resource: info.resource,
                            name: info.name),
                        audit))
            }
            return .waiting(PendingRequest(request: request, step: .approval(checked, review, approvals)))
        case .allow:
            return approved(request, checked)
        }
    }

    /// An allowed (or approved) request: served by the local AccessRequest API or forwarded.
    private func approved(_ request: ProxyRequest, _ checked: CheckedRequest) -> GateProgress {
        if let local = approvals as? LocalApprovals, LocalApprovalsAPI.serves(checked.info) {
            return .waiting(PendingRequest(request: request, step: .localAPI(checked, local)))
        }
        return .decided(forward(request, checked))
    }

    /// Without the CRD the apiserver knows no AccessRequests: the proxy is their API server.
    private func serveLocally(
        _ request: ProxyRequest, _ checked: CheckedRequest, store: LocalApprovals
    ) async -> GateVerdict {
        var audit = checked.audit
        audit.annotations["portcullis.dev/served-by"] = "local-approvals"
        do {
            let json = try await LocalApprovalsAPI(store: store).serve(
                checked.info, query: checked.query, contentType: request.head.headers.first(name: "content-type"),
                body: Data(request.body.readableBytesView), caller: checked.user, now: request.receivedAt)
            return .answer(json: json, audit)
        } catch {
            return .respond(KubernetesStatus(error), audit)
        }
    }

    /// The request as it goes upstream: canonical path, the proxy's credential, the caller impersonated.
    private func forward(_ request: ProxyRequest, _ checked: CheckedRequest) -> GateVerdict {
        let info = checked.info
        let decision = checked.decision
        let isUpgrade = request.head.headers.contains(name: "upgrade")
        var uri = info.canonicalPath
        if info.isStream, info.subresource != "portforward" {
            uri += "?" + StreamParameters(query: checked.query).canonicalQuery
        } else if let mark = request.head.uri.firstIndex(of: "?") {
            uri += String(request.head.uri[mark...])
        }
        var head = HTTPRequestHead(version: .http1_1, method: request.head.method, uri: uri)
        head.headers = ForwardedHeaders.upstream(
            from: request.head.headers, user: checked.user, authorization: authorization.headerValue(),
            host: upstreamHost, isUpgrade: isUpgrade, extraSession: checked.audit.auditID)
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
                isWatch: info.verb == "watch", attributes: info.isStream ? checked.attributes : nil),
            checked.audit)
    }

    /// nil when an active approval lets the request through; otherwise the 403 (or 503) to answer.
    private func approvalRefusal(
        _ review: Decision.ReviewRequirement, approvals: any ApprovalStore, checked: inout CheckedRequest,
        at receivedAt: Date
    ) async -> KubernetesStatus? {
        let decision = checked.decision
        let approvers = Self.describeApprovers(review)
        let spec = AccessRequest.Spec.held(
            attributes: checked.attributes, info: checked.info, review: review, message: decision.message)
        let verdict: ApprovalVerdict
        do {
            verdict = try await approvals.check(spec, now: receivedAt)
        } catch let error as ApprovalsError {
            checked.audit.annotations["portcullis.dev/approvals-error"] = error.message
            var status = KubernetesStatus(error)
            status.message = "\(decision.message); \(error.message)"
            return status
        } catch {
            checked.audit.annotations["portcullis.dev/approvals-error"] = "\(error)"
            return .unavailable("\(decision.message); approvals cannot be checked right now, so the request is refused")
        }
        // The local store exists only inside this proxy, so the approver must go through it too.
        let through = approvals is LocalApprovals ? " through this proxy" : ""
        let how = "an approver (\(approvers)) runs\(through): kubectl portcullis approve -n \(approvals.namespace)"
        switch verdict {
        case .granted(let request, let approvedBy):
            checked.audit.annotations["portcullis.dev/approved"] = "\(approvals.namespace)/\(request) by \(approvedBy)"
            return nil
        case .pending(let request):
            checked.audit.annotations["portcullis.dev/access-request"] = "\(approvals.namespace)/\(request)"
            return .forbidden(
                "\(decision.message): waiting for approval of AccessRequest \(request); \(how) \(request)")
        case .requested(let request):
            checked.audit.annotations["portcullis.dev/access-request"] = "\(approvals.namespace)/\(request)"
            return .forbidden("\(decision.message): approval requested as AccessRequest \(request); \(how) \(request)")
        }
    }

    /// The token of an `Authorization: Bearer <token>` header (scheme in any case, blanks around
    /// the token ignored); nil for other schemes and empty tokens. On every request, so it works
    /// on the header's bytes rather than through `split` and Foundation's trimming.
    static func bearerToken(_ headers: HTTPHeaders) -> String? {
        guard let value = headers.first(name: "authorization") else { return nil }
        let bytes = value.utf8
        func isBlank(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        guard let schemeStart = bytes.firstIndex(where: { !isBlank($0) }),
            let schemeEnd = bytes[schemeStart...].firstIndex(of: UInt8(ascii: " ")),
            bytes.distance(from: schemeStart, to: schemeEnd) == 6,
            zip(bytes[schemeStart..<schemeEnd], "bearer".utf8).allSatisfy({ $0 | 0x20 == $1 }),
            let tokenStart = bytes[schemeEnd...].firstIndex(where: { !isBlank($0) }),
            let last = bytes[tokenStart...].lastIndex(where: { !isBlank($0) })
        else { return nil }
        return String(value[tokenStart...last])
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
