/// A shell-style pattern for names: `*` matches any run of characters, `?` one character,
/// `[abc]`, `[a-z]` and `[!a-z]` one character from (or not from) a set, and `\` escapes the next
/// character. Matching is over Unicode scalars and runs in time linear in practice (one
/// backtracking point, as in the classic wildcard algorithm).
public struct Glob: Sendable, Hashable, CustomStringConvertible {
    /// Policies' match blocks hand globs around on every request: behind one reference, a copy
    /// is one retain.
    private let compiled: Compiled

    public var pattern: String { compiled.pattern }
    private var tokens: [Token] { compiled.tokens }

    private final class Compiled: Sendable {
        let pattern: String
        let tokens: [Token]
        let shape: Shape

        init(pattern: String, tokens: [Token]) {
            self.pattern = pattern
            self.tokens = tokens
            shape = Shape(tokens)
        }
    }

    /// Most patterns are a literal, `prefix*` or `*suffix`: those compare UTF-8 bytes in place,
    /// which is the same as comparing scalars, without the scalar array the general matcher needs.
    private enum Shape: Sendable, Hashable {
        case everything
        case exactly(String)
        case prefix(String)
        case suffix(String)
        case general

        init(_ tokens: [Token]) {
            func literal(_ tokens: ArraySlice<Token>) -> String? {
                var text = String.UnicodeScalarView()
                for token in tokens {
                    guard case .literal(let scalar) = token else { return nil }
                    text.append(scalar)
                }
                return String(text)
            }
            if tokens == [.any] {
                self = .everything
            } else if let text = literal(tokens[...]) {
                self = .exactly(text)
            } else if tokens.last == .any, let text = literal(tokens.dropLast()) {
                self = .prefix(text)
            } else if tokens.first == .any, let text = literal(tokens.dropFirst()) {
                self = .suffix(text)
            } else {
                self = .general
            }
        }
    }

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
        compiled = Compiled(pattern: pattern, tokens: tokens)
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
        compiled = Compiled(pattern: pattern, tokens: tokens)
    }

    public static func == (lhs: Glob, rhs: Glob) -> Bool {
        lhs.compiled === rhs.compiled || (lhs.pattern == rhs.pattern && lhs.tokens == rhs.tokens)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(pattern)
        hasher.combine(tokens)
    }

    public static let everything = Glob(tokens: [.any], pattern: "*")

    public var description: String { pattern }

    /// True when the pattern is `*`.
    public var matchesEverything: Bool { compiled.shape == .everything }

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
        switch compiled.shape {
        case .everything:
            return true
        case .exactly(let literal):
            return name.utf8.count == literal.utf8.count && Self.bytes(of: name, at: 0, equal: literal)
        case .prefix(let prefix):
            return name.utf8.count >= prefix.utf8.count && Self.bytes(of: name, at: 0, equal: prefix)
        case .suffix(let suffix):
            // A UTF-8 suffix starts on a scalar boundary, so this is a scalar suffix too.
            let offset = name.utf8.count - suffix.utf8.count
            return offset >= 0 && Self.bytes(of: name, at: offset, equal: suffix)
        case .general:
            return matchesTokens(name)
        }
    }

    /// Whether `text`'s UTF-8 bytes from `offset` on start with all of `part`'s; the caller
    /// checks that they fit. Compared in place when both are contiguous, as native strings are.
    private static func bytes(of text: String, at offset: Int, equal part: String) -> Bool {
        let compared = text.utf8.withContiguousStorageIfAvailable { textBytes in
            part.utf8.withContiguousStorageIfAvailable { partBytes in
                UnsafeBufferPointer(rebasing: textBytes[offset..<(offset + partBytes.count)]).elementsEqual(partBytes)
            }
        }
        if case .some(.some(let equal)) = compared { return equal }
        return text.utf8.dropFirst(offset).starts(with: part.utf8)
    }

    /// The classic wildcard algorithm over scalars, for patterns with `?`, sets or several `*`.
    /// An ASCII name's UTF-8 bytes are its scalars, so it is matched in place, without an array.
    private func matchesTokens(_ name: String) -> Bool {
        let ascii = name.utf8.withContiguousStorageIfAvailable { bytes -> Bool? in
            guard bytes.allSatisfy({ $0 < 0x80 }) else { return nil }
            return matchesTokens(bytes.lazy.map { Unicode.Scalar($0) })
        }
        if case .some(.some(let matched)) = ascii { return matched }
        return matchesTokens(Array(name.unicodeScalars))
    }

    private func matchesTokens<Text: RandomAccessCollection<Unicode.Scalar>>(_ text: Text) -> Bool
    where Text.Index == Int {
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
