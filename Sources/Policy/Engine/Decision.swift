/// What the policies decided about one request, with the evidence: every rule that was looked at
/// and what it gave, and which policy and rule settled the outcome.
public struct Decision: Sendable, Hashable {
    public enum Outcome: String, Sendable, Hashable {
        case allow = "Allow"
        case deny = "Deny"
        case review = "Review"
    }

    /// The enforced outcome (after each policy's mode: a `Warn` policy's denial is an allow with a
    /// warning, an `Audit` policy's is only recorded).
    public var outcome: Outcome
    /// The rule that settled the outcome; nil when no rule decided (the default applied).
    public var decidedBy: RuleReference?
    /// The message for the caller (the deciding rule's message).
    public var message: String
    /// Warnings for the caller: Warn rules and denials of `Warn`-mode policies.
    public var warnings: [String]
    /// Masks that apply to the response or the stream output (they stack).
    public var masks: [Mask]
    /// For a Review outcome: who may approve and for how long.
    public var review: ReviewRequirement?
    /// JSON Patch operations of matched Mutate rules, values resolved (they stack, in order). They
    /// are computed whatever the outcome: admission mutates first and validates after.
    public var mutations: [Mutation]
    /// Every rule's result, in policy and rule order.
    public var results: [RuleResult]

    public init(
        outcome: Outcome, decidedBy: RuleReference? = nil, message: String = "", warnings: [String] = [],
        masks: [Mask] = [],
        review: ReviewRequirement? = nil, mutations: [Mutation] = [], results: [RuleResult] = []
    ) {
        self.outcome = outcome
        self.decidedBy = decidedBy
        self.message = message
        self.warnings = warnings
        self.masks = masks
        self.review = review
        self.mutations = mutations
        self.results = results
    }

    public struct RuleReference: Sendable, Hashable, CustomStringConvertible {
        public var policy: String
        public var rule: String

        public init(policy: String, rule: String) {
            self.policy = policy
            self.rule = rule
        }

        public var description: String { "\(policy)/\(rule)" }
    }

    public struct Mask: Sendable, Hashable {
        public var rule: RuleReference
        public var spec: AccessPolicy.Mask

        public init(rule: RuleReference, spec: AccessPolicy.Mask) {
            self.rule = rule
            self.spec = spec
        }
    }

    /// One Mutate rule's operations with their values computed for this request.
    public struct Mutation: Sendable, Hashable {
        public var rule: RuleReference
        public var operations: [Operation]

        public struct Operation: Sendable, Hashable {
            public var operation: AccessPolicy.PatchOperation.Operation
            public var path: JSONPointer
            /// nil for remove.
            public var value: CELValue?

            public init(operation: AccessPolicy.PatchOperation.Operation, path: JSONPointer, value: CELValue?) {
                self.operation = operation
                self.path = path
                self.value = value
            }
        }
    }

    public struct ReviewRequirement: Sendable, Hashable {
        public var rule: RuleReference
        public var spec: AccessPolicy.Review
    }

    /// One rule's result for this request.
    public struct RuleResult: Sendable, Hashable {
        public enum Status: String, Sendable, Hashable {
            /// The expression was true (or absent): the action applies.
            case matched
            /// The expression was false.
            case notMatched
            /// The policy did not apply (match, matchConditions), so the rule was not evaluated.
            case skipped
            /// Evaluation failed; `message` says why. Under `failurePolicy: Fail` this denies.
            case error
        }

        public var rule: RuleReference
        public var action: AccessPolicy.Action
        public var mode: AccessPolicy.Mode
        public var status: Status
        public var message: String

        public init(
            rule: RuleReference, action: AccessPolicy.Action, mode: AccessPolicy.Mode, status: Status,
            message: String = ""
        ) {
            self.rule = rule
            self.action = action
            self.mode = mode
            self.status = status
            self.message = message
        }
    }
}
