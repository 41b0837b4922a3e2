/// Checks policy files the way the proxy and webhook will load them: YAML, schema, semantics and
/// every CEL expression compiled, with all problems reported at their file, line and column.
public enum PolicyLinter {
    /// The problems in `paths`, or an empty list; `policies` counts the documents that passed.
    public static func lint(paths: [String]) -> (policies: Int, errors: [PolicyLoadError]) {
        do {
            let policies = try PolicyLoader.load(paths: paths)
            return (try PolicyCompiler.compile(policies).count, [])
        } catch {
            return (0, error.errors)
        }
    }
}
