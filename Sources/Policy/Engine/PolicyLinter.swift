/// Checks policy files the way the proxy and webhook will load them: YAML, schema, semantics and
/// every CEL expression compiled, with all problems reported at their file, line and column.
///
/// Unlike loading, linting keeps going past a broken file: each file is read and compiled on its
/// own, so one file's YAML error does not hide another file's CEL errors.
public enum PolicyLinter {
    /// The problems in `paths`, or an empty list; `policies` counts the documents that passed.
    public static func lint(paths: [String]) -> (policies: Int, errors: [PolicyLoadError]) {
        var errors: [PolicyLoadError] = []
        var loaded: [AccessPolicy] = []
        for file in PolicyLoader.files(in: paths, errors: &errors) {
            do {
                loaded += try PolicyLoader.load(paths: [file])
            } catch {
                errors += error.errors
            }
        }
        errors += PolicyLoader.duplicateNames(loaded)
        var compiled = 0
        for policy in loaded {
            do {
                compiled += try PolicyCompiler.compile([policy]).count
            } catch {
                errors += error.errors
            }
        }
        return (errors.isEmpty ? compiled : 0, errors)
    }
}
