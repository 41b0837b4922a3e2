/// A shell-style pattern for names: `*` matches any run of characters, `?` one character,
/// `[abc]`, `[a-z]` and `[!a-z]` one character from (or not from) a set, and `\` escapes the next
/// character. Matching is over Unicode scalars and runs in time linear in practice (one
/// backtracking point, as in the classic wildcard algorithm).
public struct Glob: Sendable, Hashable, CustomStringConvertible {
    public let pattern: String
    private let tokens: [Token]

    enum Token: Sendable, Hashable {
        case literal(Unicode.Scalar)
        case any
        case one
        case set(ranges: [ClosedRange<Unicode.Scalar>], negated: Bool)
    }

    public struct SyntaxError: Error, Sendable, Hashable, CustomStringConvertible {
        /// 1-based position in the pattern.
        public let column: Int
        public let message: String
        public var description: String { message }
    }

    public init(_ pattern: String) throws(SyntaxError) {
        self.pattern = pattern
        var tokens: [Token] = []
        let scalars = Array(pattern.unicodeScalars)
        var index = 0
        while index < scalars.count {
            let scalar = scalars[index]
            switch scalar {
            case "*":
                if tokens.last != .any { tokens.append(.any) }
            case "?":
                tokens.append(.one)
            case "\\":
                guard index + 1 < scalars.count else {
                    throw SyntaxError(
                        column: index + 1, message: "pattern \"\(pattern)\" ends with an unfinished escape")
                }
                index += 1
                tokens.append(.literal(scalars[index]))
            case "[":
                let start = index
                index += 1
                var negated = false
                if index < scalars.count, scalars[index] == "!" || scalars[index] == "^" {
                    negated = true
                    index += 1
                }
                var ranges: [ClosedRange<Unicode.Scalar>] = []
                while index < scalars.count, scalars[index] != "]" {
                    let low = scalars[index]
                    if index + 2 < scalars.count, scalars[index + 1] == "-", scalars[index + 2] != "]" {
                        let high = scalars[index + 2]
                        guard low <= high else {
                            throw SyntaxError(
                                column: index + 1,
                                message: "pattern \"\(pattern)\" has the reversed range \(low)-\(high)")
                        }
                        ranges.append(low...high)
                        index += 3
                    } else {
                        ranges.append(low...low)
                        index += 1
                    }
                }
                guard index < scalars.count, !ranges.isEmpty else {
                    throw SyntaxError(
                        column: start + 1,
                        message: ranges.isEmpty && index < scalars.count
                            ? "pattern \"\(pattern)\" has an empty character set"
                            : "pattern \"\(pattern)\" has an unclosed \"[\"")
                }
                tokens.append(.set(ranges: ranges, negated: negated))
            default:
                tokens.append(.literal(scalar))
            }
            index += 1
        }
        self.tokens = tokens
    }

    /// A glob that matches exactly `name`.
    public static func exactly(_ name: String) -> Glob {
        var escaped = ""
        for character in name {
            if "*?[\\".contains(character) { escaped.append("\\") }
            escaped.append(character)
        }
        // An escaped pattern is always valid.
        return (try? Glob(escaped)) ?? Glob(tokens: name.unicodeScalars.map(Token.literal), pattern: escaped)
    }

    private init(tokens: [Token], pattern: String) {
        self.tokens = tokens
        self.pattern = pattern
    }

    public static let everything = Glob(tokens: [.any], pattern: "*")

    public var description: String { pattern }

    /// True when the pattern is `*`.
    public var matchesEverything: Bool { tokens == [.any] }

    /// The literal text when the pattern has no wildcards (used for indexing).
    public var literal: String? {
        var text = String.UnicodeScalarView()
        for token in tokens {
            guard case .literal(let scalar) = token else { return nil }
            text.append(scalar)
        }
        return String(text)
    }

    public func matches(_ name: String) -> Bool {
        let text = Array(name.unicodeScalars)
        var t = 0
        var p = 0
        var starPattern = -1
        var starText = 0
        while t < text.count {
            if p < tokens.count, tokens[p] != .any, Self.token(tokens[p], accepts: text[t]) {
                t += 1
                p += 1
            } else if p < tokens.count, tokens[p] == .any {
                starPattern = p
                starText = t
                p += 1
            } else if starPattern >= 0 {
                p = starPattern + 1
                starText += 1
                t = starText
            } else {
                return false
            }
        }
        while p < tokens.count, tokens[p] == .any { p += 1 }
        return p == tokens.count
    }

    private static func token(_ token: Token, accepts scalar: Unicode.Scalar) -> Bool {
        switch token {
        case .literal(let literal): literal == scalar
        case .one: true
        case .any: true
        case .set(let ranges, let negated): ranges.contains { $0.contains(scalar) } != negated
        }
    }
}
