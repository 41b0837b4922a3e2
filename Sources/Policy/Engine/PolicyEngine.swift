import Foundation

/// Evaluates requests against a compiled set of policies.
///
/// Per request: the index yields the policies that can apply (by resource and verb); each is
/// matched on resources, verbs, operations, namespaces and subjects, then its `matchConditions`;
/// its rules are evaluated in order. Outcomes combine as Deny over Review over Allow; Mask and
/// Warn stack. A policy's `mode` decides whether its outcome is enforced, turned into a warning,
/// or only recorded. When no rule decides, ``Options/defaultOutcome`` applies.
///
/// Immutable and `Sendable`: one engine serves every request concurrently; a reload builds a new
/// engine (see ``PolicyStore``).
public struct PolicyEngine: Sendable {
    public struct Options: Sendable, Hashable {
        /// The outcome when no rule decides.
        public var defaultOutcome: Decision.Outcome
        /// CEL cost budget of one expression.
        public var expressionCostLimit: UInt64
        /// CEL cost budget of all expressions evaluated for one request.
        public var requestCostLimit: UInt64
        /// Where the labels of a request's namespace come from when the request does not carry
        /// them; nil: they stay unknown.
        public var namespaces: NamespaceDirectory?

        public init(
            defaultOutcome: Decision.Outcome = .allow, expressionCostLimit: UInt64 = CELCost.defaultLimit,
            requestCostLimit: UInt64 = 10 * CELCost.defaultLimit, namespaces: NamespaceDirectory? = nil
        ) {
            self.defaultOutcome = defaultOutcome
            self.expressionCostLimit = expressionCostLimit
            self.requestCostLimit = requestCostLimit
            self.namespaces = namespaces
        }
    }

    public let policies: [CompiledPolicy]
    public let options: Options
    private let index: PolicyIndex
    private let matchChecks: MatchChecks

    public init(policies: [CompiledPolicy], options: Options = Options()) {
        self.policies = policies
        self.options = options
        matchChecks = MatchChecks(policies.map(\.policy))
        self.index = PolicyIndex(policies.map(\.policy), lists: matchChecks.lists)
        sharedIDs = Self.denseRange(of: policies)
    }

    /// The ids of the policies' shared expressions, when they are dense enough to index an array
    /// per request (they are when the policies were compiled together); empty otherwise, and the
    /// values go to a dictionary.
    private let sharedIDs: Range<Int>

    private static func denseRange(of policies: [CompiledPolicy]) -> Range<Int> {
        var ids = Set<Int>()
        for policy in policies {
            let expressions =
                policy.variables.map(\.expression) + policy.matchConditions.map(\.expression)
                + policy.rules.flatMap { [$0.expression, $0.messageExpression].compactMap { $0 } }
            for expression in expressions { if let shared = expression.shared { ids.insert(shared.id) } }
        }
        guard let lowest = ids.min(), let highest = ids.max(), highest - lowest < 4 * ids.count + 64 else {
            return 0..<0
        }
        return lowest..<(highest + 1)
    }

    /// Loads, validates and compiles policy files in one step.
    public init(paths: [String], options: Options = Options()) throws(PolicyLoadErrors) {
        self.init(policies: try PolicyCompiler.compile(try PolicyLoader.load(paths: paths)), options: options)
    }

    public func evaluate(_ request: RequestAttributes, now: Date = Date()) -> Decision {
        if needsLabels(request) { return evaluateLabelled(labelled(request), now: now) }
        return evaluateLabelled(request, now: now)
    }

    /// Whether the namespace's labels should be looked up in ``Options/namespaces``.
    func needsLabels(_ request: RequestAttributes) -> Bool {
        request.namespaceLabels == nil && !request.namespace.isEmpty && options.namespaces != nil
    }

    /// `request` with its namespace's labels from ``Options/namespaces``.
    func labelled(_ request: RequestAttributes) -> RequestAttributes {
        var labelled = request
        labelled.namespaceLabels = options.namespaces?.labels(of: request.namespace)
        return labelled
    }

    private func evaluateLabelled(_ request: RequestAttributes, now: Date) -> Decision {
        let (candidates, kinds) = index.candidates(
            group: request.group, resource: request.resource, subresource: request.subresource, verb: request.verb
        ).candidates(for: request)
        var evaluation = Evaluation(now: now, options: options, sharedIDs: sharedIDs, kinds: kinds)
        evaluation.apply(candidates, of: policies, lists: matchChecks.lists, to: request)
        return evaluation.decision(for: request)
    }
}

/// The state of one request's evaluation. The request itself is passed to each method rather
/// than stored: a stored copy retained every field of it, and the optimizer copied it again on
/// its way in. Noncopyable, as one evaluation belongs to one request.
private struct Evaluation: ~Copyable {
    let options: PolicyEngine.Options
    private var bindings: RequestBindings
    private var costSpent: UInt64 = 0
    private var shared: SharedValues
    /// The answers of the match block parts checked so far.
    private var matchAnswers = MatchAnswers()
    /// The last `variables` record built, and the identity of the declarations it holds: the
    /// same declarations give the same record, so policies that copy them share it.
    private var lastRecord: VariablesRecord?
    /// CEL frame slots, allocated once per request rather than once per expression.
    private var scratchSlots: [CELValue?] = []

    private var results: [Decision.RuleResult] = []
    private var denial: (Decision.RuleReference, String)?
    private var review: (Decision.RuleReference, String, AccessPolicy.Review)?
    private var allowed: Decision.RuleReference?
    private var warnings: [String] = []
    private var masks: [Decision.Mask] = []
    private var mutations: [Decision.Mutation] = []

    /// `kinds`: the answers of the candidates' resource, verb and operation checks that the index
    /// knows already.
    init(now: Date, options: PolicyEngine.Options, sharedIDs: Range<Int>, kinds: CheckAnswers = CheckAnswers()) {
        self.options = options
        shared = SharedValues(ids: sharedIDs)
        bindings = RequestBindings(now: now)
        matchAnswers.kinds = kinds
    }

    /// Applies the candidate policies (positions in `policies` and `lists`) in order. The loop
    /// runs here, on the evaluation in place: a loop in the caller copied the whole struct for
    /// each candidate.
    mutating func apply(
        _ candidates: [Int], of policies: [CompiledPolicy], lists: [MatchChecks.Lists], to request: RequestAttributes
    ) {
        // A result per rule of each candidate that matches (one more when a policy fails): an
        // upper bound in the usual case, reserved once rather than grown by doubling.
        let resultCount = candidates.reduce(0) { $0 + policies[$1].rules.count }
        if resultCount > 0 { results.reserveCapacity(resultCount) }
        for position in candidates {
            // Most candidates that do not match fail on a part of their match block (resources
            // and verbs, namespaces, subjects) that an earlier candidate shares and already
            // failed: ruled out here without reading the policy.
            if ruledOut(by: lists[position], request) { continue }
            apply(policies[position], lists: lists[position], to: request)
        }
    }

    /// Whether a policy with these match block parts cannot match, by the answers known so far.
    func ruledOut(by lists: MatchChecks.Lists, _ request: RequestAttributes) -> Bool {
        if matchAnswers.kinds[lists.kinds] == false { return true }
        if lists.namespaces != MatchChecks.Lists.none,
            request.namespace.isEmpty || matchAnswers.namespaces[lists.namespaces] == false
        {
            return true
        }
        return matchAnswers.subjects[lists.subjects] == false
    }

    /// Applies one candidate policy; `lists` number the parts of its match block (see
    /// `MatchChecks`), whose answers are kept for the request.
    mutating func apply(_ compiled: CompiledPolicy, lists: MatchChecks.Lists, to request: RequestAttributes) {
        // Read fields of the shared policy rather than copying it out.
        let mode = compiled.mode
        let result = compiled.policy.match.evaluate(request, lists: lists, answers: &matchAnswers)
        switch result {
        case .noMatch:
            return
        case .unknownNamespaceLabels:
            fail(
                compiled, at: "match",
                because: "the namespace's labels are unknown, so namespaceSelector cannot be checked")
            return
        case .match:
            break
        }
        bindings.variables = nil
        if compiled.usesVariables, !computeVariables(of: compiled, for: request) { return }
        for condition in compiled.matchConditions {
            switch run(condition.expression, for: request) {
            case .success(.bool(true)): continue
            case .success:
                skip(compiled)
                return
            case .failure(let error):
                fail(compiled, at: "matchConditions.\(condition.name)", because: error.message)
                return
            }
        }
        for rule in compiled.rules {
            var status: Decision.RuleResult.Status
            var detail = ""
            if let expression = rule.expression {
                switch run(expression, for: request) {
                case .success(.bool(true)): status = .matched
                case .success(.bool(false)): status = .notMatched
                case .success(let other):
                    status = .error
                    detail = "expression gave \(other.celType), not bool"
                case .failure(let error):
                    status = .error
                    detail = error.message
                }
            } else {
                status = .matched
            }
            if status == .matched, rule.action == .mutate, mode == .enforce {
                switch resolvePatch(rule, for: request) {
                case .success(let mutation):
                    mutations.append(mutation)
                case .failure(let error):
                    status = .error
                    detail = "patch value: \(error.message)"
                }
            }
            switch status {
            case .matched:
                let (message, isDefault) = message(for: rule, request)
                results.append(
                    .init(
                        rule: rule.reference, action: rule.action, mode: mode, status: .matched,
                        message: message))
                take(
                    rule.action, of: rule, reference: rule.reference, message: message, mode: mode,
                    notEnforced: rule.notEnforcedSuffix, warning: isDefault ? rule.defaultWarning : nil)
            case .error:
                results.append(
                    .init(
                        rule: rule.reference, action: rule.action, mode: mode, status: .error,
                        message: detail))
                if compiled.failurePolicy == .fail {
                    take(.deny, reference: rule.reference, message: rule.failureMessage(detail), mode: mode)
                }
            default:
                results.append(.init(rule: rule.reference, action: rule.action, mode: mode, status: status))
            }
        }
    }

    /// Sets `bindings.variables` to the policy's `variables` record; false (the policy failed)
    /// when a variable cannot be evaluated. Each variable is run, shared or not, so that its cost
    /// is charged; the record itself is reused when the last one built had the same declarations.
    private mutating func computeVariables(of compiled: CompiledPolicy, for request: RequestAttributes) -> Bool {
        let record = compiled.variablesRecord.map(ObjectIdentifier.init)
        let reusesRecord = record != nil && lastRecord?.declarations == record
        if reusesRecord, !compiled.readsEarlierVariables, let lastRecord, lastRecord.fits(in: costLimits) {
            // Each variable would give its shared value and charge its cost again: charged at once.
            costSpent += lastRecord.cost
            bindings.variables = lastRecord.value
            return true
        }
        // Values are collected when the record is built, or when a variable reads earlier ones.
        let collects = !reusesRecord || compiled.readsEarlierVariables
        // In declaration order; as a record, a repeated name keeps its last value.
        var values: [CELValue] = []
        if collects { values.reserveCapacity(compiled.variables.count) }
        var cost: UInt64 = 0
        var largestCost: UInt64 = 0
        for (position, variable) in compiled.variables.enumerated() {
            let before = costSpent
            defer {
                cost += costSpent - before
                largestCost = max(largestCost, costSpent - before)
            }
            if compiled.variableReadsVariables[position] {
                let earlier = zip(compiled.variables.prefix(position).map(\.name), values)
                bindings.variables = .map(CELMap(Dictionary(earlier, uniquingKeysWith: { $1 })))
            }
            switch run(variable.expression, for: request) {
            case .success(let value): if collects { values.append(value) }
            case .failure(let error):
                fail(compiled, at: "variables.\(variable.name)", because: error.message)
                return false
            }
        }
        if reusesRecord, let lastRecord {
            bindings.variables = lastRecord.value
            return true
        }
        let value = CELValue.map(
            CELMap(recordKeys: compiled.variableRecordKeys, values: compiled.variableRecordOrder.map { values[$0] }))
        bindings.variables = value
        if let record {
            lastRecord = VariablesRecord(declarations: record, value: value, cost: cost, largestCost: largestCost)
        }
        return true
    }

    /// The budgets the next expressions are charged against: each expression's own limit, and
    /// what is left of the request's.
    private var costLimits: (expression: UInt64, remaining: UInt64) {
        (options.expressionCostLimit, options.requestCostLimit > costSpent ? options.requestCostLimit - costSpent : 0)
    }

    /// Takes an action into the decision: a matched rule's (`rule`, whose review or mask spec
    /// it reads), or the denial of a policy that failed. `notEnforced` is the rule's precomputed
    /// `notEnforcedSuffix`, when it has one, and `warning` the message with it already appended
    /// (the rule's `defaultWarning`, when the message is its default). The rule is passed by
    /// reference: its `AccessPolicy.Rule` is a large value, copied field by field when passed on
    /// its own.
    private mutating func take(
        _ action: AccessPolicy.Action, of rule: CompiledPolicy.CompiledRule? = nil,
        reference: Decision.RuleReference, message: String, mode: AccessPolicy.Mode, notEnforced: String? = nil,
        warning: String? = nil
    ) {
        switch (mode, action) {
        case (.audit, _):
            return
        case (.warn, .deny), (.warn, .review), (.warn, .warn), (.enforce, .warn):
            guard mode == .warn && action != .warn else { return warnings.append(message) }
            warnings.append(
                warning ?? message + (notEnforced ?? CompiledPolicy.CompiledRule.notEnforcedSuffix(reference)))
        case (.warn, .mask):
            warnings.append("\(reference) would mask this response (mode Warn)")
        case (.warn, .mutate):
            warnings.append("\(reference) would change this object (mode Warn)")
        case (.enforce, .mutate):
            return  // resolved into `mutations` before the rule is taken
        case (_, .allow):
            if allowed == nil { allowed = reference }
        case (.enforce, .deny):
            if denial == nil { denial = (reference, message) }
        case (.enforce, .review):
            if review == nil, let spec = rule?.rule.review { review = (reference, message, spec) }
        case (.enforce, .mask):
            if let spec = rule?.rule.mask { masks.append(.init(rule: reference, spec: spec)) }
        }
    }

    private mutating func resolvePatch(
        _ rule: CompiledPolicy.CompiledRule, for request: RequestAttributes
    ) -> Result<Decision.Mutation, CELError> {
        var operations: [Decision.Mutation.Operation] = []
        for (operation, program) in zip(rule.rule.patch, rule.patchValues) {
            var value = operation.value
            if let program {
                switch run(program, for: request) {
                case .success(let computed): value = computed
                case .failure(let error): return .failure(error)
                }
            }
            operations.append(.init(operation: operation.operation, path: operation.path, value: value))
        }
        return .success(Decision.Mutation(rule: rule.reference, operations: operations))
    }

    /// A matched rule's message, and whether it is the rule's `defaultMessage`.
    private mutating func message(
        for rule: CompiledPolicy.CompiledRule, _ request: RequestAttributes
    ) -> (text: String, isDefault: Bool) {
        if let program = rule.messageExpression, case .success(.string(let text)) = run(program, for: request),
            !text.isEmpty
        {
            return (text, false)
        }
        return (rule.defaultMessage, true)
    }

    private mutating func skip(_ compiled: CompiledPolicy) {
        for rule in compiled.rules {
            results.append(
                .init(rule: rule.reference, action: rule.action, mode: compiled.mode, status: .skipped))
        }
    }

    private mutating func fail(_ compiled: CompiledPolicy, at part: String, because reason: String) {
        let reference = Decision.RuleReference(policy: compiled.policy.name, rule: part)
        results.append(
            .init(rule: reference, action: .deny, mode: compiled.mode, status: .error, message: reason))
        guard compiled.failurePolicy == .fail else { return skip(compiled) }
        let message =
            "policy \(compiled.policy.name) could not be evaluated (\(part): \(reason)); denied because its failurePolicy is Fail"
        take(.deny, reference: reference, message: message, mode: compiled.mode)
    }

    /// Evaluates a shared expression once per request. A repeat within the budget gives the same
    /// value and charges the same cost as evaluating again would (expressions are pure and their
    /// cost does not depend on the limit until it is passed); beyond the budget it is evaluated
    /// again, to fail exactly as it would have.
    private mutating func run(
        _ expression: CompiledExpression, for request: RequestAttributes
    ) -> Result<CELValue, CELError> {
        guard let identity = expression.shared else { return run(expression.program, for: request) }
        if let earlier = shared.result(identity, id: expression.sharedID), earlier.cost <= costLimit {
            costSpent += earlier.cost
            return .success(earlier.value)
        }
        let before = costSpent
        let result = run(expression.program, for: request)
        if case .success(let value) = result {
            shared.store(identity, id: expression.sharedID, (value, costSpent - before))
        }
        return result
    }

    /// The budget of the next expression: its own limit, or what is left of the request's.
    private var costLimit: UInt64 { min(costLimits.expression, costLimits.remaining) }

    private mutating func run(_ program: CELProgram, for request: RequestAttributes) -> Result<CELValue, CELError> {
        // The slots move out for the call: the closure below needs `self` too.
        var slots: [CELValue?] = []
        swap(&slots, &scratchSlots)
        defer { swap(&slots, &scratchSlots) }
        do {
            let (value, cost) = try program.evaluateWithCost(
                costLimit: costLimit, scratch: &slots, inputs: { bindings.value(of: $0, for: request) })
            costSpent += cost
            return .success(value)
        } catch {
            if error.kind == .costLimitExceeded { costSpent = options.requestCostLimit }
            return .failure(error)
        }
    }

    /// The decision, which takes the results and warnings over: the evaluation ends here.
    consuming func decision(for request: RequestAttributes) -> Decision {
        if let (reference, message) = denial {
            return Decision(
                outcome: .deny, decidedBy: reference, message: message, warnings: warnings, masks: masks,
                mutations: mutations, results: results)
        }
        if let (reference, message, spec) = review {
            return Decision(
                outcome: .review, decidedBy: reference, message: message, warnings: warnings, masks: masks,
                review: .init(rule: reference, spec: spec), mutations: mutations, results: results)
        }
        if let allowed {
            return Decision(
                outcome: .allow, decidedBy: allowed, warnings: warnings, masks: masks, mutations: mutations,
                results: results)
        }
        // The request's fields are read in place: a copy of the request would retain each of them.
        let message =
            options.defaultOutcome == .allow
            ? "" : "no policy allows \(request.verb) on \(request.resourceDescription)"
        return Decision(
            outcome: options.defaultOutcome, message: message, warnings: warnings, masks: masks,
            mutations: mutations, results: results)
    }
}

/// A `variables` record built for one request, with what its variables cost: policies that
/// declare the same variables share it.
private struct VariablesRecord {
    /// The identity of the declarations (`CompiledPolicy.variablesRecord`).
    let declarations: ObjectIdentifier
    let value: CELValue
    /// The cost of all the variables, and of the costliest.
    let cost: UInt64
    let largestCost: UInt64

    /// Whether evaluating the variables again, one after the other, would pass every check of
    /// the budget: then each gives its shared value, and charging their total is the same.
    /// Otherwise they are run one by one, to fail where they would.
    func fits(in limits: (expression: UInt64, remaining: UInt64)) -> Bool {
        largestCost <= limits.expression && cost <= limits.remaining
    }
}

/// The value and cost of each shared expression evaluated so far for one request: by id within
/// `ids` (the table allocated at the first), by identity otherwise. Apart from the evaluation's
/// other state, so that looking a value up does not copy the whole evaluation.
private struct SharedValues {
    let ids: Range<Int>
    /// By id within `ids`: the position in `values` plus one, 0 when not evaluated yet. Plain
    /// integers, so that making and dropping the table for a few hundred ids is a fill and a
    /// free, not a pass over optional values.
    private var positions: [Int32] = []
    private var values: [(value: CELValue, cost: UInt64)] = []
    private var byIdentity: [ObjectIdentifier: (value: CELValue, cost: UInt64)] = [:]

    init(ids: Range<Int>) { self.ids = ids }

    /// The value kept for `shared`, whose id is `id`.
    func result(_ shared: SharedExpression, id: Int) -> (value: CELValue, cost: UInt64)? {
        guard ids.contains(id) else { return byIdentity[ObjectIdentifier(shared)] }
        let id = id - ids.lowerBound
        guard id < positions.count, positions[id] > 0 else { return nil }
        return values[Int(positions[id]) - 1]
    }

    mutating func store(_ shared: SharedExpression, id: Int, _ result: (value: CELValue, cost: UInt64)) {
        guard ids.contains(id) else {
            byIdentity[ObjectIdentifier(shared)] = result
            return
        }
        if positions.isEmpty {
            positions = Array(repeating: 0, count: ids.count)
            // A request meets a few dozen distinct expressions at most: one allocation, not a
            // doubling per power of two.
            values.reserveCapacity(min(ids.count, 32))
        }
        let id = id - ids.lowerBound
        if positions[id] > 0 {
            values[Int(positions[id]) - 1] = result
        } else {
            values.append(result)
            positions[id] = Int32(values.count)
        }
    }
}

extension AccessPolicy.Match {
    enum Result { case match, noMatch, unknownNamespaceLabels }

    /// The non-CEL part of matching. Every check must pass, so their order changes only the
    /// time: the cheap and selective ones first, subjects (globs over the user and each group)
    /// last; the namespace selector stays last, as labels unknown is not a plain mismatch.
    func evaluate(_ request: RequestAttributes) -> Result {
        var answers = MatchAnswers()
        return evaluate(request, lists: .unnumbered, answers: &answers)
    }

    /// The same, with the numbers of the match block's parts (see `MatchChecks`) whose answers
    /// are kept in `answers`, so that one request checks each distinct part once.
    func evaluate(
        _ request: RequestAttributes, lists: MatchChecks.Lists, answers: inout MatchAnswers
    ) -> Result {
        let kindMatched = answers.kinds[lists.kinds] ?? kindsMatch(request)
        answers.kinds[lists.kinds] = kindMatched
        if !kindMatched { return .noMatch }
        if !namespaces.isEmpty {
            guard !request.namespace.isEmpty else { return .noMatch }
            let matched = answers.namespaces[lists.namespaces] ?? namespacesMatch(request.namespace)
            answers.namespaces[lists.namespaces] = matched
            if !matched { return .noMatch }
        }
        if !subjects.isEmpty {
            let matched = answers.subjects[lists.subjects] ?? subjectsMatch(request.user)
            answers.subjects[lists.subjects] = matched
            if !matched { return .noMatch }
        }
        if let namespaceSelector {
            guard !request.namespace.isEmpty else { return .noMatch }
            guard let labels = request.namespaceLabels else { return .unknownNamespaceLabels }
            if !namespaceSelector.matches(labels) { return .noMatch }
        }
        return .match
    }

    /// Whether the request's resource, verb and operation are among those selected.
    func kindsMatch(_ request: RequestAttributes) -> Bool {
        guard
            kindsMatch(
                group: request.group, resource: request.resource, subresource: request.subresource, verb: request.verb)
        else { return false }
        if !operations.isEmpty {
            guard let operation = request.operation, operations.contains(operation) else { return false }
        }
        return true
    }

    /// Whether a request with this resource and verb is among those selected, whatever its operation.
    func kindsMatch(group: String, resource: String, subresource: String, verb: String) -> Bool {
        if !resources.isEmpty,
            !resources.contains(where: { $0.matches(group: group, resource: resource, subresource: subresource) })
        {
            return false
        }
        return verbs.isEmpty || verbs.contains(where: { $0.matches(verb) })
    }

    /// Whether one of the namespace globs matches `namespace`.
    func namespacesMatch(_ namespace: String) -> Bool { namespaces.contains { $0.matches(namespace) } }

    /// Whether the caller is one of the subjects.
    func subjectsMatch(_ user: RequestAttributes.UserInfo) -> Bool {
        subjects.contains { $0.matches(user: user.name, groups: user.groups) }
    }
}
