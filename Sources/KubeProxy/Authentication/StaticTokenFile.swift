import Foundation

/// The apiserver's `--token-auth-file` format: one CSV record per line,
/// `token,user,uid[,"group1,group2"]`.
///
/// Parsing follows the apiserver (RFC 4180 fields, groups split on commas inside the quoted fourth
/// column) and is stricter where it would otherwise hide a mistake: an empty token, an empty user
/// name, a repeated token, fewer than three or more than four columns, and a broken quote are
/// errors with the line number. Blank lines and lines whose first character is `#` are skipped,
/// spaces around unquoted fields are trimmed, and a UTF-8 byte-order mark and CRLF line ends are
/// accepted. A quoted field may not span lines. Errors never quote a token.
///
/// Meant for development and tests: tokens in a file do not expire.
public enum StaticTokenFile {
    /// One line of the file.
    public struct Entry: Sendable {
        public var token: String
        public var identity: Identity
        /// The 1-based line the entry came from.
        public var line: Int

        public init(token: String, identity: Identity, line: Int) {
            self.token = token
            self.identity = identity
            self.line = line
        }
    }

    /// A problem in the file, with the 1-based line it was found on (0 when the file could not be read).
    public struct ParseError: Error, Sendable, Hashable, CustomStringConvertible {
        public var source: String
        public var line: Int
        public var message: String

        public init(source: String, line: Int, message: String) {
            self.source = source
            self.line = line
            self.message = message
        }

        public var description: String { "\(source):\(line): \(message)" }
    }

    /// Reads and parses the file at `path`.
    public static func load(contentsOf path: String) throws(ParseError) -> [Entry] {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ParseError(
                source: path, line: 0, message: "cannot read the token file: \(error.localizedDescription)")
        }
        return try parse(text, source: path)
    }

    /// Parses the text of a token file; `source` names it in errors.
    public static func parse(_ text: String, source: String = "token file") throws(ParseError) -> [Entry] {
        var entries: [Entry] = []
        var firstLineOfToken: [TokenDigest: Int] = [:]
        var body = Substring(text)
        if body.hasPrefix("\u{FEFF}") { body = body.dropFirst() }
        // `\r\n` is a single Character in Swift, so split on every kind of line end.
        let lines = body.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
        for (index, rawLine) in lines.enumerated() {
            let number = index + 1
            let line = rawLine
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            let fields: [String]
            do {
                fields = try splitRecord(line)
            } catch {
                throw ParseError(source: source, line: number, message: error.message)
            }
            guard fields.count >= 3 else {
                throw ParseError(
                    source: source, line: number,
                    message: "expected at least 3 columns (token, user name, uid), found \(fields.count)")
            }
            guard fields.count <= 4 else {
                throw ParseError(
                    source: source, line: number,
                    message: "expected at most 4 columns (token, user name, uid, groups), found \(fields.count)")
            }
            let token = fields[0]
            guard !token.isEmpty else {
                throw ParseError(source: source, line: number, message: "the token (column 1) is empty")
            }
            guard !token.contains(where: { $0.isWhitespace || $0.isNewline }) else {
                throw ParseError(source: source, line: number, message: "the token (column 1) contains white space")
            }
            guard !fields[1].isEmpty else {
                throw ParseError(source: source, line: number, message: "the user name (column 2) is empty")
            }
            let digest = TokenDigest(token)
            if let earlier = firstLineOfToken[digest] {
                throw ParseError(
                    source: source, line: number, message: "the token on this line repeats the token on line \(earlier)"
                )
            }
            firstLineOfToken[digest] = number
            var groups: [String] = []
            if fields.count == 4 {
                groups = fields[3].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                    .filter { !$0.isEmpty }
            }
            let identity = Identity(name: fields[1], uid: fields[2], groups: groups, method: .staticToken)
            entries.append(Entry(token: token, identity: identity, line: number))
        }
        return entries
    }

    private struct FieldError: Error {
        var message: String
    }

    /// Splits one CSV record into fields (RFC 4180: `""` inside quotes is a quote).
    private static func splitRecord(_ line: Substring) throws(FieldError) -> [String] {
        var fields: [String] = []
        var characters = line[...]
        while true {
            while let first = characters.first, first == " " || first == "\t" { characters.removeFirst() }
            if characters.first == "\"" {
                characters.removeFirst()
                var value = ""
                var closed = false
                while let character = characters.popFirst() {
                    if character == "\"" {
                        if characters.first == "\"" {
                            characters.removeFirst()
                            value.append("\"")
                        } else {
                            closed = true
                            break
                        }
                    } else {
                        value.append(character)
                    }
                }
                guard closed else {
                    throw FieldError(message: "column \(fields.count + 1): a quoted field is not closed on this line")
                }
                while let first = characters.first, first == " " || first == "\t" { characters.removeFirst() }
                fields.append(value)
                guard let next = characters.popFirst() else { return fields }
                guard next == "," else {
                    throw FieldError(message: "column \(fields.count): unexpected text after the closing quote")
                }
            } else {
                let end = characters.firstIndex(of: ",") ?? characters.endIndex
                let value = characters[..<end]
                if value.contains("\"") {
                    throw FieldError(message: "column \(fields.count + 1): a quote inside an unquoted field")
                }
                fields.append(value.trimmingCharacters(in: .whitespaces))
                guard end < characters.endIndex else { return fields }
                characters = characters[characters.index(after: end)...]
            }
        }
    }
}
