/// What the compiler knows about names: declared variables, functions and the container.
struct CELDeclarations: Sendable {
    var variables: [String: CELType]
    var functions: CELFunctionRegistry
    /// The namespace for name resolution (cel-spec "Name Resolution"), e.g. `a.b`.
    var container: String?
    /// Reject invalid constant regular expressions at compile time, as Kubernetes does.
    var validatesLiterals: Bool

    var hasQualifiedNames: Bool { variables.keys.contains { $0.contains(".") } }

    /// The names `name` may refer to, most qualified first: in container `a.b`, `x` may be
    /// `a.b.x`, `a.x` or `x`. A leading dot (`rooted`) skips the container.
    func candidateNames(_ name: String, rooted: Bool) -> [String] {
        guard !rooted, let container, !container.isEmpty else { return [name] }
        var candidates: [String] = []
        var prefix = Substring(container)
        while true {
            candidates.append(prefix + "." + name)
            guard let dot = prefix.lastIndex(of: ".") else { break }
            prefix = prefix[..<dot]
        }
        candidates.append(name)
        return candidates
    }
}

/// The declarations an expression is compiled against: variables with their types, the
/// function libraries, and whether to type-check.
///
/// All libraries are enabled: the CEL standard library (cel-spec `doc/langdef.md`, "Standard
/// Definitions"), optional types, the cel-go `strings`, `lists`, `math`, `encoders`, `bindings`,
/// `sets` and two-variable comprehension extensions, and the Kubernetes `lists`, `regex`, `urls`,
/// `ip`, `cidr` and `quantity` libraries.
public struct CELEnvironment: Sendable {
    /// The declared variables and their types.
    public let variables: [String: CELType]
    /// Whether `compile` type-checks (unknown names, provable type errors, the result type).
    public let enableChecker: Bool
    let declarations: CELDeclarations

    /// An environment with `variables`, whose types may be `.dyn` where unknown.
    public init(variables: [String: CELType], enableChecker: Bool = true) {
        self.init(variables: variables, enableChecker: enableChecker, container: nil)
    }

    /// An environment that also resolves names inside `container` (a dotted namespace).
    public init(variables: [String: CELType], enableChecker: Bool, container: String?) {
        self.variables = variables
        self.enableChecker = enableChecker
        declarations = CELDeclarations(
            variables: variables, functions: CELStandardLibrary.registry, container: container,
            validatesLiterals: enableChecker)
    }

    /// The same environment with one more variable declared.
    public func declaring(_ name: String, as type: CELType) -> CELEnvironment {
        var variables = self.variables
        variables[name] = type
        return CELEnvironment(variables: variables, enableChecker: enableChecker, container: declarations.container)
    }

    /// Parses, optionally checks, and plans `source` into a program that can be evaluated many
    /// times, concurrently.
    public func compile(_ source: String) throws(CELError) -> CELProgram {
        let ast = try CELParser.parse(source)
        let sourceMap = CELSourceMap(Array(source.unicodeScalars))
        var resultType = CELType.dyn
        if enableChecker {
            var checker = CELChecker(declarations: declarations, sourceMap: sourceMap)
            resultType = try checker.check(ast)
        }
        var planner = CELPlanner(declarations: declarations, sourceMap: sourceMap)
        let plan = try planner.plan(ast)
        return CELProgram(
            source: source, resultType: resultType, root: plan.evaluate,
            globals: planner.globalSlots.map { ($0.key, $0.value) }, slotCount: planner.slotCount,
            readOnlyThroughPaths: planner.globalsReadOnlyThroughPaths,
            paths: planner.pathSlots.map { ($0.key, $0.value) })
    }
}

/// The values of the variables for one evaluation.
public struct CELActivation: Sendable {
    public var bindings: [String: CELValue]

    public init(_ bindings: [String: CELValue] = [:]) { self.bindings = bindings }

    public subscript(name: String) -> CELValue? {
        get { bindings[name] }
        set { bindings[name] = newValue }
    }
}

/// A compiled expression: immutable and `Sendable`, so one program can be evaluated from many
/// threads at once.
public struct CELProgram: Sendable {
    /// The expression's source text.
    public let source: String
    /// The checker's result type, or `.dyn` when unknown or when the checker is off.
    public let resultType: CELType
    let root: CELEvaluator
    let globals: [(name: String, slot: Int)]
    /// The globals asked for before the program runs: all but those read only through `paths`.
    private let eagerGlobals: [(name: String, slot: Int)]
    /// The request paths the program reads (see `CELRequestPath`), each with its slot and the
    /// slot of its variable, which is filled only when the caller does not answer the path.
    private let paths: [(path: CELRequestPath, slot: Int, globalSlot: Int)]
    let slotCount: Int

    init(
        source: String, resultType: CELType, root: @escaping CELEvaluator, globals: [(String, Int)], slotCount: Int,
        readOnlyThroughPaths: Set<String> = [], paths: [(CELRequestPath, Int)] = []
    ) {
        self.source = source
        self.resultType = resultType
        self.root = root
        self.globals = globals.map { (name: $0.0, slot: $0.1) }
        eagerGlobals = self.globals.filter { !readOnlyThroughPaths.contains($0.name) }
        let globalSlots = Dictionary(uniqueKeysWithValues: globals)
        self.paths = paths.sorted { $0.0.rawValue < $1.0.rawValue }.map { path, slot in
            (path: path, slot: slot, globalSlot: globalSlots[path.global]!)
        }
        self.slotCount = slotCount
    }

    /// The global variables the expression refers to.
    public var referencedVariables: Set<String> { Set(globals.map(\.name)) }

    /// Evaluates the program; fails with `.costLimitExceeded` once more than `costLimit` is spent.
    public func evaluate(
        _ activation: CELActivation, costLimit: UInt64 = CELCost.defaultLimit
    ) throws(CELError)
        -> CELValue
    {
        try evaluateWithCost(activation, costLimit: costLimit).value
    }

    /// Evaluates the program and reports the cost spent (see `CELCost`).
    public func evaluateWithCost(
        _ activation: CELActivation, costLimit: UInt64 = CELCost.defaultLimit
    )
        throws(CELError) -> (value: CELValue, cost: UInt64)
    {
        try evaluateWithCost(costLimit: costLimit) { activation.bindings[$0] }
    }

    /// Evaluates the program with the value of each global variable it refers to asked of
    /// `value(name)`, so that a caller can build only the variables an expression reads.
    func evaluateWithCost(
        costLimit: UInt64, values value: (String) -> CELValue?
    ) throws(CELError) -> (value: CELValue, cost: UInt64) {
        var frame = CELFrame(slotCount: slotCount, costLimit: costLimit)
        // No request paths answered here: each is selected from its variable.
        for global in globals { frame.slots[global.slot] = value(global.name) }
        let result = try root(&frame)
        return (result, frame.cost)
    }

    /// Fills the slots of the global variables and request paths the program reads.
    @inline(__always)
    private func fill(_ slots: inout [CELValue?], _ input: (CELInput) -> CELValue?) {
        for global in eagerGlobals { slots[global.slot] = input(.variable(global.name)) }
        for path in paths {
            if let value = input(.path(path.path)) {
                slots[path.slot] = value
            } else if slots[path.globalSlot] == nil {
                slots[path.globalSlot] = input(.variable(path.path.global))
            }
        }
    }

    /// The same, with the frame's slots kept in `scratch` between evaluations, so that a caller
    /// evaluating many programs allocates them once, and request paths answered by `input` too. Slots this program uses are cleared before
    /// it runs; the array keeps the largest size asked for, and the values of the last program
    /// until the next one clears them or the caller drops it.
    func evaluateWithCost(
        costLimit: UInt64, scratch: inout [CELValue?], inputs input: (CELInput) -> CELValue?
    ) throws(CELError) -> (value: CELValue, cost: UInt64) {
        var frame = CELFrame(slotCount: 0, costLimit: costLimit)
        swap(&frame.slots, &scratch)
        defer { swap(&frame.slots, &scratch) }
        if frame.slots.count < slotCount {
            frame.slots.append(contentsOf: repeatElement(nil, count: slotCount - frame.slots.count))
        }
        for slot in 0..<slotCount { frame.slots[slot] = nil }
        fill(&frame.slots, input)
        let result = try root(&frame)
        return (result, frame.cost)
    }

    /// Whether the expression reads the global variable `name`.
    func references(_ name: String) -> Bool { globals.contains { $0.name == name } }
}
