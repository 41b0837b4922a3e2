import Synchronization

/// One policy with every expression compiled, ready to evaluate many times from many threads.
///
/// A class, so that handing a candidate policy to the evaluation of a request costs one retain
/// rather than a copy of every field.
///
/// What every request that meets the policy reads comes first (stored properties are laid out in
/// declaration order): the rules and the mode share the object's first cache line rather than
/// sit behind the whole `AccessPolicy`.
public final class CompiledPolicy: Sendable {
    let rules: [CompiledRule]
    let variables: [(name: String, expression: CompiledExpression)]
    let matchConditions: [(name: String, expression: CompiledExpression)]
    /// Whether any rule, message or condition reads `variables` (then they are computed).
    let usesVariables: Bool
    /// `policy.mode` and `policy.failurePolicy`, next to the rules.
    let mode: AccessPolicy.Mode
    let failurePolicy: AccessPolicy.FailurePolicy
    public let policy: AccessPolicy
    /// Positions in `variables` in the order of their names (the last of a repeated name): the
    /// order `CELMap(_:)` gives a dictionary, computed once rather than sorted per request.
    let variableRecordOrder: [Int]
    /// The names at `variableRecordOrder`, as the keys of the `variables` record.
    let variableRecordKeys: [CELValue]
    /// For each variable, whether its expression reads the variables declared before it.
    let variableReadsVariables: [Bool]
    /// Whether any variable reads the ones declared before it.
    let readsEarlierVariables: Bool
    /// The same for every policy compiled with the same variable declarations, whose `variables`
    /// record is then the same for a request.
    let variablesRecord: SharedExpression?

    init(
        policy: AccessPolicy, matchConditions: [(name: String, expression: CompiledExpression)],
        variables: [(name: String, expression: CompiledExpression)], rules: [CompiledRule], usesVariables: Bool,
        variablesRecord: SharedExpression? = nil
    ) {
        self.policy = policy
        mode = policy.mode
        failurePolicy = policy.failurePolicy
        self.variablesRecord = variablesRecord
        self.matchConditions = matchConditions
        self.variables = variables
        self.rules = rules
        self.usesVariables = usesVariables
        var lastPosition: [String: Int] = [:]
        for (position, variable) in variables.enumerated() { lastPosition[variable.name] = position }
        variableRecordOrder = lastPosition.sorted { $0.key < $1.key }.map(\.value)
        variableRecordKeys = variableRecordOrder.map { .string(variables[$0].name) }
        variableReadsVariables = variables.map { $0.expression.program.references("variables") }
        readsEarlierVariables = variableReadsVariables.contains(true)
    }

    /// A class for the same reason as the policy, with what every evaluation reads first.
    final class CompiledRule: Sendable {
        let expression: CompiledExpression?
        /// `rule.action`.
        let action: AccessPolicy.Action
        let reference: Decision.RuleReference
        let messageExpression: CompiledExpression?
        /// The message when neither `message` nor `messageExpression` gives one.
        let defaultMessage: String
        /// The compiled `valueExpression` of each patch operation (nil for literals and removes).
        let patchValues: [CELProgram?]
        /// What follows the message of a Deny, Review or Warn in a policy of mode Warn, made once
        /// rather than formatted for every request it matches.
        let notEnforcedSuffix: String
        /// `defaultMessage` followed by `notEnforcedSuffix`: the warning of a Deny or Review in a
        /// policy of mode Warn whose message is not computed, made once rather than per request.
        let defaultWarning: String
        /// What the message of a failed evaluation under `failurePolicy: Fail` says before the
        /// reason (`failureMessage(_:)`), made once.
        private let failurePrefix: String
        let rule: AccessPolicy.Rule

        static func notEnforcedSuffix(_ reference: Decision.RuleReference) -> String {
            " (\(reference), not enforced: mode Warn)"
        }

        /// The message of a denial because the rule could not be evaluated (`reason`) and its
        /// policy's `failurePolicy` is Fail.
        func failureMessage(_ reason: String) -> String {
            failurePrefix + reason + "); denied because its failurePolicy is Fail"
        }

        init(
            rule: AccessPolicy.Rule, reference: Decision.RuleReference, expression: CompiledExpression?,
            messageExpression: CompiledExpression?, patchValues: [CELProgram?]
        ) {
            self.rule = rule
            action = rule.action
            self.reference = reference
            self.expression = expression
            self.messageExpression = messageExpression
            self.patchValues = patchValues
            defaultMessage = rule.message ?? "\(rule.action.rawValue) by \(reference)"
            notEnforcedSuffix = Self.notEnforcedSuffix(reference)
            defaultWarning = defaultMessage + notEnforcedSuffix
            failurePrefix = "policy \(reference) could not be evaluated ("
        }
    }
}

/// A compiled expression, marked when policies compiled together can share its value. A class,
/// so that the engine's loops over a policy's expressions copy one reference each.
final class CompiledExpression: Sendable {
    /// `shared?.id`, or -1: read for every expression of every matching policy, so kept first in
    /// the object rather than behind another reference.
    let sharedID: Int
    /// Policies compiled together often repeat an expression (a copied variable or rule), and the
    /// engine evaluates each such source once per request. An expression that reads `variables`
    /// shares its identity only with policies that declare the same variables (names and sources,
    /// in order), whose values are then the same: its value too depends on the request alone.
    let shared: SharedExpression?
    let program: CELProgram

    init(program: CELProgram, shared: SharedExpression?) {
        sharedID = shared?.id ?? -1
        self.program = program
        self.shared = shared
    }
}

/// The shared identities handed out by one `PolicyCompiler.compile` call: one per source, and
/// for a source that reads `variables`, one per list of variable declarations it reads.
struct SharedExpressions {
    /// One variable declaration: a name and the source of its expression.
    struct Variable: Hashable {
        let name: String
        let source: String

        init(_ name: String, _ source: String) {
            self.name = name
            self.source = source
        }
    }

    private struct Key: Hashable {
        let source: String
        /// The declared variables, when the expression reads them.
        let variables: [Variable]?
    }

    private var identities: [Key: SharedExpression] = [:]
    private var records: [[Variable]: SharedExpression] = [:]

    /// The identity of the `variables` record of policies declaring `variables` in this order.
    mutating func identity(ofRecord variables: [Variable]) -> SharedExpression {
        if let existing = records[variables] { return existing }
        let new = SharedExpression()
        records[variables] = new
        return new
    }

    /// The identity of `source`, evaluated with `variables` declared in this order (nil when it
    /// does not read them).
    mutating func identity(of source: String, reading variables: [Variable]?) -> SharedExpression {
        let key = Key(source: source, variables: variables)
        if let existing = identities[key] { return existing }
        let new = SharedExpression()
        identities[key] = new
        return new
    }
}

/// The identity of one expression source among the policies of one `PolicyCompiler.compile`
/// call (one environment, so one meaning), with the variables it reads.
final class SharedExpression: Sendable {
    /// Unique in the process and consecutive within one `compile` call (unless two run at once),
    /// so that an engine can keep a request's shared values in an array rather than a dictionary.
    let id: Int

    private static let nextID = Atomic<Int>(0)

    init() { id = Self.nextID.add(1, ordering: .relaxed).oldValue }
}

/// Compiles loaded policies: every CEL expression is compiled once against the Portcullis
/// environment, with its errors reported at their place in the policy file.
public enum PolicyCompiler {
    public static func compile(
        _ policies: [AccessPolicy], environment: CELEnvironment = .portcullisPolicy
    ) throws(PolicyLoadErrors) -> [CompiledPolicy] {
        var errors: [PolicyLoadError] = []
        var compiled: [CompiledPolicy] = []
        var shared = SharedExpressions()
        for policy in policies {
            if let result = compile(policy, environment: environment, errors: &errors, shared: &shared) {
                compiled.append(result)
            }
        }
        guard errors.isEmpty else { throw PolicyLoadErrors(errors) }
        return compiled
    }

    static func compile(
        _ policy: AccessPolicy, environment base: CELEnvironment, errors: inout [PolicyLoadError],
        shared: inout SharedExpressions
    ) -> CompiledPolicy? {
        let errorCount = errors.count
        // Variables with the same names and sources, in the same order, have the same values for a
        // request: an expression that reads them is shared among the policies that declare them so.
        let declaredVariables = policy.variables.map { SharedExpressions.Variable($0.name, $0.expression.source) }
        func share(_ program: CELProgram) -> CompiledExpression {
            CompiledExpression(
                program: program,
                shared: shared.identity(
                    of: program.source,
                    reading: program.references("variables") ? declaredVariables : nil))
        }
        // Each variable sees the ones declared before it, as in ValidatingAdmissionPolicy, through
        // a closed record so that `variables.typo` is a compile error.
        var variableTypes: [String: CELType] = [:]
        var variables: [(String, CompiledExpression)] = []
        func environment() -> CELEnvironment {
            base.declaring(
                "variables",
                as: .object(CELObjectType(name: "portcullis.Variables", fields: variableTypes, isOpen: false)))
        }
        for variable in policy.variables {
            if let program = compile(variable.expression, in: environment(), errors: &errors) {
                variables.append((variable.name, share(program)))
                variableTypes[variable.name] = program.resultType
            } else {
                variableTypes[variable.name] = .dyn
            }
        }
        let environment = environment()
        var conditions: [(String, CompiledExpression)] = []
        for condition in policy.matchConditions {
            if let program = compile(condition.expression, in: environment, expecting: .bool, errors: &errors) {
                conditions.append((condition.name, share(program)))
            }
        }
        var rules: [CompiledPolicy.CompiledRule] = []
        for rule in policy.rules {
            let expression = rule.expression.flatMap { compile($0, in: environment, expecting: .bool, errors: &errors) }
            let message = rule.messageExpression.flatMap {
                compile($0, in: environment, expecting: .string, errors: &errors)
            }
            let patchValues = rule.patch.map { operation in
                operation.valueExpression.flatMap { compile($0, in: environment, errors: &errors) }
            }
            rules.append(
                .init(
                    rule: rule, reference: .init(policy: policy.name, rule: rule.name),
                    expression: expression.map(share),
                    messageExpression: message.map(share), patchValues: patchValues))
        }
        guard errors.count == errorCount else { return nil }
        let programs =
            conditions.map(\.1.program)
            + rules.flatMap {
                ([$0.expression?.program, $0.messageExpression?.program] + $0.patchValues).compactMap { $0 }
            }
        return CompiledPolicy(
            policy: policy, matchConditions: conditions, variables: variables, rules: rules,
            usesVariables: programs.contains { $0.references("variables") },
            variablesRecord: shared.identity(ofRecord: declaredVariables))
    }

    private static func compile(
        _ expression: PolicyExpression, in environment: CELEnvironment, expecting expected: CELType? = nil,
        errors: inout [PolicyLoadError]
    ) -> CELProgram? {
        do {
            let program = try environment.compile(expression.source)
            if let expected, program.resultType != expected, program.resultType != .dyn {
                errors.append(
                    PolicyLoadError(
                        .celType, at: expression.location,
                        "expression must evaluate to \(expected), but evaluates to \(program.resultType)",
                        hint: expected == .bool ? "compare the value, e.g. x == \"value\" or size(x) > 0" : ""))
                return nil
            }
            return program
        } catch {
            let location = error.location.map { expression.fileLocation(line: $0.line, column: $0.column) }
            errors.append(
                PolicyLoadError(
                    kind(of: error), at: location ?? expression.location, "CEL: \(error.message)",
                    hint: hint(for: error)))
            return nil
        }
    }

    private static func kind(of error: CELError) -> PolicyLoadError.Kind {
        switch error.kind {
        case .syntax, .expressionTooLong, .recursionLimitExceeded: .celSyntax
        case .undeclaredReference: .celUndeclared
        default: .celType
        }
    }

    private static func hint(for error: CELError) -> String {
        switch error.kind {
        case .undeclaredReference:
            "policies can use request, object, oldObject, exec, portForward, sql, variables and now"
        case .syntax: "check quotes, parentheses and operators (&&, ||, ==)"
        default: ""
        }
    }
}
