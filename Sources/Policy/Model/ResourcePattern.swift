/// A resource a policy matches, written `resource[.group][/subresource]` as kubectl names
/// resources: `pods`, `pods/exec`, `deployments.apps`, `*.apps`, `pods/*`, `*/*`.
///
/// Without a group the pattern means the core group (`secrets`, `pods`), except that a bare `*`
/// means every resource of every group; `deployments.*` names any group. As in RBAC, a pattern
/// without a subresource matches only requests for the resource itself, `pods/*` matches every
/// subresource of pods, and `*/*` matches everything.
public struct ResourcePattern: Sendable, Hashable, CustomStringConvertible {
    public let text: String
    public let resource: Glob
    /// nil: the core group.
    public let group: Glob?
    /// nil: no subresource.
    public let subresource: Glob?

    public struct SyntaxError: Error, Sendable, Hashable, CustomStringConvertible {
        public let message: String
        public let hint: String
        public var description: String { message }
    }

    public init(_ text: String) throws(SyntaxError) {
        self.text = text
        var main = Substring(text)
        var sub: Substring?
        if let slash = text.firstIndex(of: "/") {
            main = text[..<slash]
            sub = text[text.index(after: slash)...]
        }
        var resourceText = main
        var groupText: Substring?
        if let dot = main.firstIndex(of: ".") {
            resourceText = main[..<dot]
            groupText = main[main.index(after: dot)...]
        }
        func glob(_ part: Substring, _ what: String, allowed: (Character) -> Bool) throws(SyntaxError) -> Glob {
            guard !part.isEmpty else {
                throw SyntaxError(
                    message: "resource \"\(text)\" has an empty \(what)", hint: "write resource[.group][/subresource]")
            }
            guard part.allSatisfy({ allowed($0) || "*?[]!-".contains($0) }) else {
                throw SyntaxError(
                    message: "resource \"\(text)\" has invalid characters in its \(what)",
                    hint: "resources, groups and subresources are lower-case, e.g. deployments.apps/scale")
            }
            do {
                return try Glob(String(part))
            } catch {
                throw SyntaxError(message: "resource \"\(text)\": \(error.message)", hint: "globs use * ? and [a-z]")
            }
        }
        let lowerDigitDash: (Character) -> Bool = { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-") }
        resource = try glob(resourceText, "resource", allowed: lowerDigitDash)
        group = try groupText.map { g throws(SyntaxError) in
            try glob(g, "group", allowed: { lowerDigitDash($0) || $0 == "." })
        }
        subresource = try sub.map { s throws(SyntaxError) in try glob(s, "subresource", allowed: lowerDigitDash) }
        if group == nil, let name = resource.literal, let known = Self.wellKnownGroups[name] {
            throw SyntaxError(
                message: "resource \"\(text)\" names the core group, which has no \(name)",
                hint: "write \(name).\(known)\(sub.map { "/\($0)" } ?? "")")
        }
    }

    /// Frequently used resources outside the core group, to catch `deployments` for
    /// `deployments.apps`.
    static let wellKnownGroups: [String: String] = [
        "deployments": "apps", "statefulsets": "apps", "daemonsets": "apps", "replicasets": "apps",
        "jobs": "batch", "cronjobs": "batch", "ingresses": "networking.k8s.io",
        "networkpolicies": "networking.k8s.io", "roles": "rbac.authorization.k8s.io",
        "rolebindings": "rbac.authorization.k8s.io", "clusterroles": "rbac.authorization.k8s.io",
        "clusterrolebindings": "rbac.authorization.k8s.io", "accesspolicies": "portcullis.dev",
        "accessrequests": "portcullis.dev",
    ]

    public var description: String { text }

    public func matches(
        group requestGroup: String, resource requestResource: String, subresource requestSub: String
    ) -> Bool {
        guard resource.matches(requestResource) else { return false }
        switch group {
        case nil where !resource.matchesEverything:
            guard requestGroup.isEmpty else { return false }
        case .some(let glob):
            guard glob.matches(requestGroup) else { return false }
        default:
            break
        }
        switch subresource {
        case nil: return requestSub.isEmpty
        case .some(let glob): return !requestSub.isEmpty && glob.matches(requestSub)
        }
    }
}
