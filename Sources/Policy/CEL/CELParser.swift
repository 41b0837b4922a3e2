/// A recursive-descent parser for the CEL grammar (cel-spec `doc/langdef.md`, "Syntax"):
///
///     Expr           = ConditionalOr ["?" ConditionalOr ":" Expr]
///     ConditionalOr  = [ConditionalOr "||"] ConditionalAnd
///     ConditionalAnd = [ConditionalAnd "&&"] Relation
///     Relation       = [Relation Relop] Addition        (< <= >= > == != in)
///     Addition       = [Addition ("+" | "-")] Multiplication
///     Multiplication = [Multiplication ("*" | "/" | "%")] Unary
///     Unary          = Member | "!" {"!"} Member | "-" {"-"} Member
///     Member         = Primary | Member "." SELECTOR ["(" [ExprList] ")"] | Member "[" Expr "]"
///     Primary        = ["."] IDENT ["(" [ExprList] ")"] | "(" Expr ")" | "[" [ExprList] "]"
///                    | "{" [MapInits] "}" | ["."] SELECTOR {"." SELECTOR} "{" [FieldInits] "}" | LITERAL
///
/// Macros are expanded while parsing (see `CELParser+Macros.swift`). Nesting is bounded by
/// `CELLimits.maxNestingDepth` and the input length by `CELLimits.maxExpressionLength`.
struct CELParser {
    private let tokens: [CELPositionedToken]
    private var index = 0
    private var nextID = 1
    private var recursion = 0
    let sourceMap: CELSourceMap

    /// Parses `source` into an AST with macros expanded.
    static func parse(_ source: String) throws(CELError) -> CELExpr {
        let scalars = Array(source.unicodeScalars)
        let sourceMap = CELSourceMap(scalars)
        guard scalars.count <= CELLimits.maxExpressionLength else {
            throw CELError(
                .expressionTooLong,
                "expression code point size exceeds limit: size: \(scalars.count), limit \(CELLimits.maxExpressionLength)",
                at: sourceMap.location(of: 0))
        }
        var lexer = CELLexer(scalars: scalars, sourceMap: sourceMap)
        var parser = CELParser(tokens: try lexer.tokenize(), sourceMap: sourceMap)
        let expr = try parser.parseExpr()
        guard parser.current.token == .endOfInput else {
            throw parser.mismatched(expecting: "<EOF>", verb: "extraneous input")
        }
        return expr
    }

    private init(tokens: [CELPositionedToken], sourceMap: CELSourceMap) {
        self.tokens = tokens
        self.sourceMap = sourceMap
    }

    // MARK: - Token helpers

    private var current: CELPositionedToken { tokens[index] }

    private func peekToken(_ ahead: Int) -> CELToken {
        let position = min(index + ahead, tokens.count - 1)
        return tokens[position].token
    }

    private mutating func advance() -> CELPositionedToken {
        let token = tokens[index]
        if index < tokens.count - 1 { index += 1 }
        return token
    }

    private mutating func accept(_ token: CELToken) -> Bool {
        guard current.token == token else { return false }
        index += 1
        return true
    }

    private mutating func expect(_ token: CELToken) throws(CELError) {
        guard accept(token) else { throw mismatched(expecting: token.display) }
    }

    func syntaxError(_ message: String, at offset: Int) -> CELError {
        CELError(.syntax, "Syntax error: \(message)", at: sourceMap.location(of: offset))
    }

    private func mismatched(expecting: String, verb: String = "mismatched input") -> CELError {
        syntaxError("\(verb) \(current.token.display) expecting \(expecting)", at: current.offset)
    }

    mutating func node(_ kind: CELExpr.Kind, at offset: Int) -> CELExpr {
        defer { nextID += 1 }
        return CELExpr(id: nextID, offset: offset, kind: kind)
    }

    private mutating func enter() throws(CELError) {
        recursion += 1
        guard recursion <= CELLimits.maxNestingDepth else {
            throw CELError(
                .recursionLimitExceeded,
                "expression recursion limit exceeded: \(CELLimits.maxNestingDepth)",
                at: sourceMap.location(of: current.offset))
        }
    }

    // MARK: - Expressions

    private mutating func parseExpr() throws(CELError) -> CELExpr {
        try enter()
        defer { recursion -= 1 }
        let condition = try parseLogical(and: false)
        guard current.token == .question else { return condition }
        let offset = advance().offset
        let whenTrue = try parseLogical(and: false)
        try expect(.colon)
        let whenFalse = try parseExpr()
        return node(.conditional(condition, whenTrue, whenFalse), at: offset)
    }

    /// Parses a chain of `||` (or `&&`) and builds a balanced tree, as cel-go does, so long
    /// chains do not nest deeply.
    private mutating func parseLogical(and: Bool) throws(CELError) -> CELExpr {
        let token: CELToken = and ? .logicalAnd : .logicalOr
        var operands = [and ? try parseRelation() : try parseLogical(and: true)]
        var offsets: [Int] = []
        while current.token == token {
            offsets.append(advance().offset)
            operands.append(and ? try parseRelation() : try parseLogical(and: true))
        }
        return balance(operands[...], offsets: offsets[...], and: and)
    }

    private mutating func balance(_ operands: ArraySlice<CELExpr>, offsets: ArraySlice<Int>, and: Bool) -> CELExpr {
        if operands.count == 1, let only = operands.first { return only }
        let middle = operands.startIndex + operands.count / 2
        let left = balance(operands[..<middle], offsets: offsets[offsets.startIndex..<(middle - 1)], and: and)
        let right = balance(operands[middle...], offsets: offsets[(middle)...], and: and)
        let offset = offsets[middle - 1]
        return node(and ? .and(left, right) : .or(left, right), at: offset)
    }

    private static func relationOperator(_ token: CELToken) -> CELBinaryOperator? {
        switch token {
        case .equal: return .equal
        case .notEqual: return .notEqual
        case .less: return .less
        case .lessOrEqual: return .lessOrEqual
        case .greater: return .greater
        case .greaterOrEqual: return .greaterOrEqual
        case .inKeyword: return .in
        default: return nil
        }
    }

    private mutating func parseRelation() throws(CELError) -> CELExpr {
        var links = 0
        defer { recursion -= links }
        var lhs = try parseAddition()
        while let op = Self.relationOperator(current.token) {
            let offset = advance().offset
            let rhs = try parseAddition()
            try link(&links)
            lhs = node(.binary(op, lhs, rhs), at: offset)
        }
        return lhs
    }

    private mutating func parseAddition() throws(CELError) -> CELExpr {
        var links = 0
        defer { recursion -= links }
        var lhs = try parseMultiplication()
        while current.token == .plus || current.token == .minus {
            let op: CELBinaryOperator = current.token == .plus ? .add : .subtract
            let offset = advance().offset
            let rhs = try parseMultiplication()
            try link(&links)
            lhs = node(.binary(op, lhs, rhs), at: offset)
        }
        return lhs
    }

    private mutating func parseMultiplication() throws(CELError) -> CELExpr {
        var links = 0
        defer { recursion -= links }
        var lhs = try parseUnary()
        while true {
            let op: CELBinaryOperator
            switch current.token {
            case .star: op = .multiply
            case .slash: op = .divide
            case .percent: op = .modulo
            default: return lhs
            }
            let offset = advance().offset
            let rhs = try parseUnary()
            try link(&links)
            lhs = node(.binary(op, lhs, rhs), at: offset)
        }
    }

    /// Each link of a left-deep chain (`a + b + c`, `a.b.c`) counts as one nesting level until
    /// the chain is complete, so the AST depth stays within `CELLimits.maxNestingDepth`.
    private mutating func link(_ links: inout Int) throws(CELError) {
        links += 1
        try enter()
    }

    private mutating func parseUnary() throws(CELError) -> CELExpr {
        let start = current.offset
        switch current.token {
        case .bang:
            var count = 0
            while accept(.bang) { count += 1 }
            let operand = try parseMember()
            return count % 2 == 0 ? operand : node(.unary(.not, operand), at: start)
        case .minus:
            var count = 0
            var lastOffset = start
            while current.token == .minus {
                lastOffset = advance().offset
                count += 1
            }
            // A minus directly before a number is the literal's sign, as in cel-go's grammar.
            var operand: CELExpr
            switch current.token {
            case .intLiteral, .doubleLiteral:
                operand = try parseMember(negativeLiteralAt: lastOffset)
                count -= 1
            default:
                operand = try parseMember()
            }
            if count % 2 == 1 { operand = node(.unary(.negate, operand), at: start) }
            return operand
        default:
            return try parseMember()
        }
    }

    private mutating func parseMember(negativeLiteralAt: Int? = nil) throws(CELError) -> CELExpr {
        var links = 0
        defer { recursion -= links }
        var operand = try parsePrimary(negativeLiteralAt: negativeLiteralAt)
        while true {
            let offset = current.offset
            switch current.token {
            case .dot:
                _ = advance()
                let optional = accept(.question)
                let field = try parseSelector()
                if !optional, current.token == .leftParen {
                    _ = advance()
                    let args = try parseExprList(closing: .rightParen)
                    try link(&links)
                    operand = node(.call(target: operand, function: field, args: args), at: offset)
                    operand = try expandMemberMacro(operand)
                } else if !optional, current.token == .leftBrace, let name = qualifiedName(operand) {
                    operand = try parseMessage(typeName: name + "." + field, at: offset)
                } else {
                    try link(&links)
                    operand = node(.select(operand: operand, field: field, optional: optional), at: offset)
                }
            case .leftBracket:
                _ = advance()
                let optional = accept(.question)
                let index = try parseExpr()
                try expect(.rightBracket)
                try link(&links)
                operand = node(.index(operand: operand, index: index, optional: optional), at: offset)
            default:
                return operand
            }
        }
    }

    private mutating func parseSelector() throws(CELError) -> String {
        switch current.token {
        case .identifier(let name), .quotedIdentifier(let name):
            _ = advance()
            return name
        case .trueKeyword, .falseKeyword, .nullKeyword, .inKeyword:
            throw mismatched(expecting: "IDENTIFIER")
        default:
            throw mismatched(expecting: "IDENTIFIER")
        }
    }

    /// The dotted name of an identifier or select chain (`a.b.c`), used for message names.
    private func qualifiedName(_ expr: CELExpr) -> String? {
        switch expr.kind {
        case .ident(let name, let rooted): return rooted ? "." + name : name
        case .select(let operand, let field, false): return qualifiedName(operand).map { $0 + "." + field }
        default: return nil
        }
    }

    private mutating func parseMessage(typeName: String, at offset: Int) throws(CELError) -> CELExpr {
        try expect(.leftBrace)
        var fields: [(String, CELExpr)] = []
        while current.token != .rightBrace {
            _ = accept(.question)
            let name = try parseSelector()
            try expect(.colon)
            fields.append((name, try parseExpr()))
            if !accept(.comma) { break }
        }
        try expect(.rightBrace)
        return node(.message(typeName: typeName, fields: fields), at: offset)
    }

    private static let reservedWords: Set<String> = [
        "as", "break", "const", "continue", "else", "for", "function", "if", "import", "let", "loop",
        "package", "namespace", "return", "var", "void", "while",
    ]

    private mutating func parsePrimary(negativeLiteralAt: Int?) throws(CELError) -> CELExpr {
        if current.token == .endOfInput { throw mismatched(expecting: Self.primaryExpectation) }
        let token = advance()
        let offset = negativeLiteralAt ?? token.offset
        let negative = negativeLiteralAt != nil
        switch token.token {
        case .intLiteral(let digits, let radix):
            guard let magnitude = UInt64(digits, radix: radix) else {
                throw syntaxError("invalid int literal", at: offset)
            }
            if negative {
                guard magnitude <= UInt64(Int64.max) + 1 else { throw syntaxError("invalid int literal", at: offset) }
                return node(.literal(.int(magnitude == UInt64(Int64.max) + 1 ? .min : -Int64(magnitude))), at: offset)
            }
            guard magnitude <= UInt64(Int64.max) else { throw syntaxError("invalid int literal", at: offset) }
            return node(.literal(.int(Int64(magnitude))), at: offset)
        case .uintLiteral(let digits, let radix):
            guard let value = UInt64(digits, radix: radix) else {
                throw syntaxError("invalid uint literal", at: offset)
            }
            return node(.literal(.uint(value)), at: offset)
        case .doubleLiteral(let value):
            return node(.literal(.double(negative ? -value : value)), at: offset)
        case .stringLiteral(let value):
            return node(.literal(.string(value)), at: offset)
        case .bytesLiteral(let value):
            return node(.literal(.bytes(value)), at: offset)
        case .trueKeyword:
            return node(.literal(.bool(true)), at: offset)
        case .falseKeyword:
            return node(.literal(.bool(false)), at: offset)
        case .nullKeyword:
            return node(.literal(.null), at: offset)
        case .leftParen:
            let inner = try parseExpr()
            try expect(.rightParen)
            return inner
        case .leftBracket:
            return try parseList(at: offset)
        case .leftBrace:
            return try parseMap(at: offset)
        case .dot:
            guard case .identifier(let name) = current.token else { throw mismatched(expecting: "IDENTIFIER") }
            _ = advance()
            return try parseIdentifierTail(name, rooted: true, at: offset)
        case .identifier(let name):
            return try parseIdentifierTail(name, rooted: false, at: offset)
        default:
            index -= 1
            throw mismatched(expecting: Self.primaryExpectation)
        }
    }

    private static let primaryExpectation =
        "{'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}"

    private mutating func parseIdentifierTail(_ name: String, rooted: Bool, at offset: Int) throws(CELError) -> CELExpr
    {
        if Self.reservedWords.contains(name) {
            throw syntaxError("reserved identifier: \(name)", at: offset)
        }
        if current.token == .leftParen {
            _ = advance()
            let args = try parseExprList(closing: .rightParen)
            let call = node(.call(target: nil, function: rooted ? "." + name : name, args: args), at: offset)
            return try expandGlobalMacro(call)
        }
        if current.token == .leftBrace {
            return try parseMessage(typeName: rooted ? "." + name : name, at: offset)
        }
        return node(.ident(name, rooted: rooted), at: offset)
    }

    private mutating func parseExprList(closing: CELToken) throws(CELError) -> [CELExpr] {
        var items: [CELExpr] = []
        if accept(closing) { return items }
        while true {
            items.append(try parseExpr())
            if accept(closing) { return items }
            try expect(.comma)
        }
    }

    private mutating func parseList(at offset: Int) throws(CELError) -> CELExpr {
        var elements: [CELExpr] = []
        var optionalIndices: Set<Int> = []
        while current.token != .rightBracket {
            if accept(.question) { optionalIndices.insert(elements.count) }
            elements.append(try parseExpr())
            if !accept(.comma) { break }
        }
        try expect(.rightBracket)
        return node(.list(elements, optionalIndices: optionalIndices), at: offset)
    }

    private mutating func parseMap(at offset: Int) throws(CELError) -> CELExpr {
        var entries: [CELMapEntryExpr] = []
        while current.token != .rightBrace {
            let optional = accept(.question)
            let key = try parseExpr()
            try expect(.colon)
            let value = try parseExpr()
            entries.append(CELMapEntryExpr(key: key, value: value, optional: optional))
            if !accept(.comma) { break }
        }
        try expect(.rightBrace)
        return node(.map(entries), at: offset)
    }
}
