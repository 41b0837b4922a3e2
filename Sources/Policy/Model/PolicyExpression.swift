/// A CEL expression as written in a policy, with where it came from so that an error at a line
/// and column inside the expression can be reported at the right place in the file.
public struct PolicyExpression: Sendable, Hashable {
    /// How the expression's text sits in the file.
    public enum Origin: Sendable, Hashable {
        /// On one line after the key (plain or quoted): expression column 1 is `start`.
        case inline(start: SourceLocation)
        /// A `|` or `>` block: expression line 1 starts at `firstContentLine`.
        case block(indicator: SourceLocation, firstContentLine: SourceLocation)
        /// Built in code or read from JSON: positions are relative to the expression only.
        case synthetic(label: String)
    }

    public var source: String
    public var origin: Origin

    public init(source: String, origin: Origin) {
        self.source = source
        self.origin = origin
    }

    /// An expression built in code (tests, defaults), labelled for messages.
    public init(_ source: String, label: String = "<expression>") {
        self.init(source: source, origin: .synthetic(label: label))
    }

    /// Where the expression starts in the file.
    public var location: SourceLocation {
        switch origin {
        case .inline(let start): start
        case .block(_, let first): first
        case .synthetic(let label): SourceLocation(file: label, line: 1, column: 1)
        }
    }

    /// Maps a 1-based line and column inside the expression to the file.
    public func fileLocation(line: Int, column: Int) -> SourceLocation {
        switch origin {
        case .inline(let start):
            line == 1
                ? SourceLocation(file: start.file, line: start.line, column: start.column + column - 1)
                : SourceLocation(file: start.file, line: start.line + line - 1, column: column)
        case .block(_, let first):
            SourceLocation(file: first.file, line: first.line + line - 1, column: first.column + column - 1)
        case .synthetic(let label):
            SourceLocation(file: label, line: line, column: column)
        }
    }
}
