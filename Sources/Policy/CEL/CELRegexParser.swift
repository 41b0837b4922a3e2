/// The syntax tree of an RE2 regular expression.
indirect enum CELRegexNode: Sendable {
    case empty
    case literal(Unicode.Scalar, foldCase: Bool)
    case set(CELRegexClass)
    case anyCharacter(matchesNewline: Bool)
    case concatenation([CELRegexNode])
    case alternation([CELRegexNode])
    case repetition(CELRegexNode, min: Int, max: Int?, greedy: Bool)
    case assertion(CELRegexAssertion)
}

enum CELRegexAssertion: Sendable {
    case beginLine, endLine, beginText, endText, wordBoundary, notWordBoundary
}

/// A character class: ranges, Unicode general categories, optionally negated and case-folded.
struct CELRegexClass: Sendable {
    enum Item: Sendable {
        case range(UInt32, UInt32)
        case categories(Set<Unicode.GeneralCategory>, negated: Bool)
        case nested(CELRegexClass)
    }

    var items: [Item] = []
    var negated = false
    var foldCase = false

    func contains(_ scalar: Unicode.Scalar) -> Bool {
        var found = containsExactly(scalar)
        if !found && foldCase {
            for variant in CELRegexClass.caseVariants(scalar) where variant != scalar && containsExactly(variant) {
                found = true
                break
            }
        }
        return found != negated
    }

    private func containsExactly(_ scalar: Unicode.Scalar) -> Bool {
        let value = scalar.value
        for item in items {
            switch item {
            case .range(let low, let high):
                if value >= low && value <= high { return true }
            case .categories(let categories, let negated):
                if categories.contains(scalar.properties.generalCategory) != negated { return true }
            case .nested(let inner):
                if inner.contains(scalar) { return true }
            }
        }
        return false
    }

    /// The scalar in other letter cases (simple one-scalar mappings only).
    static func caseVariants(_ scalar: Unicode.Scalar) -> [Unicode.Scalar] {
        if scalar.isASCII {
            let value = scalar.value
            if value >= 65 && value <= 90, let lower = Unicode.Scalar(value + 32) { return [scalar, lower] }
            if value >= 97 && value <= 122, let upper = Unicode.Scalar(value - 32) { return [scalar, upper] }
            return [scalar]
        }
        var variants = [scalar]
        for mapping in [scalar.properties.lowercaseMapping, scalar.properties.uppercaseMapping] {
            let scalars = mapping.unicodeScalars
            if scalars.count == 1, let only = scalars.first, !variants.contains(only) { variants.append(only) }
        }
        return variants
    }
}

/// Parses RE2 syntax (https://github.com/google/re2/wiki/Syntax). Constructs RE2 rejects —
/// backreferences, lookaround, possessive quantifiers, `\Z` — are errors here too.
struct CELRegexParser {
    private var scalars: [Unicode.Scalar]
    private var position = 0
    private var foldCase = false
    private var multiLine = false
    private var dotAll = false
    private var ungreedy = false
    private var depth = 0
    private let pattern: String

    /// The deepest group nesting accepted, as RE2's default nesting limit.
    static let maxNesting = 1000

    init(_ pattern: String) {
        self.pattern = pattern
        scalars = Array(pattern.unicodeScalars)
    }

    private func error(_ message: String) -> CELError {
        CELError(.invalidArgument, "error parsing regexp: \(message): `\(pattern)`")
    }

    private func peek(_ offset: Int = 0) -> Unicode.Scalar? {
        position + offset < scalars.count ? scalars[position + offset] : nil
    }

    private mutating func next() -> Unicode.Scalar? {
        guard position < scalars.count else { return nil }
        defer { position += 1 }
        return scalars[position]
    }

    mutating func parse() throws(CELError) -> CELRegexNode {
        let node = try parseAlternation()
        if position < scalars.count { throw error("unexpected )") }
        return node
    }

    private mutating func parseAlternation() throws(CELError) -> CELRegexNode {
        var branches = [try parseConcatenation()]
        while peek() == "|" {
            position += 1
            branches.append(try parseConcatenation())
        }
        return branches.count == 1 ? branches[0] : .alternation(branches)
    }

    private mutating func parseConcatenation() throws(CELError) -> CELRegexNode {
        var items: [CELRegexNode] = []
        while let scalar = peek(), scalar != "|", scalar != ")" {
            if scalar == "(" && peek(1) == "?" && isFlagGroupWithoutBody() {
                try parseFlags()
                continue
            }
            var atom = try parseAtom()
            atom = try parseRepetitions(atom)
            items.append(atom)
        }
        return items.count == 1 ? items[0] : (items.isEmpty ? .empty : .concatenation(items))
    }

    private func isFlagGroupWithoutBody() -> Bool {
        var offset = 2
        while let scalar = peek(offset) {
            if scalar == ")" { return true }
            if !"imsU-".unicodeScalars.contains(scalar) { return false }
            offset += 1
        }
        return false
    }

    /// `(?flags)`: changes flags for the rest of the current group.
    private mutating func parseFlags() throws(CELError) {
        position += 2
        try applyFlags(until: ")")
        position += 1
    }

    private mutating func applyFlags(until terminator: Unicode.Scalar) throws(CELError) {
        var enable = true
        var sawFlag = false
        while let scalar = peek(), scalar != terminator {
            position += 1
            switch scalar {
            case "i": foldCase = enable
            case "m": multiLine = enable
            case "s": dotAll = enable
            case "U": ungreedy = enable
            case "-":
                guard enable else { throw error("invalid or unsupported Perl syntax") }
                enable = false
                sawFlag = false
                continue
            default: throw error("invalid or unsupported Perl syntax")
            }
            sawFlag = true
        }
        if !enable && !sawFlag { throw error("invalid or unsupported Perl syntax") }
    }

    private mutating func parseRepetitions(_ atom: CELRegexNode) throws(CELError) -> CELRegexNode {
        var node = atom
        var repeated = false
        while let scalar = peek() {
            var minimum = 0
            var maximum: Int?
            let start = position
            switch scalar {
            case "*": position += 1
            case "+":
                position += 1
                minimum = 1
            case "?":
                position += 1
                maximum = 1
            case "{":
                guard let (low, high) = parseCount() else { return node }
                minimum = low
                maximum = high
            default:
                return node
            }
            if repeated {
                throw error("bad repetition operator: \(String(String.UnicodeScalarView(scalars[start..<position])))")
            }
            if case .empty = node { throw error("missing argument to repetition operator") }
            if case .assertion = node, scalar != "{" { throw error("missing argument to repetition operator") }
            var greedy = true
            if peek() == "?" {
                position += 1
                greedy = false
            }
            if ungreedy { greedy.toggle() }
            if minimum > CELLimits.maxRegexRepeat || (maximum ?? 0) > CELLimits.maxRegexRepeat {
                throw error("invalid repeat count")
            }
            if let maximum, maximum < minimum { throw error("invalid repeat count") }
            node = .repetition(node, min: minimum, max: maximum, greedy: greedy)
            repeated = true
        }
        return node
    }

    /// `{n}`, `{n,}`, `{n,m}`; nil (a literal `{`) when the braces do not form a count.
    private mutating func parseCount() -> (Int, Int?)? {
        var offset = 1
        func number(_ offset: inout Int) -> Int? {
            var digits = ""
            while let scalar = peek(offset), scalar.isASCIIDigit {
                digits.unicodeScalars.append(scalar)
                offset += 1
            }
            return digits.isEmpty ? nil : Int(digits.prefix(8))
        }
        guard let low = number(&offset) else { return nil }
        var high: Int? = low
        if peek(offset) == "," {
            offset += 1
            high = number(&offset)
        }
        guard peek(offset) == "}" else { return nil }
        position += offset + 1
        return (low, high)
    }

    private mutating func parseAtom() throws(CELError) -> CELRegexNode {
        guard let scalar = next() else { throw error("missing argument to repetition operator") }
        switch scalar {
        case "(":
            return try parseGroup()
        case "[":
            return .set(try parseClass())
        case ".":
            return .anyCharacter(matchesNewline: dotAll)
        case "^":
            return .assertion(multiLine ? .beginLine : .beginText)
        case "$":
            return .assertion(multiLine ? .endLine : .endText)
        case "\\":
            return try parseEscape()
        case "*", "+", "?":
            throw error("missing argument to repetition operator: `\(Character(scalar))`")
        default:
            return .literal(scalar, foldCase: foldCase)
        }
    }

    private mutating func parseGroup() throws(CELError) -> CELRegexNode {
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maxNesting else { throw error("expression nests too deeply") }
        let saved = (foldCase, multiLine, dotAll, ungreedy)
        defer { (foldCase, multiLine, dotAll, ungreedy) = saved }
        if peek() == "?" {
            position += 1
            switch peek() {
            case "P", "<":
                if peek() == "P" { position += 1 }
                if peek() == "=" || peek() == "!" { throw error("invalid or unsupported Perl syntax") }
                guard next() == "<" else { throw error("invalid named capture") }
                var name = ""
                while let scalar = next(), scalar != ">" {
                    guard scalar.isIdentifierStart || scalar.isASCIIDigit else { throw error("invalid named capture") }
                    name.unicodeScalars.append(scalar)
                }
                if name.isEmpty { throw error("invalid named capture") }
            case ":":
                position += 1
            case "=", "!":
                throw error("invalid or unsupported Perl syntax: `(?\(Character(peek() ?? "?"))`")
            default:
                try applyFlags(until: ":")
                guard next() == ":" else { throw error("missing closing )") }
            }
        }
        let inner = try parseAlternation()
        guard next() == ")" else { throw error("missing closing )") }
        return inner
    }

    private mutating func parseEscape() throws(CELError) -> CELRegexNode {
        guard let scalar = next() else { throw error("trailing backslash at end of expression") }
        switch scalar {
        case "A": return .assertion(.beginText)
        case "z": return .assertion(.endText)
        case "b": return .assertion(.wordBoundary)
        case "B": return .assertion(.notWordBoundary)
        case "Q":
            var literals: [CELRegexNode] = []
            while let next = next() {
                if next == "\\" && peek() == "E" {
                    position += 1
                    break
                }
                literals.append(.literal(next, foldCase: foldCase))
            }
            return .concatenation(literals)
        default:
            // Back to the backslash: class and literal escapes are parsed from there.
            position -= 2
            if let set = try parseClassEscape() { return .set(set) }
            return .literal(try parseLiteralEscape(), foldCase: foldCase)
        }
    }

    /// `\d \s \w \D \S \W \pL \p{Name} \PL`: nil when the escape is not a class.
    private mutating func parseClassEscape() throws(CELError) -> CELRegexClass? {
        guard peek() == "\\", let kind = peek(1) else { return nil }
        var set = CELRegexClass()
        switch kind {
        case "d", "D": set.items = [.range(48, 57)]
        case "s", "S": set.items = [.range(9, 10), .range(12, 13), .range(32, 32)]
        case "w", "W": set.items = Self.wordRanges
        case "p", "P":
            position += 2
            var name = ""
            if peek() == "{" {
                position += 1
                while let scalar = next(), scalar != "}" { name.unicodeScalars.append(scalar) }
            } else if let single = next() {
                name.unicodeScalars.append(single)
            }
            var negated = kind == "P"
            if name.hasPrefix("^") {
                negated.toggle()
                name.removeFirst()
            }
            guard let categories = Self.unicodeCategories(name) else {
                throw error("invalid character class range: `\\\(Character(kind)){\(name)}`")
            }
            set.items = [.categories(categories, negated: false)]
            set.negated = negated
            set.foldCase = foldCase
            return set
        default:
            return nil
        }
        position += 2
        set.negated = kind.properties.isUppercase
        return set
    }

    static let wordRanges: [CELRegexClass.Item] = [.range(48, 57), .range(65, 90), .range(95, 95), .range(97, 122)]

    private mutating func parseLiteralEscape() throws(CELError) -> Unicode.Scalar {
        position += 1
        guard let scalar = next() else { throw error("trailing backslash at end of expression") }
        switch scalar {
        case "a": return "\u{07}"
        case "f": return "\u{0C}"
        case "t": return "\t"
        case "n": return "\n"
        case "r": return "\r"
        case "v": return "\u{0B}"
        case "0"..."7":
            // Octal: \0, \01, \012 (RE2 rejects \1-\9 as backreferences unless followed by digits).
            if scalar != "0", !(peek()?.isASCIIDigit ?? false) {
                throw error("invalid escape sequence: `\\\(Character(scalar))`")
            }
            var value = scalar.value - 48
            for _ in 0..<2 {
                guard let digit = peek(), ("0"..."7").contains(digit) else { break }
                value = value * 8 + digit.value - 48
                position += 1
            }
            guard let result = Unicode.Scalar(value) else { throw error("invalid escape sequence") }
            return result
        case "x":
            var digits = ""
            if peek() == "{" {
                position += 1
                while let digit = next(), digit != "}" { digits.unicodeScalars.append(digit) }
            } else {
                for _ in 0..<2 { if let digit = next() { digits.unicodeScalars.append(digit) } }
            }
            guard let value = UInt32(digits, radix: 16), let result = Unicode.Scalar(value) else {
                throw error("invalid escape sequence: `\\x\(digits)`")
            }
            return result
        default:
            if scalar.isASCII && !(scalar.properties.isAlphabetic || scalar.isASCIIDigit) { return scalar }
            throw error("invalid escape sequence: `\\\(Character(scalar))`")
        }
    }

    private mutating func parseClass() throws(CELError) -> CELRegexClass {
        var set = CELRegexClass()
        set.foldCase = foldCase
        if peek() == "^" {
            position += 1
            set.negated = true
        }
        var first = true
        while true {
            guard let scalar = peek() else { throw error("missing closing ]") }
            if scalar == "]" && !first {
                position += 1
                return set
            }
            first = false
            if scalar == "[" && peek(1) == ":" {
                set.items.append(.nested(try parsePOSIXClass()))
                continue
            }
            if let escaped = try parseClassEscape() {
                set.items.append(.nested(escaped))
                continue
            }
            let low = try classScalar()
            if peek() == "-", let after = peek(1), after != "]" {
                position += 1
                let high = try classScalar()
                guard low.value <= high.value else { throw error("invalid character class range") }
                set.items.append(.range(low.value, high.value))
            } else {
                set.items.append(.range(low.value, low.value))
            }
        }
    }

    private mutating func classScalar() throws(CELError) -> Unicode.Scalar {
        guard let scalar = peek() else { throw error("missing closing ]") }
        if scalar == "\\" { return try parseLiteralEscape() }
        position += 1
        return scalar
    }

    private mutating func parsePOSIXClass() throws(CELError) -> CELRegexClass {
        position += 2
        var name = ""
        while let scalar = next(), scalar != ":" { name.unicodeScalars.append(scalar) }
        guard next() == "]" else { throw error("invalid character class range") }
        var set = CELRegexClass()
        if name.hasPrefix("^") {
            set.negated = true
            name.removeFirst()
        }
        let ranges: [(UInt32, UInt32)]
        switch name {
        case "alnum": ranges = [(48, 57), (65, 90), (97, 122)]
        case "alpha": ranges = [(65, 90), (97, 122)]
        case "ascii": ranges = [(0, 127)]
        case "blank": ranges = [(9, 9), (32, 32)]
        case "cntrl": ranges = [(0, 31), (127, 127)]
        case "digit": ranges = [(48, 57)]
        case "graph": ranges = [(33, 126)]
        case "lower": ranges = [(97, 122)]
        case "print": ranges = [(32, 126)]
        case "punct": ranges = [(33, 47), (58, 64), (91, 96), (123, 126)]
        case "space": ranges = [(9, 13), (32, 32)]
        case "upper": ranges = [(65, 90)]
        case "word": ranges = [(48, 57), (65, 90), (95, 95), (97, 122)]
        case "xdigit": ranges = [(48, 57), (65, 70), (97, 102)]
        default: throw error("invalid character class range: `[:\(name):]`")
        }
        set.items = ranges.map { .range($0.0, $0.1) }
        set.foldCase = foldCase
        return set
    }

    /// Unicode general categories by their one- or two-letter names; `Any` is every scalar.
    /// Script names (`Greek`) are not supported and are reported as errors.
    static func unicodeCategories(_ name: String) -> Set<Unicode.GeneralCategory>? {
        let all: [(String, Unicode.GeneralCategory)] = [
            ("Lu", .uppercaseLetter), ("Ll", .lowercaseLetter), ("Lt", .titlecaseLetter), ("Lm", .modifierLetter),
            ("Lo", .otherLetter), ("Mn", .nonspacingMark), ("Mc", .spacingMark), ("Me", .enclosingMark),
            ("Nd", .decimalNumber), ("Nl", .letterNumber), ("No", .otherNumber), ("Pc", .connectorPunctuation),
            ("Pd", .dashPunctuation), ("Ps", .openPunctuation), ("Pe", .closePunctuation),
            ("Pi", .initialPunctuation), ("Pf", .finalPunctuation), ("Po", .otherPunctuation),
            ("Sm", .mathSymbol), ("Sc", .currencySymbol), ("Sk", .modifierSymbol), ("So", .otherSymbol),
            ("Zs", .spaceSeparator), ("Zl", .lineSeparator), ("Zp", .paragraphSeparator), ("Cc", .control),
            ("Cf", .format), ("Cs", .surrogate), ("Co", .privateUse), ("Cn", .unassigned),
        ]
        if name == "Any" { return Set(all.map(\.1)) }
        let matching = all.filter { $0.0 == name || (name.count == 1 && $0.0.hasPrefix(name)) }.map(\.1)
        return matching.isEmpty ? nil : Set(matching)
    }
}
