/// A path to JSON fields to mask, with wildcards: `data.*`, `stringData.*`,
/// `spec.containers[*].env[*].value`, `metadata.annotations['example.com/secret']`.
///
/// `.name` selects a key, `.*` every key of an object, `[*]` every element of a list, `[3]` one
/// element, and `['key']` a key that contains dots or slashes.
public struct FieldPath: Sendable, Hashable, CustomStringConvertible {
    public enum Segment: Sendable, Hashable {
        case key(String)
        case anyKey
        case anyElement
        case element(Int)
    }

    public let text: String
    public let segments: [Segment]

    public struct SyntaxError: Error, Sendable, Hashable, CustomStringConvertible {
        /// 1-based position in the path.
        public let column: Int
        public let message: String
        public var description: String { message }
    }

    public init(_ text: String) throws(SyntaxError) {
        self.text = text
        var segments: [Segment] = []
        let characters = Array(text)
        var index = 0
        func fail(_ message: String) -> SyntaxError { SyntaxError(column: index + 1, message: message) }
        var expectKey = true
        while index < characters.count {
            let character = characters[index]
            if character == "[" {
                guard let close = characters[index...].firstIndex(of: "]") else {
                    throw fail("field path \"\(text)\" has an unclosed \"[\"")
                }
                let inside = String(characters[(index + 1)..<close])
                if inside == "*" {
                    segments.append(.anyElement)
                } else if let number = Int(inside), number >= 0 {
                    segments.append(.element(number))
                } else if inside.count >= 2, let quote = inside.first, quote == "'" || quote == "\"",
                    inside.last == quote
                {
                    segments.append(.key(String(inside.dropFirst().dropLast())))
                } else {
                    throw fail("field path \"\(text)\" has \"[\(inside)]\"; use [*], [index] or ['key']")
                }
                index = close + 1
                expectKey = false
            } else if character == "." {
                guard !expectKey else { throw fail("field path \"\(text)\" has an empty segment") }
                index += 1
                expectKey = true
            } else {
                guard expectKey else { throw fail("field path \"\(text)\" needs a \".\" before \"\(character)\"") }
                var end = index
                while end < characters.count, characters[end] != ".", characters[end] != "[" { end += 1 }
                let name = String(characters[index..<end])
                segments.append(name == "*" ? .anyKey : .key(name))
                index = end
                expectKey = false
            }
        }
        if segments.isEmpty || expectKey {
            throw SyntaxError(
                column: max(1, characters.count), message: "field path \"\(text)\" is empty or ends with \".\"")
        }
        self.segments = segments
    }

    public var description: String { text }
}
