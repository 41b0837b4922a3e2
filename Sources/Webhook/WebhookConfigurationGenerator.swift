import Foundation
import Policy

/// Generates the `ValidatingWebhookConfiguration` and `MutatingWebhookConfiguration` for a set of
/// policies.
///
/// Only what the policies can decide is sent to the webhook (their resources and the operations
/// their verbs imply), because every review is latency on someone's `kubectl apply`. Policies
/// with `failurePolicy: Fail` and `Ignore` go to separate webhooks, so an outage of the webhook
/// blocks only what must fail closed. Namespaces where the cluster and Portcullis themselves run
/// are excluded, so a broken webhook cannot lock out its own repair; Portcullis's own objects are
/// always guarded by a separate webhook without that exclusion.
public struct WebhookConfigurationGenerator: Sendable {
    public enum Endpoint: Sendable {
        /// An in-cluster Service.
        case service(namespace: String, name: String, port: Int)
        /// A URL (out-of-cluster webhooks, the test cluster).
        case url(String)
    }

    public var name: String
    public var endpoint: Endpoint
    public var caBundlePEM: String
    public var excludedNamespaces: [String]
    public var timeoutSeconds: Int
    /// Also guard exec, attach and port-forward that bypass the proxy (see AdmissionHandler).
    public var requireProxy: Bool
    /// When set, every webhook (the guard too) sees only namespaces with these labels: for a staged
    /// roll-out (`portcullis.dev/enforce: "true"`), or to confine a test to its namespace.
    public var onlyNamespacesLabelled: [String: String]?

    public init(
        name: String = "portcullis", endpoint: Endpoint, caBundlePEM: String,
        excludedNamespaces: [String] = ["kube-system", "portcullis-system"], timeoutSeconds: Int = 5,
        requireProxy: Bool = false, onlyNamespacesLabelled: [String: String]? = nil
    ) {
        self.name = name
        self.endpoint = endpoint
        self.caBundlePEM = caBundlePEM
        self.excludedNamespaces = excludedNamespaces
        self.timeoutSeconds = timeoutSeconds
        self.requireProxy = requireProxy
        self.onlyNamespacesLabelled = onlyNamespacesLabelled
    }

    /// One `rules` entry: a group and resource with the operations sent for it.
    struct Rule: Hashable, Comparable {
        var group: String
        var resource: String
        var operations: [String]

        static func < (a: Rule, b: Rule) -> Bool { (a.group, a.resource) < (b.group, b.resource) }
    }

    /// Both configurations as one multi-document YAML stream.
    public func manifests(for policies: [AccessPolicy]) -> String {
        var validating: [AccessPolicy.FailurePolicy: Set<Rule>] = [:]
        var mutating: [AccessPolicy.FailurePolicy: Set<Rule>] = [:]
        for policy in policies {
            let rules = Self.rules(for: policy)
            guard !rules.isEmpty else { continue }
            if policy.rules.contains(where: { $0.action == .mutate }) {
                mutating[policy.failurePolicy, default: []].formUnion(rules)
            }
            if policy.rules.contains(where: { $0.action != .mutate }) {
                validating[policy.failurePolicy, default: []].formUnion(rules)
            }
        }
        var validatingHooks: [String] = []
        for failure in [AccessPolicy.FailurePolicy.fail, .ignore] {
            if let rules = validating[failure] {
                validatingHooks.append(hook("policies-\(failure.rawValue.lowercased())", "/validate", failure, rules))
            }
        }
        var guarded: Set<Rule> = [
            Rule(group: PolicyAPI.group, resource: "accesspolicies", operations: ["CREATE", "UPDATE"]),
            Rule(group: PolicyAPI.group, resource: "accessrequests", operations: ["CREATE", "UPDATE"]),
            Rule(group: PolicyAPI.group, resource: "accessrequests/status", operations: ["UPDATE"]),
        ]
        if requireProxy {
            for sub in ["exec", "attach", "portforward"] {
                guarded.insert(Rule(group: "", resource: "pods/\(sub)", operations: ["CONNECT"]))
            }
        }
        validatingHooks.append(hook("guard", "/validate", .fail, guarded, namespaced: false))
        // Decisions on AccessRequests are stamped with the deciding user and the grant's end.
        var mutatingHooks: [String] = [
            hook(
                "stamp", "/mutate", .fail,
                [Rule(group: PolicyAPI.group, resource: "accessrequests/status", operations: ["UPDATE"])],
                namespaced: false, mutating: true)
        ]
        for failure in [AccessPolicy.FailurePolicy.fail, .ignore] {
            if let rules = mutating[failure] {
                mutatingHooks.append(
                    hook("mutate-\(failure.rawValue.lowercased())", "/mutate", failure, rules, mutating: true))
            }
        }
        var documents = [configuration("ValidatingWebhookConfiguration", validatingHooks)]
        documents.append(configuration("MutatingWebhookConfiguration", mutatingHooks))
        return documents.joined(separator: "---\n")
    }

    /// The admission rules one policy needs; none for read-only policies (get/list/watch masking
    /// happens in the proxy, never at admission).
    static func rules(for policy: AccessPolicy) -> Set<Rule> {
        let match = policy.match
        var operations = Set(match.operations.map(\.rawValue))
        if operations.isEmpty {
            for verb in match.verbs {
                guard let literal = verb.literal else {
                    operations.formUnion(["CREATE", "UPDATE", "DELETE", "CONNECT"])
                    continue
                }
                switch literal {
                case "create": operations.formUnion(["CREATE", "CONNECT"])
                case "update", "patch": operations.insert("UPDATE")
                case "delete", "deletecollection": operations.insert("DELETE")
                default: break
                }
            }
            if match.verbs.isEmpty { operations = ["CREATE", "UPDATE", "DELETE", "CONNECT"] }
        }
        guard !operations.isEmpty else { return [] }
        let patterns = match.resources.isEmpty ? [try? ResourcePattern("*/*")].compactMap { $0 } : match.resources
        var rules: Set<Rule> = []
        for pattern in patterns {
            // Globs other than * cannot be expressed in admission rules: widen to *, the webhook
            // matches precisely.
            let resource = pattern.resource.literal ?? "*"
            let group: String
            switch pattern.group {
            case nil: group = pattern.resource.matchesEverything ? "*" : ""
            case .some(let glob): group = glob.literal ?? "*"
            }
            let sub = pattern.subresource.map { $0.literal ?? "*" }
            let name = sub.map { "\(resource)/\($0)" } ?? resource
            // Admission sees exec, attach and port-forward only as CONNECT, and CONNECT only for them.
            let isStream = ["exec", "attach", "portforward"].contains(sub ?? "")
            let applicable = operations.filter { operation in
                if isStream { return operation == "CONNECT" }
                return operation != "CONNECT" || sub == "*"
            }.sorted()
            if !applicable.isEmpty { rules.insert(Rule(group: group, resource: name, operations: applicable)) }
        }
        return rules
    }

    /// One rule per group and resource, with the union of the operations asked for it.
    static func merged(_ rules: Set<Rule>) -> [Rule] {
        var operations: [Rule: Set<String>] = [:]
        for rule in rules {
            operations[Rule(group: rule.group, resource: rule.resource, operations: []), default: []]
                .formUnion(rule.operations)
        }
        return operations.map { Rule(group: $0.key.group, resource: $0.key.resource, operations: $0.value.sorted()) }
            .sorted()
    }

    private func configuration(_ kind: String, _ hooks: [String]) -> String {
        """
        apiVersion: admissionregistration.k8s.io/v1
        kind: \(kind)
        metadata:
          name: \(name)
          labels: {app.kubernetes.io/name: portcullis, app.kubernetes.io/component: webhook}
        webhooks:
        \(hooks.joined())
        """
    }

    private func hook(
        _ suffix: String, _ path: String, _ failure: AccessPolicy.FailurePolicy, _ rules: Set<Rule>,
        namespaced: Bool = true, mutating: Bool = false
    ) -> String {
        let clientConfig: String
        switch endpoint {
        case .service(let namespace, let service, let port):
            clientConfig = "service: {namespace: \(namespace), name: \(service), port: \(port), path: \(path)}"
        case .url(let base):
            clientConfig = "url: \"\(base.hasSuffix("/") ? String(base.dropLast()) : base)\(path)\""
        }
        var text = """
            - name: \(suffix).\(name).portcullis.dev
              admissionReviewVersions: [v1]
              sideEffects: None
              failurePolicy: \(failure.rawValue)
              matchPolicy: Equivalent
              timeoutSeconds: \(timeoutSeconds)
              clientConfig:
                \(clientConfig)
                caBundle: \(Data(caBundlePEM.utf8).base64EncodedString())

            """
        if mutating { text += "  reinvocationPolicy: IfNeeded\n" }
        if let labels = onlyNamespacesLabelled {
            let pairs = labels.sorted { $0.key < $1.key }.map { "\"\($0.key)\": \"\($0.value)\"" }
            text += "  namespaceSelector: {matchLabels: {\(pairs.joined(separator: ", "))}}\n"
        } else if namespaced && !excludedNamespaces.isEmpty {
            text += """
                  namespaceSelector:
                    matchExpressions:
                    - {key: kubernetes.io/metadata.name, operator: NotIn, values: [\(excludedNamespaces.joined(separator: ", "))]}

                """
        }
        text += "  rules:\n"
        for rule in Self.merged(rules) {
            text +=
                "  - {apiGroups: [\"\(rule.group)\"], apiVersions: [\"*\"], resources: [\"\(rule.resource)\"], "
                + "operations: [\(rule.operations.joined(separator: ", "))], scope: \"*\"}\n"
        }
        return text
    }
}
