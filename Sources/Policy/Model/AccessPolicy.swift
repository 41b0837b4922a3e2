/// An `AccessPolicy` (`portcullis.dev/v1alpha1`): which requests it applies to (`match`,
/// `matchConditions`) and what its rules decide about them. The same object drives the proxy and
/// the admission webhook; it is applied with `kubectl apply` or loaded from files.
///
/// ```yaml
/// apiVersion: portcullis.dev/v1alpha1
/// kind: AccessPolicy
/// metadata: {name: prod-guardrails}
/// spec:
///   mode: Enforce
///   match: {subjects: [{group: developers}], namespaces: ["prod-*"], resources: ["pods/exec"]}
///   rules:
///   - {name: no-rm-rf, action: Deny, expression: "exec.line.matches('rm\\s+-rf')", message: "no"}
/// ```
public struct AccessPolicy: Sendable, Hashable {
    public var name: String
    /// Where the document starts.
    public var location: SourceLocation
    public var mode: Mode
    /// What a rule or match condition that fails to evaluate does.
    public var failurePolicy: FailurePolicy
    public var match: Match
    public var matchConditions: [NamedExpression]
    public var variables: [NamedExpression]
    public var rules: [Rule]

    public init(
        name: String, location: SourceLocation, mode: Mode = .enforce, failurePolicy: FailurePolicy = .fail,
        match: Match = Match(),
        matchConditions: [NamedExpression] = [], variables: [NamedExpression] = [], rules: [Rule]
    ) {
        self.name = name
        self.location = location
        self.mode = mode
        self.failurePolicy = failurePolicy
        self.match = match
        self.matchConditions = matchConditions
        self.variables = variables
        self.rules = rules
    }

    /// How a policy's decisions take effect, for staged roll-outs.
    public enum Mode: String, Sendable, Hashable, CaseIterable {
        /// Decisions are enforced.
        case enforce = "Enforce"
        /// Denials and reviews become warnings; the request goes through.
        case warn = "Warn"
        /// Decisions are only recorded (audit annotations); the request goes through silently.
        case audit = "Audit"
    }

    /// What an evaluation error does, as in ValidatingAdmissionPolicy: `Fail` (the default) treats
    /// the erroring rule as a denial, so a broken expression fails closed; `Ignore` skips it.
    public enum FailurePolicy: String, Sendable, Hashable, CaseIterable {
        case fail = "Fail"
        case ignore = "Ignore"
    }

    /// Which requests the policy applies to. Every given field must match; an empty list matches
    /// everything.
    public struct Match: Sendable, Hashable {
        public var subjects: [SubjectPattern]
        public var namespaces: [Glob]
        public var namespaceSelector: LabelSelector?
        public var resources: [ResourcePattern]
        public var verbs: [Glob]
        public var operations: [Operation]

        public init(
            subjects: [SubjectPattern] = [], namespaces: [Glob] = [], namespaceSelector: LabelSelector? = nil,
            resources: [ResourcePattern] = [], verbs: [Glob] = [], operations: [Operation] = []
        ) {
            self.subjects = subjects
            self.namespaces = namespaces
            self.namespaceSelector = namespaceSelector
            self.resources = resources
            self.verbs = verbs
            self.operations = operations
        }
    }

    /// Admission operations, as in `AdmissionRequest.operation`.
    public enum Operation: String, Sendable, Hashable, CaseIterable {
        case create = "CREATE"
        case update = "UPDATE"
        case delete = "DELETE"
        case connect = "CONNECT"
    }

    /// A named CEL expression (`matchConditions`, `variables`).
    public struct NamedExpression: Sendable, Hashable {
        public var name: String
        public var expression: PolicyExpression

        public init(name: String, expression: PolicyExpression) {
            self.name = name
            self.expression = expression
        }
    }

    /// One rule: when `expression` is true (or absent), `action` applies.
    public struct Rule: Sendable, Hashable {
        public var name: String
        public var location: SourceLocation
        public var action: Action
        public var expression: PolicyExpression?
        public var message: String?
        public var messageExpression: PolicyExpression?
        public var review: Review?
        public var mask: Mask?
        /// For Mutate rules: the JSON Patch operations to apply at admission.
        public var patch: [PatchOperation]

        public init(
            name: String, location: SourceLocation, action: Action, expression: PolicyExpression? = nil,
            message: String? = nil, messageExpression: PolicyExpression? = nil, review: Review? = nil,
            mask: Mask? = nil,
            patch: [PatchOperation] = []
        ) {
            self.name = name
            self.location = location
            self.action = action
            self.expression = expression
            self.message = message
            self.messageExpression = messageExpression
            self.review = review
            self.mask = mask
            self.patch = patch
        }
    }

    /// What a rule does when it matches. Deny beats Review beats Allow; Mask, Warn and Mutate stack.
    public enum Action: String, Sendable, Hashable, CaseIterable {
        case allow = "Allow"
        case deny = "Deny"
        case review = "Review"
        case mask = "Mask"
        case warn = "Warn"
        /// Changes the object at admission (the webhook's `/mutate`), through JSON Patch.
        case mutate = "Mutate"
    }

    /// One JSON Patch (RFC 6902) operation of a Mutate rule. Applying it is idempotent: the
    /// webhook skips an operation whose result is already in place, so reinvocation is safe.
    public struct PatchOperation: Sendable, Hashable {
        public enum Operation: String, Sendable, Hashable, CaseIterable {
            case add
            case replace
            case remove
        }

        public var operation: Operation
        /// A JSON Pointer (RFC 6901), e.g. `/metadata/labels/team`.
        public var path: JSONPointer
        /// A literal value (from YAML), or nil.
        public var value: CELValue?
        /// A CEL expression computing the value, evaluated per request.
        public var valueExpression: PolicyExpression?

        public init(
            operation: Operation, path: JSONPointer, value: CELValue? = nil, valueExpression: PolicyExpression? = nil
        ) {
            self.operation = operation
            self.path = path
            self.value = value
            self.valueExpression = valueExpression
        }
    }

    /// Who may approve a held request, and for how long an approval lasts.
    public struct Review: Sendable, Hashable {
        public var approverUsers: [Glob]
        public var approverGroups: [Glob]
        /// How long an approval lets the same request through (seconds).
        public var grantFor: Duration

        public init(approverUsers: [Glob] = [], approverGroups: [Glob] = [], grantFor: Duration = .seconds(3600)) {
            self.approverUsers = approverUsers
            self.approverGroups = approverGroups
            self.grantFor = grantFor
        }
    }

    /// What a Mask rule hides.
    public struct Mask: Sendable, Hashable {
        /// JSON field paths with `*` wildcards, e.g. `data.*`, `spec.containers[*].env[*].value`.
        public var fields: [FieldPath]
        /// Regular expressions over stream output (exec stdout/stderr), e.g. card numbers.
        public var patterns: [String]
        /// SQL result columns (by name) for database sessions.
        public var columns: [String]
        /// What replaces a masked value.
        public var replacement: String

        public init(
            fields: [FieldPath] = [], patterns: [String] = [], columns: [String] = [], replacement: String = "****"
        ) {
            self.fields = fields
            self.patterns = patterns
            self.columns = columns
            self.replacement = replacement
        }
    }
}

/// A subject a policy matches: a user, a group or a ServiceAccount, each with globs.
public enum SubjectPattern: Sendable, Hashable {
    case user(Glob)
    case group(Glob)
    /// `namespace/name` globs for `system:serviceaccount:<namespace>:<name>`.
    case serviceAccount(namespace: Glob, name: Glob)

    /// Whether the caller is this subject.
    public func matches(user: String, groups: [String]) -> Bool {
        switch self {
        case .user(let glob):
            return glob.matches(user)
        case .group(let glob):
            return groups.contains { glob.matches($0) }
        case .serviceAccount(let namespace, let name):
            // Most callers are people: a cheap check before splitting the name.
            guard user.hasPrefix("system:serviceaccount:") else { return false }
            // The four ':'-separated parts, found in place rather than split into an array.
            guard let first = user.firstIndex(of: ":"),
                let second = user[user.index(after: first)...].firstIndex(of: ":"),
                let third = user[user.index(after: second)...].firstIndex(of: ":"),
                user[user.index(after: third)...].firstIndex(of: ":") == nil,
                user[..<first] == "system", user[user.index(after: first)..<second] == "serviceaccount"
            else { return false }
            return namespace.matches(String(user[user.index(after: second)..<third]))
                && name.matches(String(user[user.index(after: third)...]))
        }
    }
}
