import Testing

@testable import Policy

/// Compiles and evaluates `source` with dynamic variables for the given bindings.
func evaluate(
    _ source: String, _ bindings: [String: CELValue] = [:], checker: Bool = false
) throws(CELError)
    -> CELValue
{
    let variables = Dictionary(uniqueKeysWithValues: bindings.keys.map { ($0, CELType.dyn) })
    let program = try CELEnvironment(variables: variables, enableChecker: checker).compile(source)
    return try program.evaluate(CELActivation(bindings))
}

/// The error kind `source` fails with, or nil when it succeeds.
func errorKind(_ source: String, _ bindings: [String: CELValue] = [:], checker: Bool = false) -> CELError.Kind? {
    do {
        _ = try evaluate(source, bindings, checker: checker)
        return nil
    } catch {
        return error.kind
    }
}
