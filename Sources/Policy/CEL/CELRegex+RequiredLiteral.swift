/// A literal that every match of a pattern contains, found from its syntax tree: a text without
/// it cannot match, which a byte search tells far sooner than the VM (as RE2 skips ahead to a
/// literal prefix). `^\s*rm\s+-[a-z]*f` needs "rm", `\b(apt-get|apk)\s+install\b` " install"
/// is not found (the alternation and `\s+` break it) but "install" is.
///
/// Only case-sensitive literals count; alternations, classes and optional parts contribute
/// nothing, so the answer errs towards the empty literal (no filter), never towards a wrong one.
struct CELRegexRequiredLiteral {
    /// What is known of the texts one node matches.
    private struct Facts {
        /// The literal the node always matches exactly, if it does.
        var exact: [Unicode.Scalar]?
        /// A literal every match starts with, and one every match ends with.
        var prefix: [Unicode.Scalar] = []
        var suffix: [Unicode.Scalar] = []
        /// The longest literal known to occur in every match.
        var required: [Unicode.Scalar] = []

        static let nothing = Facts()

        static func exactly(_ literal: [Unicode.Scalar]) -> Facts {
            Facts(exact: literal, prefix: literal, suffix: literal, required: literal)
        }
    }

    /// Longer literals are cut to this many UTF-8 bytes: any part of a required literal is
    /// required too, and a short needle keeps the search to a few comparisons per byte.
    static let maxLength = 16

    /// The UTF-8 bytes of the literal; empty when nothing is known.
    let bytes: [UInt8]

    init(_ tree: CELRegexNode) {
        let literal = Self.facts(tree).required
        var bytes: [UInt8] = []
        for scalar in literal {
            let encoded = Array(String(scalar).utf8)
            if bytes.count + encoded.count > Self.maxLength { break }
            bytes += encoded
        }
        self.bytes = bytes
    }

    private static func facts(_ node: CELRegexNode) -> Facts {
        switch node {
        case .empty, .assertion:
            // Zero-width: the literals on either side stay adjacent in the text.
            return .exactly([])
        case .literal(let scalar, let foldCase):
            guard !foldCase || CELRegexClass.caseVariants(scalar).count == 1 else { return .nothing }
            return .exactly([scalar])
        case .set, .anyCharacter, .alternation:
            return .nothing
        case .concatenation(let items):
            return concatenation(items.map(facts))
        case .repetition(let inner, let minimum, let maximum, _):
            guard minimum > 0 else { return .nothing }
            let once = facts(inner)
            if let exact = once.exact, minimum == maximum, exact.count * minimum <= maxLength {
                return .exactly(Array(repeatElement(exact, count: minimum).joined()))
            }
            // The first repeat starts the match and the last ends it; consecutive repeats may
            // join literals, which is only ever more than this.
            return Facts(prefix: once.prefix, suffix: once.suffix, required: once.required)
        }
    }

    /// Literals of consecutive items join: the run ends at the first item not matched exactly,
    /// continued by its prefix, and starts again with its suffix.
    private static func concatenation(_ items: [Facts]) -> Facts {
        var run: [Unicode.Scalar] = []
        var best: [Unicode.Scalar] = []
        var prefix: [Unicode.Scalar]?
        for item in items {
            if let exact = item.exact {
                run += exact
                continue
            }
            run += item.prefix
            if prefix == nil { prefix = run }
            if run.count > best.count { best = run }
            if item.required.count > best.count { best = item.required }
            run = item.suffix
        }
        if run.count > best.count { best = run }
        guard let prefix else { return .exactly(run) }
        return Facts(prefix: prefix, suffix: run, required: best)
    }

    /// Whether `text` contains the literal; true when it is empty or the text is not contiguous
    /// UTF-8. UTF-8 is self-synchronising, so a byte match is a match of whole scalars.
    func occurs(in text: String) -> Bool {
        guard let first = bytes.first else { return true }
        let found = text.utf8.withContiguousStorageIfAvailable { haystack -> Bool in
            guard haystack.count >= bytes.count else { return false }
            var position = 0
            let last = haystack.count - bytes.count
            while position <= last {
                if haystack[position] == first {
                    var offset = 1
                    while offset < bytes.count && haystack[position + offset] == bytes[offset] { offset += 1 }
                    if offset == bytes.count { return true }
                }
                position += 1
            }
            return false
        }
        return found ?? true
    }
}
