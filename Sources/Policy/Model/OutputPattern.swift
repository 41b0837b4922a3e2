/// A regular expression that masks matching text in stream output (exec stdout/stderr).
///
/// Patterns use RE2's syntax, compiled by the same linear-time engine as CEL's `matches`: no
/// backreferences and no lookaround, so masking stays linear in the output's length and neither a
/// pattern nor a pod's output can stall the proxy.
///
/// Output is bytes, not text: matching takes each byte as one character, so ASCII patterns (card
/// numbers, tokens, keys) match exactly what a terminal shows, bytes that are not ASCII are never
/// altered unless a match covers them, and a binary stream stays byte-for-byte intact around the
/// matches.
public struct OutputPattern: Sendable {
    public let source: String
    private let regex: CELRegex

    public init(_ pattern: String) throws(OutputPatternError) {
        guard !pattern.isEmpty else { throw OutputPatternError(pattern: pattern, reason: "the pattern is empty") }
        do {
            regex = try CELRegex(pattern)
        } catch {
            throw OutputPatternError(pattern: pattern, reason: error.message)
        }
        guard !regex.matches("") else {
            throw OutputPatternError(
                pattern: pattern, reason: "the pattern matches empty text, so it would mask nothing visible")
        }
        source = pattern
    }

    /// Why `pattern` is unusable, or nil when it is fine.
    public static func validate(_ pattern: String) -> String? {
        do {
            _ = try OutputPattern(pattern)
            return nil
        } catch {
            return error.reason
        }
    }

    /// The leftmost-first, non-overlapping matches in `bytes`, as offsets from its start.
    public func matches(in bytes: some Collection<UInt8>) -> [Range<Int>] {
        regex.matchRanges(in: bytes.map { Unicode.Scalar($0) })
    }
}

/// A mask pattern that cannot be used, and why.
public struct OutputPatternError: Error, Sendable, Equatable, CustomStringConvertible {
    public var pattern: String
    public var reason: String

    public var description: String { "mask pattern \"\(pattern)\": \(reason)" }
}
