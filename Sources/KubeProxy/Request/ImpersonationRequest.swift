import Foundation
import NIOHTTP1
import Policy

/// Whom a client asked to act as with `Impersonate-*` headers (`kubectl --as`, `--as-group`).
///
/// The proxy is the only impersonator the apiserver trusts, so a client's request to act as
/// someone else is judged by policy instead of RBAC: every target must be explicitly allowed by an
/// `Allow` rule on verb `impersonate`, with the resources the apiserver's own impersonation check
/// uses (`users`, `groups`, `serviceaccounts`, `userextras/KEY` in `authentication.k8s.io`).
struct ImpersonationRequest: Equatable, Sendable {
    var user: String
    var groups: [String]
    var extra: [String: [String]]

    struct Refusal: Error, Equatable {
        let message: String
    }

    /// nil when the headers ask for no impersonation.
    init?(headers: HTTPHeaders) throws(Refusal) {
        var user: [String] = []
        var groups: [String] = []
        var extra: [String: [String]] = [:]
        var any = false
        for (name, value) in headers {
            let lower = name.lowercased()
            guard lower.hasPrefix("impersonate-") else { continue }
            any = true
            switch lower {
            case "impersonate-user": user.append(value)
            case "impersonate-group": groups.append(value)
            case "impersonate-uid":
                throw Refusal(message: "Impersonate-Uid is not supported through Portcullis")
            default:
                let prefix = "impersonate-extra-"
                guard lower.hasPrefix(prefix), lower.count > prefix.count else {
                    throw Refusal(message: "unknown impersonation header \(name)")
                }
                let key = String(lower.dropFirst(prefix.count)).removingPercentEncoding ?? ""
                guard !key.isEmpty, key != ForwardedHeaders.sessionExtraKey else {
                    throw Refusal(message: "the extra \(key) cannot be impersonated")
                }
                extra[key, default: []].append(value)
            }
        }
        guard any else { return nil }
        guard user.count == 1, let name = user.first, !name.isEmpty else {
            throw Refusal(message: "impersonation needs exactly one Impersonate-User header")
        }
        self.user = name
        self.groups = groups
        self.extra = extra
    }

    /// The identity the request continues as: policies and RBAC judge this user.
    var identity: RequestAttributes.UserInfo {
        var groups = self.groups
        if let (namespace, _) = serviceAccount {
            // The apiserver gives an impersonated ServiceAccount its groups (kubernetes#60193).
            groups += ["system:serviceaccounts", "system:serviceaccounts:\(namespace)"]
        }
        if !groups.contains("system:authenticated") { groups.append("system:authenticated") }
        return .init(name: user, groups: groups, extra: extra)
    }

    /// `system:serviceaccount:NAMESPACE:NAME` names a ServiceAccount.
    var serviceAccount: (namespace: String, name: String)? {
        let parts = user.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "system", parts[1] == "serviceaccount", !parts[2].isEmpty,
            !parts[3].isEmpty
        else { return nil }
        return (String(parts[2]), String(parts[3]))
    }

    /// One policy question per target, shaped like the apiserver's impersonation authorization.
    func checks(by caller: RequestAttributes.UserInfo) -> [RequestAttributes] {
        var checks: [RequestAttributes] = []
        if let (namespace, name) = serviceAccount {
            checks.append(
                .init(user: caller, verb: "impersonate", resource: "serviceaccounts", namespace: namespace, name: name))
        } else {
            checks.append(.init(user: caller, verb: "impersonate", resource: "users", name: user))
        }
        for group in groups {
            checks.append(.init(user: caller, verb: "impersonate", resource: "groups", name: group))
        }
        for (key, values) in extra.sorted(by: { $0.key < $1.key }) {
            for value in values {
                checks.append(
                    .init(
                        user: caller, verb: "impersonate", group: "authentication.k8s.io", resource: "userextras",
                        subresource: key, name: value))
            }
        }
        return checks
    }

    /// nil when every target is allowed by an explicit Allow rule; otherwise why not.
    func refusal(by caller: RequestAttributes.UserInfo, engine: PolicyEngine, now: Date) -> String? {
        for check in checks(by: caller) {
            let decision = engine.evaluate(check, now: now)
            guard decision.outcome == .allow, decision.decidedBy != nil else {
                let target = check.subresource.isEmpty ? check.resource : "\(check.resource)/\(check.subresource)"
                return "\(caller.name) may not impersonate \(target) \"\(check.name)\" through Portcullis: "
                    + "no policy allows it"
            }
        }
        return nil
    }
}
