/// The abstract syntax tree the parser produces (cel-spec `doc/langdef.md`, "Syntax").
///
/// Macros are expanded during parsing into the dedicated `.comprehension`, `.bind`, `.has` and
/// `.optionalMap` forms, so later stages never see the macro call syntax.
struct CELExpr: Sendable {
    /// Unique within one parse; used to attach checker types and errors.
    let id: Int
    /// 0-based Unicode-scalar offset of the token that starts this node.
    let offset: Int
    let kind: Kind

    indirect enum Kind: Sendable {
        case literal(CELValue)
        /// A bare name; `rooted` when written with a leading dot (`.name`), which skips the container.
        case ident(String, rooted: Bool)
        /// `operand.field`, or `operand.?field` when `optional`.
        case select(operand: CELExpr, field: String, optional: Bool)
        /// `has(operand.field)`: the presence test macro.
        case has(operand: CELExpr, field: String)
        /// `operand[index]`, or `operand[?index]` when `optional`.
        case index(operand: CELExpr, index: CELExpr, optional: Bool)
        /// A function call; `target` is set for receiver-style calls (`target.function(args)`).
        case call(target: CELExpr?, function: String, args: [CELExpr])
        case unary(CELUnaryOperator, CELExpr)
        case binary(CELBinaryOperator, CELExpr, CELExpr)
        case and(CELExpr, CELExpr)
        case or(CELExpr, CELExpr)
        case conditional(CELExpr, CELExpr, CELExpr)
        /// `[a, ?b]`: `optionalIndices` marks elements written with `?`.
        case list([CELExpr], optionalIndices: Set<Int>)
        case map([CELMapEntryExpr])
        /// `Name{field: value}`: message construction. Parsed, but rejected by the compiler.
        case message(typeName: String, fields: [(String, CELExpr)])
        case comprehension(CELComprehension)
        /// `cel.bind(name, initializer, body)`.
        case bind(name: String, initializer: CELExpr, body: CELExpr)
        /// `target.optMap(name, body)` / `target.optFlatMap(name, body)`.
        case optionalMap(target: CELExpr, name: String, body: CELExpr, flat: Bool)
    }
}

struct CELMapEntryExpr: Sendable {
    let key: CELExpr
    let value: CELExpr
    let optional: Bool
}

enum CELUnaryOperator: String, Sendable {
    case not = "!"
    case negate = "-"
}

enum CELBinaryOperator: String, Sendable {
    case add = "+"
    case subtract = "-"
    case multiply = "*"
    case divide = "/"
    case modulo = "%"
    case equal = "=="
    case notEqual = "!="
    case less = "<"
    case lessOrEqual = "<="
    case greater = ">"
    case greaterOrEqual = ">="
    case `in` = "in"

    /// The cel-spec overload name (`_+_`, `@in`), used in error messages.
    var functionName: String { self == .in ? "@in" : "_\(rawValue)_" }
}

/// A macro that iterates over a list or map (cel-spec "Macros"; cel-go two-variable
/// comprehensions and the lists extension's `sortBy`).
struct CELComprehension: Sendable {
    enum Kind: Sendable {
        case all, exists, existsOne, map, filter
        case transformList, transformMap, transformMapEntry
        case sortBy
    }

    let kind: Kind
    let range: CELExpr
    /// The first variable: the element of a list or the key of a map; the index of a list with two variables.
    let variable: String
    /// The second variable of the two-variable forms (the list element or map value).
    let variable2: String?
    /// The predicate or the transform expression.
    let body: CELExpr
    /// The optional filter of `map(x, filter, transform)` and the `transform*` forms.
    let filter: CELExpr?
}
