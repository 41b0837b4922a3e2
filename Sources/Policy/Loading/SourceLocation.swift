/// A position in a policy file: where a document, field or expression starts.
public struct SourceLocation: Sendable, Hashable, CustomStringConvertible {
    /// The file name as given to the loader, or a label such as `<stdin>` or `cluster:name`.
    public var file: String
    /// 1-based line.
    public var line: Int
    /// 1-based column, counted in Unicode scalars (as libyaml counts them).
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    /// `file:line:column`; just the label for API objects, which have no lines (line 0).
    public var description: String { line == 0 ? file : "\(file):\(line):\(column)" }
}
