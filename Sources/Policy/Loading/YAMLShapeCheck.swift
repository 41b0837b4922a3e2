internal import CYaml

/// Screens a YAML stream with libyaml's event parser before Yams builds its node tree, for the
/// two shapes that make loading take time exponential in the text's size:
/// - aliases that multiply ("billion laughs": each anchor repeats the previous one ten times), which
///   every walk over the tree expands;
/// - lists or mappings used as mapping keys, which Yams hashes whole (aliases included) to find
///   duplicate keys. Policy documents only ever have string keys.
///
/// Anything libyaml itself rejects passes here, so that Yams reports the syntax error as usual.
enum YAMLShapeCheck {
    /// How many nodes aliases may add beyond those written in the text: sharing a few rules or
    /// subject lists stays far below it.
    static let aliasedNodeAllowance = 100_000

    /// The first problem in `text`, or nil.
    static func problem(in text: String, file: String) -> PolicyLoadError? {
        var utf8 = Array(text.utf8)
        guard !utf8.isEmpty else { return nil }
        return utf8.withUnsafeMutableBufferPointer { bytes in
            var parser = yaml_parser_t()
            guard yaml_parser_initialize(&parser) == 1 else { return nil }
            defer { yaml_parser_delete(&parser) }
            yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING)
            yaml_parser_set_input_string(&parser, bytes.baseAddress, bytes.count)
            var walk = Walk()
            var event = yaml_event_t()
            while yaml_parser_parse(&parser, &event) == 1 {
                defer { yaml_event_delete(&event) }
                if event.type == YAML_STREAM_END_EVENT { return nil }
                if let message = walk.take(event) {
                    return PolicyLoadError(
                        .yamlSyntax,
                        at: SourceLocation(
                            file: file, line: Int(event.start_mark.line) + 1, column: Int(event.start_mark.column) + 1),
                        message.text, hint: message.hint)
                }
            }
            return nil
        }
    }

    /// Node counts along the event stream.
    private struct Walk {
        struct Collection {
            let isMapping: Bool
            let anchor: String?
            var children = 0
            /// Nodes in this collection once aliases are expanded, itself included.
            var size = 1
        }

        var open: [Collection] = []
        /// Expanded size of every anchored node, and whether it is a list or mapping.
        var anchors: [String: (size: Int, isCollection: Bool)] = [:]
        var writtenNodes = 0
        var aliasedNodes = 0

        /// Whether the next node is a mapping key.
        var atKey: Bool {
            guard let parent = open.last else { return false }
            return parent.isMapping && parent.children % 2 == 0
        }

        mutating func take(_ event: yaml_event_t) -> (text: String, hint: String)? {
            switch event.type {
            case YAML_SCALAR_EVENT:
                writtenNodes += 1
                finish(size: 1, isCollection: false, anchor: Self.name(event.data.scalar.anchor))
            case YAML_ALIAS_EVENT:
                let target = Self.name(event.data.alias.anchor).flatMap { anchors[$0] } ?? (1, false)
                if target.isCollection && atKey { return Self.collectionKey }
                aliasedNodes += target.size
                if aliasedNodes > writtenNodes + YAMLShapeCheck.aliasedNodeAllowance {
                    return (
                        "YAML aliases expand to more than \(aliasedNodes) nodes, far more than the document holds",
                        "use anchors and aliases to share a value, not to multiply it"
                    )
                }
                finish(size: target.size, isCollection: target.isCollection, anchor: nil)
            case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
                if atKey { return Self.collectionKey }
                writtenNodes += 1
                let anchor =
                    event.type == YAML_SEQUENCE_START_EVENT
                    ? event.data.sequence_start.anchor : event.data.mapping_start.anchor
                open.append(Collection(isMapping: event.type == YAML_MAPPING_START_EVENT, anchor: Self.name(anchor)))
            case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                guard let done = open.popLast() else { return nil }
                finish(size: done.size, isCollection: true, anchor: done.anchor)
            default:
                break
            }
            return nil
        }

        private mutating func finish(size: Int, isCollection: Bool, anchor: String?) {
            if let anchor { anchors[anchor] = (size, isCollection) }
            guard !open.isEmpty else { return }
            open[open.count - 1].children += 1
            open[open.count - 1].size += size
        }

        static let collectionKey = (
            "a mapping key is a list or mapping; policy documents only have string keys",
            "quote the key if it is meant as text"
        )

        static func name(_ anchor: UnsafeMutablePointer<yaml_char_t>?) -> String? {
            anchor.map { String(cString: $0) }
        }
    }
}
