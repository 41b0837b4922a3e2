import Yams

/// Reads a YAML node tree strictly, for documents authors write by hand: every mapping lists the
/// keys it accepts, an unknown key is an error at its own position (with the closest known key
/// as a hint), and every value is type-checked where it stands. Problems are collected rather
/// than thrown, so one pass reports all of them.
struct YAMLNodeReader {
    let file: String
    let node: Node
    /// The field path for messages, e.g. `spec.rules[2].action`.
    let path: String
    /// The whole file's text, for locating block scalars' content.
    let text: String
    /// Set when the document is an API object (JSON from the apiserver) rather than a file a
    /// person wrote: positions in the serialized JSON mean nothing to them, so problems are
    /// reported by field path (and CEL problems by path plus position inside the expression).
    var objectLabel: String? = nil
    /// `text` split into lines once and shared by every reader of the file: splitting it again for
    /// each block scalar made loading quadratic in the file's size.
    var lines = SourceLines()

    var location: SourceLocation {
        if let objectLabel {
            return SourceLocation(file: path.isEmpty ? objectLabel : "\(objectLabel) \(path)", line: 0, column: 0)
        }
        return Self.location(of: node, in: file)
    }

    /// Where a scalar's text starts: after the opening quote of a quoted scalar.
    var contentLocation: SourceLocation {
        var start = location
        if case .scalar(let scalar) = node, scalar.style == .singleQuoted || scalar.style == .doubleQuoted {
            start.column += 1
        }
        return start
    }

    static func location(of node: Node, in file: String) -> SourceLocation {
        let mark = node.mark
        return SourceLocation(file: file, line: mark?.line ?? 1, column: mark?.column ?? 1)
    }

    func child(_ node: Node, path: String) -> YAMLNodeReader {
        YAMLNodeReader(file: file, node: node, path: path, text: text, objectLabel: objectLabel, lines: lines)
    }

    func error(_ kind: PolicyLoadError.Kind, _ message: String, hint: String = "") -> PolicyLoadError {
        PolicyLoadError(kind, at: location, message, hint: hint)
    }

    /// The node as a mapping whose keys must be among `allowed`.
    func mapping(allowed: [String], errors: inout [PolicyLoadError]) -> MappingReader? {
        guard case .mapping(let mapping) = node else {
            errors.append(
                error(
                    .wrongType, "\(path.isEmpty ? "a document" : path) must be a mapping, not \(node.kindDescription)"))
            return nil
        }
        var entries: [String: (key: Node, value: Node)] = [:]
        for (key, value) in mapping {
            guard case .scalar(let scalar) = key else {
                errors.append(error(.wrongType, "keys in \(path) must be strings"))
                continue
            }
            let name = scalar.string
            guard allowed.contains(name) else {
                let suggestion = closestMatch(to: name, among: allowed)
                errors.append(
                    PolicyLoadError(
                        .unknownKey, at: objectLabel == nil ? Self.location(of: key, in: file) : location,
                        "unknown key \"\(name)\" in \(path.isEmpty ? "the document" : path)",
                        hint: suggestion.map { "did you mean \"\($0)\"?" }
                            ?? "allowed keys: \(allowed.joined(separator: ", "))"))
                continue
            }
            entries[name] = (key, value)
        }
        return MappingReader(reader: self, entries: entries)
    }

    /// The node as a sequence; `nil` (with an error) otherwise.
    func sequence(errors: inout [PolicyLoadError]) -> [YAMLNodeReader]? {
        guard case .sequence(let sequence) = node else {
            errors.append(error(.wrongType, "\(path) must be a list, not \(node.kindDescription)"))
            return nil
        }
        return sequence.enumerated().map { child($0.element, path: "\(path)[\($0.offset)]") }
    }

    /// The node as a string scalar (YAML's plain `123` or `true` are accepted as their text).
    func string(errors: inout [PolicyLoadError]) -> String? {
        guard case .scalar(let scalar) = node else {
            errors.append(error(.wrongType, "\(path) must be a string, not \(node.kindDescription)"))
            return nil
        }
        return scalar.string
    }

    /// The node as a list of strings.
    func strings(errors: inout [PolicyLoadError]) -> [(value: String, location: SourceLocation)]? {
        guard let items = sequence(errors: &errors) else { return nil }
        return items.compactMap { item in item.string(errors: &errors).map { ($0, item.contentLocation) } }
    }

    /// The node as an embedded CEL expression, remembering how its text maps back to the file.
    func expression(errors: inout [PolicyLoadError]) -> PolicyExpression? {
        guard case .scalar(let scalar) = node, let source = string(errors: &errors) else {
            if case .scalar = node {
            } else {
                errors.append(error(.wrongType, "\(path) must be a CEL expression string"))
            }
            return nil
        }
        let origin: PolicyExpression.Origin
        if let objectLabel {
            return PolicyExpression(source: source, origin: .synthetic(label: "\(objectLabel) \(path)"))
        }
        switch scalar.style {
        case .literal, .folded:
            origin = .block(indicator: location, firstContentLine: blockContentStart())
        default:
            origin = .inline(start: contentLocation)
        }
        return PolicyExpression(source: source, origin: origin)
    }

    /// Where a block scalar's content begins: the first non-blank line after the `|` or `>`.
    private func blockContentStart() -> SourceLocation {
        let lines = self.lines.of(text)
        var line = location.line + 1
        while line <= lines.count {
            let content = lines[line - 1]
            if let first = content.firstIndex(where: { $0 != " " }) {
                return SourceLocation(
                    file: file, line: line, column: content.distance(from: content.startIndex, to: first) + 1)
            }
            line += 1
        }
        return SourceLocation(file: file, line: location.line + 1, column: 1)
    }
}

/// The entries of one strictly read mapping.
struct MappingReader {
    let reader: YAMLNodeReader
    let entries: [String: (key: Node, value: Node)]

    var location: SourceLocation { reader.location }

    func has(_ key: String) -> Bool { entries[key] != nil }

    /// The value under `key`, if present (an explicit `null` counts as absent).
    func value(_ key: String) -> YAMLNodeReader? {
        guard let entry = entries[key] else { return nil }
        if case .scalar(let scalar) = entry.value, scalar.style == .plain, entry.value.null != nil { return nil }
        let path = reader.path.isEmpty ? key : "\(reader.path).\(key)"
        return reader.child(entry.value, path: path)
    }

    /// The value under `key`, or an error naming the missing key at the mapping's position.
    func required(_ key: String, errors: inout [PolicyLoadError], hint: String = "") -> YAMLNodeReader? {
        if let value = value(key) { return value }
        let path = reader.path.isEmpty ? key : "\(reader.path).\(key)"
        errors.append(PolicyLoadError(.missingKey, at: location, "missing required key \(path)", hint: hint))
        return nil
    }

    func string(_ key: String, errors: inout [PolicyLoadError]) -> String? {
        value(key)?.string(errors: &errors)
    }
}

extension Node {
    var kindDescription: String {
        switch self {
        case .scalar(let scalar): "the scalar \"\(scalar.string)\""
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .alias: "an alias"
        }
    }
}

/// The allowed word closest to a misspelt one, if it is close enough to be a likely typo.
func closestMatch(to word: String, among candidates: [String]) -> String? {
    let scored = candidates.map { ($0, editDistance(word.lowercased(), $0.lowercased())) }
    guard let best = scored.min(by: { $0.1 < $1.1 }) else { return nil }
    return best.1 <= max(2, word.count / 3) ? best.0 : nil
}

func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a)
    let b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            let substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
            current[j] = min(previous[j] + 1, current[j - 1] + 1, substitution)
        }
        swap(&previous, &current)
    }
    return previous[b.count]
}

/// The lines of a file's text, split on first use.
final class SourceLines {
    private var split: [Substring]?
    /// How often the text was split: once per file, however many expressions ask.
    private(set) var splitCount = 0

    func of(_ text: String) -> [Substring] {
        if let split { return split }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        split = lines
        splitCount += 1
        return lines
    }
}
