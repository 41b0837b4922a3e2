/// A JSON Pointer (RFC 6901): `/metadata/labels/app.kubernetes.io~1name` names the label
/// `app.kubernetes.io/name` (`~1` is `/`, `~0` is `~`).
public struct JSONPointer: Sendable, Hashable, CustomStringConvertible {
    public let tokens: [String]

    public struct SyntaxError: Error, Sendable, Hashable, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    public init(_ text: String) throws(SyntaxError) {
        guard text.hasPrefix("/") else {
            throw SyntaxError(message: "JSON pointer \"\(text)\" must start with \"/\" (e.g. /metadata/labels/team)")
        }
        var tokens: [String] = []
        for part in text.dropFirst().split(separator: "/", omittingEmptySubsequences: false) {
            var token = ""
            var index = part.startIndex
            while index < part.endIndex {
                let character = part[index]
                if character == "~" {
                    let next = part.index(after: index)
                    guard next < part.endIndex, part[next] == "0" || part[next] == "1" else {
                        throw SyntaxError(message: "JSON pointer \"\(text)\" has \"~\" not followed by 0 or 1")
                    }
                    token.append(part[next] == "0" ? "~" : "/")
                    index = part.index(after: next)
                } else {
                    token.append(character)
                    index = part.index(after: index)
                }
            }
            tokens.append(token)
        }
        guard !tokens.isEmpty, !(tokens.count == 1 && tokens[0].isEmpty) else {
            throw SyntaxError(message: "JSON pointer \"\(text)\" names the whole object; name a field")
        }
        self.tokens = tokens
    }

    public init(tokens: [String]) { self.tokens = tokens }

    public var description: String {
        "/"
            + tokens.map { $0.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1") }
            .joined(separator: "/")
    }
}
