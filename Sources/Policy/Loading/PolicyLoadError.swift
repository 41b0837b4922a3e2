/// One problem found while loading or validating policies, pointing at the exact place and
/// saying how to fix it, in the `file:line:column: error: message` form editors understand.
public struct PolicyLoadError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong, as an open set so new checks can add kinds.
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        public var description: String { name }
        public init(_ name: String) { self.name = name }

        public static let unreadableFile = Kind("unreadableFile")
        public static let yamlSyntax = Kind("yamlSyntax")
        public static let unknownKey = Kind("unknownKey")
        public static let missingKey = Kind("missingKey")
        public static let wrongType = Kind("wrongType")
        public static let invalidValue = Kind("invalidValue")
        public static let duplicateName = Kind("duplicateName")
        public static let invalidGlob = Kind("invalidGlob")
        public static let celSyntax = Kind("celSyntax")
        public static let celType = Kind("celType")
        public static let celUndeclared = Kind("celUndeclared")
    }

    public var kind: Kind
    public var location: SourceLocation
    public var message: String
    /// A one-line suggestion; empty when the message says it all.
    public var hint: String

    public init(_ kind: Kind, at location: SourceLocation, _ message: String, hint: String = "") {
        self.kind = kind
        self.location = location
        self.message = message
        self.hint = hint
    }

    public var description: String {
        hint.isEmpty
            ? "\(location): error: \(message)"
            : "\(location): error: \(message)\n  hint: \(hint)"
    }
}

/// Every problem in a set of policy files: loading reports them all at once, so an author fixes
/// them in one pass.
public struct PolicyLoadErrors: Error, Sendable, CustomStringConvertible {
    public var errors: [PolicyLoadError]

    public init(_ errors: [PolicyLoadError]) { self.errors = errors }

    public var description: String { errors.map(\.description).joined(separator: "\n") }
}
