import Foundation
import Policy

/// Turns one AdmissionReview into a policy decision and the decision into a response.
///
/// Beyond the policies themselves it guards Portcullis's own objects, because the webhook is the
/// one place every write passes: an `AccessPolicy` that does not compile is refused with its
/// errors, and an `AccessRequest` may be approved or denied only by one of its approvers who is
/// not its requester, whatever client they use.
public struct AdmissionHandler: Sendable {
    public struct Options: Sendable {
        /// When set, exec, attach and port-forward must come through the proxy: the apiserver sees
        /// the proxy's impersonation, which carries this `userInfo.extra` key (only the proxy may
        /// impersonate it, per RBAC).
        public var requireProxyExtraKey: String?
        /// Users exempt from `requireProxyExtraKey` (break-glass, controllers).
        public var proxyExemptUsers: [String]
        /// Identities that may create AccessRequests on behalf of others (the proxy's own
        /// credential); anyone else may only create requests for themselves.
        public var proxyUsers: [String]

        public init(requireProxyExtraKey: String? = nil, proxyExemptUsers: [String] = [], proxyUsers: [String] = []) {
            self.requireProxyExtraKey = requireProxyExtraKey
            self.proxyExemptUsers = proxyExemptUsers
            self.proxyUsers = proxyUsers
        }
    }

    /// Tolerance between the clocks of whoever stamped an approval and the webhook.
    static let clockSkew: TimeInterval = 60

    /// The `userInfo.extra` key the proxy sets on every impersonated request.
    public static let proxySessionExtraKey = "portcullis.dev/session"

    public let policies: PolicyStore
    public let options: Options
    private let now: @Sendable () -> Date

    public init(policies: PolicyStore, options: Options = Options(), now: @escaping @Sendable () -> Date = { Date() }) {
        self.policies = policies
        self.options = options
        self.now = now
    }

    /// `/validate`: allowed, denied (403 with the policy message), warnings, audit annotations.
    public func validate(_ request: AdmissionRequest) -> AdmissionResponse {
        if let refusal = guardOwnObjects(request) ?? requireProxy(request) {
            return deny(request, message: refusal, annotations: ["portcullis.dev/decision": "Deny"])
        }
        let decision = policies.engine.evaluate(attributes(for: request), now: now())
        let annotations = Self.auditAnnotations(decision)
        switch decision.outcome {
        case .allow:
            return AdmissionResponse(
                uid: request.uid, allowed: true, warnings: decision.warnings, auditAnnotations: annotations)
        case .deny:
            return deny(request, message: decision.message, warnings: decision.warnings, annotations: annotations)
        case .review:
            if let session = request.userInfo.extra[Self.proxySessionExtraKey]?.first {
                // The proxy forwards a Review request only once an approver granted it, and only an
                // identity allowed to impersonate this extra (the proxy) can set it.
                var annotations = annotations
                annotations["portcullis.dev/review"] = "granted through the proxy (session \(session))"
                return AdmissionResponse(
                    uid: request.uid, allowed: true, warnings: decision.warnings, auditAnnotations: annotations)
            }
            let approvers = decision.review.map(Self.describeApprovers) ?? "an approver"
            return deny(
                request,
                message:
                    "\(decision.message) (approval by \(approvers) is required; request it through the Portcullis proxy)",
                warnings: decision.warnings, annotations: annotations)
        }
    }

    /// `/mutate`: the Mutate rules' JSON Patch, computed against the object as it is now, so that a
    /// reinvocation finds the changes in place and adds nothing.
    public func mutate(_ request: AdmissionRequest) -> AdmissionResponse {
        guard request.operation == "CREATE" || request.operation == "UPDATE", let object = request.object else {
            return AdmissionResponse(uid: request.uid, allowed: true)
        }
        if request.resource.group == PolicyAPI.group, request.resource.resource == "accessrequests" {
            return stampDecision(request, object: object)
        }
        let decision = policies.engine.evaluate(attributes(for: request), now: now())
        var builder = JSONPatchBuilder(object: object)
        var failures: [String] = []
        for mutation in decision.mutations {
            for operation in mutation.operations {
                do {
                    try builder.apply(operation)
                } catch {
                    failures.append("\(mutation.rule): \(error.message)")
                }
            }
        }
        var annotations: [String: String] = [:]
        if !decision.mutations.isEmpty {
            annotations["portcullis.dev/mutated-by"] = decision.mutations.map(\.rule.description).joined(separator: ",")
        }
        return AdmissionResponse(
            uid: request.uid, allowed: true, warnings: decision.warnings + failures, auditAnnotations: annotations,
            patch: builder.operations.isEmpty ? nil : builder.encoded())
    }

    /// Records who decided an AccessRequest and until when an approval holds, from the
    /// authenticated user and the request's own `grantFor`, whatever the client sent: nobody can
    /// approve in someone else's name or stretch a grant.
    private func stampDecision(_ request: AdmissionRequest, object: [String: Any]) -> AdmissionResponse {
        guard let status = object["status"] as? [String: Any], let state = status["state"] as? String,
            state == "Approved" || state == "Denied",
            (request.oldObject?["status"] as? [String: Any])?["state"] as? String ?? "Pending" == "Pending"
        else { return AdmissionResponse(uid: request.uid, allowed: true) }
        let now = self.now()
        var builder = JSONPatchBuilder(object: object)
        var stamp: [(String, String)] = [
            ("decidedBy", request.userInfo.username), ("decidedAt", AccessRequest.formatTimestamp(now)),
        ]
        if state == "Approved" {
            let grant =
                ((object["spec"] as? [String: Any])?["grantFor"] as? String).flatMap(AccessRequest.grantDuration)
                ?? 3600
            stamp.append(("expiresAt", AccessRequest.formatTimestamp(now.addingTimeInterval(grant))))
        }
        for (field, value) in stamp {
            try? builder.apply(
                .init(operation: .add, path: JSONPointer(tokens: ["status", field]), value: .string(value)))
        }
        return AdmissionResponse(
            uid: request.uid, allowed: true, patch: builder.operations.isEmpty ? nil : builder.encoded())
    }

    private func deny(
        _ request: AdmissionRequest, message: String, warnings: [String] = [], annotations: [String: String]
    ) -> AdmissionResponse {
        AdmissionResponse(
            uid: request.uid, allowed: false, statusCode: 403, statusReason: "Forbidden", message: message,
            warnings: warnings, auditAnnotations: annotations)
    }

    // MARK: Attributes

    /// The policy attributes of a review. CONNECT reviews of exec, attach and port-forward carry
    /// the PodExecOptions/PodAttachOptions as `object`; their command becomes `exec.command`, so
    /// the first command of a `kubectl exec` straight to the apiserver is checked too.
    public func attributes(for request: AdmissionRequest) -> RequestAttributes {
        let operation = AccessPolicy.Operation(rawValue: request.operation)
        var attributes = RequestAttributes(
            user: .init(
                name: request.userInfo.username, uid: request.userInfo.uid, groups: request.userInfo.groups,
                extra: request.userInfo.extra),
            verb: Self.verb(for: request), operation: operation, group: request.resource.group,
            version: request.resource.version, resource: request.resource.resource, subresource: request.subResource,
            namespace: request.namespace, name: request.name, source: .webhook)
        // Converted field by field as expressions read them: most reviews meet no rule that reads
        // the object, and the rest read a few fields of it.
        attributes.object = request.object.map(CELValue.init(deferredJSONObject:))
        attributes.oldObject = request.oldObject.map(CELValue.init(deferredJSONObject:))
        if request.operation == "CONNECT", request.subResource == "exec" || request.subResource == "attach",
            let options = request.object
        {
            attributes.exec = .init(
                command: options["command"] as? [String] ?? [], container: options["container"] as? String ?? "",
                tty: options["tty"] as? Bool ?? false, stdin: options["stdin"] as? Bool ?? false)
        }
        return attributes
    }

    /// The API verb: admission reports operations, policies match verbs. Exec, attach and
    /// port-forward are `create` whichever HTTP method the client used, in the proxy too.
    static func verb(for request: AdmissionRequest) -> String {
        switch request.operation {
        case "CREATE", "CONNECT": "create"
        case "UPDATE": "update"
        default: "delete"
        }
    }

    static func auditAnnotations(_ decision: Decision) -> [String: String] {
        var annotations = ["portcullis.dev/decision": decision.outcome.rawValue]
        if let rule = decision.decidedBy { annotations["portcullis.dev/rule"] = rule.description }
        let audited = decision.results.filter { $0.mode == .audit && $0.status == .matched }
        if !audited.isEmpty {
            annotations["portcullis.dev/audit"] = audited.map { "\($0.action.rawValue) by \($0.rule)" }
                .joined(separator: "; ")
        }
        return annotations
    }

    static func describeApprovers(_ review: Decision.ReviewRequirement) -> String {
        let names =
            review.spec.approverUsers.map { "user \($0.pattern)" }
            + review.spec.approverGroups.map { "group \($0.pattern)" }
        return names.joined(separator: " or ")
    }

    // MARK: Guards

    private func requireProxy(_ request: AdmissionRequest) -> String? {
        guard let key = options.requireProxyExtraKey, request.operation == "CONNECT",
            ["exec", "attach", "portforward"].contains(request.subResource),
            !options.proxyExemptUsers.contains(request.userInfo.username),
            request.userInfo.extra[key]?.isEmpty ?? true
        else { return nil }
        return
            "\(request.subResource) must go through the Portcullis proxy in this cluster; point your kubeconfig at it"
    }

    private func guardOwnObjects(_ request: AdmissionRequest) -> String? {
        guard request.resource.group == PolicyAPI.group, request.operation == "CREATE" || request.operation == "UPDATE"
        else { return nil }
        switch request.resource.resource {
        case "accesspolicies" where request.subResource.isEmpty:
            return validatePolicy(request.object)
        case "accessrequests":
            return validateAccessRequest(request)
        default:
            return nil
        }
    }

    private func validatePolicy(_ object: [String: Any]?) -> String? {
        guard let object else { return "an AccessPolicy review without an object" }
        let name = (object["metadata"] as? [String: Any])?["name"] as? String ?? "unnamed"
        do {
            let policies = try PolicyLoader.parseObject(object, label: "AccessPolicy \(name)")
            _ = try PolicyCompiler.compile(policies)
            return nil
        } catch {
            return "AccessPolicy \(name) is invalid:\n" + error.errors.map(\.description).joined(separator: "\n")
        }
    }

    private func validateAccessRequest(_ request: AdmissionRequest) -> String? {
        guard let object = request.object,
            let data = try? JSONSerialization.data(withJSONObject: object),
            let updated = try? JSONDecoder().decode(AccessRequest.self, from: data)
        else { return "the AccessRequest does not have the AccessRequest shape" }
        if request.operation == "CREATE" {
            guard updated.state == .pending else {
                return "a new AccessRequest must be Pending; approvals are given afterwards"
            }
            let creator = request.userInfo.username
            guard creator == updated.spec.requester.user || options.proxyUsers.contains(creator) else {
                return "\(creator) cannot request access on behalf of \(updated.spec.requester.user)"
            }
            return nil
        }
        guard let oldObject = request.oldObject,
            let oldData = try? JSONSerialization.data(withJSONObject: oldObject),
            let previous = try? JSONDecoder().decode(AccessRequest.self, from: oldData)
        else { return "the previous AccessRequest cannot be read" }
        if updated.spec != previous.spec { return "the spec of an AccessRequest cannot change once created" }
        guard updated.state != previous.state else { return nil }
        guard previous.state == .pending else {
            return "AccessRequest \(previous.metadata.name) was already \(previous.state.rawValue)"
        }
        switch updated.state {
        case .approved, .denied:
            if let refusal = previous.refusal(toDecideBy: request.userInfo.username, groups: request.userInfo.groups) {
                return refusal
            }
            if updated.status?.decidedBy != request.userInfo.username {
                return "status.decidedBy must be the user making the decision (\(request.userInfo.username))"
            }
            if updated.state == .approved {
                let grant = AccessRequest.grantDuration(updated.spec.grantFor) ?? 3600
                guard let expiry = updated.status?.expiresAt.flatMap(AccessRequest.parseTimestamp),
                    expiry <= now().addingTimeInterval(grant + Self.clockSkew)
                else { return "status.expiresAt must be set and at most grantFor (\(updated.spec.grantFor)) from now" }
            }
            return nil
        case .expired:
            return nil
        case .pending:
            return "an AccessRequest cannot go back to Pending"
        }
    }
}
