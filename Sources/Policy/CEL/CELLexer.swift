/// A CEL token (cel-spec `doc/langdef.md`, "Syntax" lexis).
enum CELToken: Equatable, Sendable {
    case identifier(String)
    /// A backtick-quoted identifier, allowed only as a field name (`` a.`b-c` ``).
    case quotedIdentifier(String)
    /// Decimal or hex digits of an int literal, without sign; the parser applies the sign and range.
    case intLiteral(digits: String, radix: Int)
    case uintLiteral(digits: String, radix: Int)
    case doubleLiteral(Double)
    case stringLiteral(String)
    case bytesLiteral([UInt8])
    case trueKeyword, falseKeyword, nullKeyword, inKeyword
    case leftParen, rightParen, leftBracket, rightBracket, leftBrace, rightBrace
    case dot, comma, colon, question
    case plus, minus, star, slash, percent, bang
    case equal, notEqual, less, lessOrEqual, greater, greaterOrEqual
    case logicalAnd, logicalOr
    case endOfInput

    /// The token as cel-go names it in "mismatched input" messages.
    var display: String {
        switch self {
        case .identifier(let name): return "'\(name)'"
        case .quotedIdentifier(let name): return "'`\(name)`'"
        case .intLiteral(let digits, let radix): return radix == 16 ? "'0x\(digits)'" : "'\(digits)'"
        case .uintLiteral(let digits, let radix): return radix == 16 ? "'0x\(digits)u'" : "'\(digits)u'"
        case .doubleLiteral(let value): return "'\(value)'"
        case .stringLiteral(let value): return "'\"\(value)\"'"
        case .bytesLiteral: return "bytes literal"
        case .trueKeyword: return "'true'"
        case .falseKeyword: return "'false'"
        case .nullKeyword: return "'null'"
        case .inKeyword: return "'in'"
        case .leftParen: return "'('"
        case .rightParen: return "')'"
        case .leftBracket: return "'['"
        case .rightBracket: return "']'"
        case .leftBrace: return "'{'"
        case .rightBrace: return "'}'"
        case .dot: return "'.'"
        case .comma: return "','"
        case .colon: return "':'"
        case .question: return "'?'"
        case .plus: return "'+'"
        case .minus: return "'-'"
        case .star: return "'*'"
        case .slash: return "'/'"
        case .percent: return "'%'"
        case .bang: return "'!'"
        case .equal: return "'=='"
        case .notEqual: return "'!='"
        case .less: return "'<'"
        case .lessOrEqual: return "'<='"
        case .greater: return "'>'"
        case .greaterOrEqual: return "'>='"
        case .logicalAnd: return "'&&'"
        case .logicalOr: return "'||'"
        case .endOfInput: return "<EOF>"
        }
    }
}

/// A token with the Unicode-scalar offset where it starts.
struct CELPositionedToken: Sendable {
    let token: CELToken
    let offset: Int
}

/// Maps Unicode-scalar offsets in an expression to 1-based lines and columns.
struct CELSourceMap: Sendable {
    private let lineStarts: [Int]

    init(_ scalars: [Unicode.Scalar]) {
        var starts = [0]
        for (index, scalar) in scalars.enumerated() where scalar == "\n" {
            starts.append(index + 1)
        }
        lineStarts = starts
    }

    func location(of offset: Int) -> CELSourceLocation {
        var low = 0
        var high = lineStarts.count - 1
        while low < high {
            let mid = (low + high + 1) / 2
            if lineStarts[mid] <= offset { low = mid } else { high = mid - 1 }
        }
        return CELSourceLocation(line: low + 1, column: offset - lineStarts[low] + 1, offset: offset)
    }
}

/// Splits CEL source text into tokens. A value type: `next()` advances through the input.
struct CELLexer {
    private let scalars: [Unicode.Scalar]
    private var position = 0
    private let sourceMap: CELSourceMap

    init(scalars: [Unicode.Scalar], sourceMap: CELSourceMap) {
        self.scalars = scalars
        self.sourceMap = sourceMap
    }

    private func peek(_ ahead: Int = 0) -> Unicode.Scalar? {
        let index = position + ahead
        return index < scalars.count ? scalars[index] : nil
    }

    private func error(_ message: String, at offset: Int) -> CELError {
        CELError(.syntax, "Syntax error: \(message)", at: sourceMap.location(of: offset))
    }

    /// Lexes the whole input, ending with `.endOfInput`.
    mutating func tokenize() throws(CELError) -> [CELPositionedToken] {
        var tokens: [CELPositionedToken] = []
        while true {
            let token = try next()
            tokens.append(token)
            if token.token == .endOfInput { return tokens }
        }
    }

    private mutating func skipWhitespaceAndComments() {
        while let scalar = peek() {
            switch scalar {
            case " ", "\t", "\n", "\r", "\u{0C}":
                position += 1
            case "/" where peek(1) == "/":
                while let next = peek(), next != "\n" { position += 1 }
            default:
                return
            }
        }
    }

    mutating func next() throws(CELError) -> CELPositionedToken {
        skipWhitespaceAndComments()
        let start = position
        guard let scalar = peek() else { return CELPositionedToken(token: .endOfInput, offset: start) }
        let token: CELToken
        switch scalar {
        case "(": token = .leftParen
        case ")": token = .rightParen
        case "[": token = .leftBracket
        case "]": token = .rightBracket
        case "{": token = .leftBrace
        case "}": token = .rightBrace
        case ",": token = .comma
        case ":": token = .colon
        case "?": token = .question
        case "+": token = .plus
        case "-": token = .minus
        case "*": token = .star
        case "/": token = .slash
        case "%": token = .percent
        case "!" where peek(1) == "=":
            position += 1
            token = .notEqual
        case "!": token = .bang
        case "=" where peek(1) == "=":
            position += 1
            token = .equal
        case "<" where peek(1) == "=":
            position += 1
            token = .lessOrEqual
        case "<": token = .less
        case ">" where peek(1) == "=":
            position += 1
            token = .greaterOrEqual
        case ">": token = .greater
        case "&" where peek(1) == "&":
            position += 1
            token = .logicalAnd
        case "|" where peek(1) == "|":
            position += 1
            token = .logicalOr
        case ".":
            if let next = peek(1), next.isASCIIDigit {
                return CELPositionedToken(token: try number(), offset: start)
            }
            token = .dot
        case "`":
            return CELPositionedToken(token: try quotedIdentifier(), offset: start)
        case "\"", "'":
            return CELPositionedToken(token: try stringLiteral(raw: false, bytes: false), offset: start)
        default:
            if scalar.isASCIIDigit {
                return CELPositionedToken(token: try number(), offset: start)
            }
            if scalar.isIdentifierStart {
                if let literal = try prefixedLiteral() { return CELPositionedToken(token: literal, offset: start) }
                return CELPositionedToken(token: identifierOrKeyword(), offset: start)
            }
            throw error("token recognition error at: '\(Character(scalar))'", at: start)
        }
        position += 1
        return CELPositionedToken(token: token, offset: start)
    }

    private mutating func identifierOrKeyword() -> CELToken {
        var name = String.UnicodeScalarView()
        while let scalar = peek(), scalar.isIdentifierStart || scalar.isASCIIDigit {
            name.append(scalar)
            position += 1
        }
        let text = String(name)
        switch text {
        case "true": return .trueKeyword
        case "false": return .falseKeyword
        case "null": return .nullKeyword
        case "in": return .inKeyword
        default: return .identifier(text)
        }
    }

    /// `r"…"`, `b"…"`, `br"…"`, `rb"…"` in any letter case.
    private mutating func prefixedLiteral() throws(CELError) -> CELToken? {
        func lower(_ scalar: Unicode.Scalar?) -> Unicode.Scalar? {
            guard let scalar else { return nil }
            return scalar == "R" ? "r" : scalar == "B" ? "b" : scalar
        }
        func isQuote(_ scalar: Unicode.Scalar?) -> Bool { scalar == "\"" || scalar == "'" }
        let first = lower(peek())
        guard first == "r" || first == "b" else { return nil }
        if isQuote(peek(1)) {
            position += 1
            return try stringLiteral(raw: first == "r", bytes: first == "b")
        }
        let second = lower(peek(1))
        if isQuote(peek(2)), (first == "r" && second == "b") || (first == "b" && second == "r") {
            position += 2
            return try stringLiteral(raw: true, bytes: true)
        }
        return nil
    }

    private mutating func quotedIdentifier() throws(CELError) -> CELToken {
        let start = position
        position += 1
        var name = String.UnicodeScalarView()
        while let scalar = peek(), scalar != "`" {
            guard scalar.isIdentifierStart || scalar.isASCIIDigit || ".-/ ".unicodeScalars.contains(scalar) else {
                throw error("unsupported character in quoted identifier: '\(Character(scalar))'", at: position)
            }
            name.append(scalar)
            position += 1
        }
        guard peek() == "`", !name.isEmpty else { throw error("unterminated quoted identifier", at: start) }
        position += 1
        return .quotedIdentifier(String(name))
    }

    private mutating func number() throws(CELError) -> CELToken {
        let start = position
        if peek() == "0", let x = peek(1), x == "x" || x == "X" {
            position += 2
            var digits = ""
            while let scalar = peek(), scalar.properties.isASCIIHexDigit {
                digits.unicodeScalars.append(scalar)
                position += 1
            }
            guard !digits.isEmpty else { throw error("invalid hex literal", at: start) }
            if let suffix = peek(), suffix == "u" || suffix == "U" {
                position += 1
                return .uintLiteral(digits: digits, radix: 16)
            }
            return .intLiteral(digits: digits, radix: 16)
        }
        var text = ""
        var isDouble = false
        func appendDigits(_ lexer: inout CELLexer) {
            while let scalar = lexer.peek(), scalar.isASCIIDigit {
                text.unicodeScalars.append(scalar)
                lexer.position += 1
            }
        }
        appendDigits(&self)
        if peek() == ".", let next = peek(1), next.isASCIIDigit {
            isDouble = true
            text.append(".")
            position += 1
            appendDigits(&self)
        }
        if let e = peek(), e == "e" || e == "E" {
            var ahead = 1
            if let sign = peek(1), sign == "+" || sign == "-" { ahead = 2 }
            if let digit = peek(ahead), digit.isASCIIDigit {
                isDouble = true
                text.append("e")
                if ahead == 2, let sign = peek(1) { text.unicodeScalars.append(sign) }
                position += ahead
                appendDigits(&self)
            }
        }
        if isDouble {
            guard let value = Double(text) else { throw error("invalid double literal", at: start) }
            return .doubleLiteral(value)
        }
        if let suffix = peek(), suffix == "u" || suffix == "U" {
            position += 1
            return .uintLiteral(digits: text, radix: 10)
        }
        return .intLiteral(digits: text, radix: 10)
    }

    private mutating func stringLiteral(raw: Bool, bytes: Bool) throws(CELError) -> CELToken {
        let start = position
        guard let quote = peek() else { throw error("unterminated string", at: start) }
        let triple = peek(1) == quote && peek(2) == quote
        position += triple ? 3 : 1
        var output: [UInt8] = []
        while true {
            guard let scalar = peek() else { throw error("unterminated string literal", at: start) }
            if scalar == quote && (!triple || (peek(1) == quote && peek(2) == quote)) {
                position += triple ? 3 : 1
                break
            }
            if !triple && (scalar == "\n" || scalar == "\r") {
                throw error("newline in single-quoted string literal", at: position)
            }
            if scalar == "\\" && !raw {
                try escape(into: &output, bytes: bytes)
                continue
            }
            appendUTF8(scalar, to: &output)
            position += 1
        }
        if bytes { return .bytesLiteral(output) }
        guard let text = String(validating: output, as: UTF8.self) else {
            throw error("invalid UTF-8 in string literal", at: start)
        }
        return .stringLiteral(text)
    }

    private func appendUTF8(_ scalar: Unicode.Scalar, to output: inout [UInt8]) {
        output.append(contentsOf: UTF8.encode(scalar).map { Array($0) } ?? [])
    }

    private mutating func hexValue(count: Int, at start: Int) throws(CELError) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<count {
            guard let scalar = peek(), let digit = scalar.hexDigitValue else {
                throw error("invalid escape sequence", at: start)
            }
            value = value * 16 + UInt32(digit)
            position += 1
        }
        return value
    }

    private mutating func escape(into output: inout [UInt8], bytes: Bool) throws(CELError) {
        let start = position
        position += 1
        guard let scalar = peek() else { throw error("unterminated escape sequence", at: start) }
        position += 1
        switch scalar {
        case "\\", "?", "\"", "'", "`": output.append(UInt8(scalar.value))
        case "a": output.append(0x07)
        case "b": output.append(0x08)
        case "f": output.append(0x0C)
        case "n": output.append(0x0A)
        case "r": output.append(0x0D)
        case "t": output.append(0x09)
        case "v": output.append(0x0B)
        case "x", "X":
            let value = try hexValue(count: 2, at: start)
            try appendCode(value, raw: bytes, into: &output, at: start)
        case "u", "U":
            let value = try hexValue(count: scalar == "u" ? 4 : 8, at: start)
            guard let code = Unicode.Scalar(value) else {
                throw error("invalid unicode code point in escape sequence", at: start)
            }
            appendUTF8(code, to: &output)
        case "0"..."3":
            var value = UInt32(scalar.value - 0x30)
            for _ in 0..<2 {
                guard let digit = peek(), ("0"..."7").contains(digit) else {
                    throw error("invalid octal escape sequence", at: start)
                }
                value = value * 8 + (digit.value - 0x30)
                position += 1
            }
            try appendCode(value, raw: bytes, into: &output, at: start)
        default:
            throw error("invalid escape sequence '\\\(Character(scalar))'", at: start)
        }
    }

    /// `\x` and octal escapes are raw bytes in bytes literals, code points in strings.
    private func appendCode(_ value: UInt32, raw: Bool, into output: inout [UInt8], at start: Int) throws(CELError) {
        if raw {
            output.append(UInt8(truncatingIfNeeded: value))
        } else if let code = Unicode.Scalar(value) {
            appendUTF8(code, to: &output)
        } else {
            throw error("invalid escape sequence", at: start)
        }
    }
}

extension Unicode.Scalar {
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
    var isIdentifierStart: Bool { ("a"..."z").contains(self) || ("A"..."Z").contains(self) || self == "_" }
    var hexDigitValue: Int? {
        switch self {
        case "0"..."9": return Int(value - 0x30)
        case "a"..."f": return Int(value - 0x61 + 10)
        case "A"..."F": return Int(value - 0x41 + 10)
        default: return nil
        }
    }
}
