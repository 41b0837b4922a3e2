import Foundation

/// A regular expression that masks matching text in stream output (exec stdout/stderr).
///
/// Patterns follow RE2's syntax subset: no backreferences and no lookaround, so matching stays
/// linear in the output's length and a pattern cannot be used to stall the proxy.
public enum OutputPattern {
    /// Why `pattern` is unusable, or nil when it is fine.
    public static func validate(_ pattern: String) -> String? {
        if pattern.isEmpty { return "the pattern is empty" }
        if let construct = ["(?=", "(?!", "(?<=", "(?<!"].first(where: pattern.contains) {
            return "lookaround \"\(construct)\" is not supported (RE2 syntax)"
        }
        if pattern.range(of: #"\\[1-9]"#, options: .regularExpression) != nil {
            return "backreferences are not supported (RE2 syntax)"
        }
        do {
            _ = try NSRegularExpression(pattern: pattern)
        } catch {
            return "not a valid regular expression"
        }
        return nil
    }
}
