/// A position inside a CEL expression's source text.
///
/// `line` and `column` are 1-based and count Unicode scalars, as cel-go's error messages do;
/// `offset` is the 0-based Unicode-scalar offset from the start of the expression.
public struct CELSourceLocation: Sendable, Hashable, CustomStringConvertible {
    public let line: Int
    public let column: Int
    public let offset: Int

    public init(line: Int, column: Int, offset: Int) {
        self.line = line
        self.column = column
        self.offset = offset
    }

    public var description: String { "\(line):\(column)" }
}

/// An error from compiling or evaluating a CEL expression.
///
/// Compile errors (syntax, undeclared references, type mismatches) carry the location of the
/// offending token. Evaluation errors usually have no location: cel-spec `doc/langdef.md`
/// ("Runtime Errors") treats them as values that can be absorbed by `&&`, `||` and `?:`.
public struct CELError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The category of an error; an open set of named kinds so new ones can be added freely.
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        public let name: String

        public init(_ name: String) { self.name = name }

        public var description: String { name }

        /// The source text does not follow the CEL grammar (langdef "Syntax").
        public static let syntax = Kind("syntax")
        /// A variable or function name the environment does not declare.
        public static let undeclaredReference = Kind("undeclaredReference")
        /// The checker proved an operand has the wrong type.
        public static let typeMismatch = Kind("typeMismatch")
        /// No overload of a function accepts the runtime argument types.
        public static let noSuchOverload = Kind("noSuchOverload")
        /// A map has no entry for the key, or a list index is out of range.
        public static let noSuchKey = Kind("noSuchKey")
        /// A variable that is declared but was not bound in the activation.
        public static let noSuchAttribute = Kind("noSuchAttribute")
        /// Integer division or modulo by zero.
        public static let divideByZero = Kind("divideByZero")
        /// Integer overflow, or a value out of the range of its type.
        public static let overflow = Kind("overflow")
        /// An argument a function rejects, e.g. a malformed timestamp or regex.
        public static let invalidArgument = Kind("invalidArgument")
        /// Evaluation spent more than the allowed cost (see `CELCost`).
        public static let costLimitExceeded = Kind("costLimitExceeded")
        /// The expression nests deeper than `CELLimits.maxNestingDepth`.
        public static let recursionLimitExceeded = Kind("recursionLimitExceeded")
        /// The expression is longer than `CELLimits.maxExpressionLength`.
        public static let expressionTooLong = Kind("expressionTooLong")
        /// A construct CEL defines that this implementation does not support (e.g. messages).
        public static let unsupported = Kind("unsupported")
    }

    public let kind: Kind
    public let message: String
    public let location: CELSourceLocation?

    public init(_ kind: Kind, _ message: String, at location: CELSourceLocation? = nil) {
        self.kind = kind
        self.message = message
        self.location = location
    }

    public var description: String {
        if let location { return "ERROR: <input>:\(location.line):\(location.column): \(message)" }
        return message
    }

    static func noOverload(_ function: String, _ args: CELValue...) -> CELError {
        let types = args.map { $0.celType.description }.joined(separator: ", ")
        return CELError(.noSuchOverload, "no such overload: \(function)(\(types))")
    }

    static func noSuchKey(_ key: CELValue) -> CELError {
        CELError(.noSuchKey, "no such key: \(key.debugDescription)")
    }

    static func overflow(_ operation: String) -> CELError {
        CELError(.overflow, "\(operation) overflow")
    }

    static func invalid(_ message: String) -> CELError {
        CELError(.invalidArgument, message)
    }
}

/// The named limits of the CEL implementation. Every limit is enforced with a `CELError`.
public enum CELLimits {
    /// The deepest nesting of sub-expressions the parser accepts, as cel-go's default
    /// `MaxRecursionDepth` (250). Deeper input fails with `.recursionLimitExceeded`.
    public static let maxNestingDepth = 250
    /// The longest expression, in Unicode scalars, the parser accepts (cel-go's
    /// `ExpressionSizeCodePointLimit` default is 100,000). Longer input fails with `.expressionTooLong`.
    public static let maxExpressionLength = 100_000
    /// The most repetitions a regex counted repetition (`x{n,m}`) may ask for, as in RE2.
    public static let maxRegexRepeat = 1000
    /// The largest compiled regex program, in instructions; larger patterns are rejected.
    public static let maxRegexProgramSize = 100_000
    /// The largest string (in UTF-8 bytes) or list a function that multiplies its input (`join`,
    /// `replace`, `format`, `flatten`) may build, so that one call cannot allocate far beyond what
    /// it is charged for, whatever the budget. Paying for a result this size would take 1.7 times
    /// the default cost limit, so larger results fail as `.costLimitExceeded` (which `||`, `&&`
    /// and comprehensions do not absorb).
    public static let maxResultSize = 1 << 24
    /// The largest precision `format` accepts (`%.1074f`): every fractional digit the exact
    /// decimal value of a double can have (the smallest subnormal has 1074), so no output needs
    /// more, while cel-go would allocate whatever a template asks for. Larger fails with
    /// `.invalidArgument`.
    public static let maxFormatPrecision = 1074

    static func resultTooLarge(_ function: String) -> CELError {
        CELError(.costLimitExceeded, "\(function): result larger than \(maxResultSize) bytes or elements")
    }
}
