import Policy

/// Masks matches of Mask rules' `patterns` in one output stream of an exec or attach session, even
/// when a match arrives split across frames.
///
/// The last ``window`` bytes are held back, since a match may begin there and end in a frame still
/// to come; everything before them is final once no match can start in it and still be growing,
/// so it goes out masked. Frames are scanned only once another window's worth has arrived, so each
/// byte is scanned about twice however small the frames (a terminal's are often one byte). The
/// caller flushes what is held when the stream ends or goes quiet
/// (``flush()``), so a prompt or a keystroke's echo is delayed, never lost. Matches longer than
/// the window can be cut in two, and each part is still masked if it matches on its own.
struct StreamOutputMasker: Sendable {
    /// The longest match that is always seen whole.
    static let window = 1024

    struct Rule: Sendable {
        var pattern: OutputPattern
        var replacement: [UInt8]
    }

    private let rules: [Rule]
    private var pending: [UInt8] = []
    /// How many matches were masked, for the audit record.
    private(set) var maskedCount = 0

    init(rules: [Rule]) {
        self.rules = rules
    }

    /// The masks of a decision that apply to stream output, or nil when none does.
    init?(masks: [Decision.Mask]) {
        var rules: [Rule] = []
        for mask in masks {
            for source in mask.spec.patterns {
                // The loader validated the pattern with the same engine; one that no longer
                // compiles is left out rather than failing the session.
                guard let pattern = try? OutputPattern(source) else { continue }
                rules.append(Rule(pattern: pattern, replacement: Array(mask.spec.replacement.utf8)))
            }
        }
        guard !rules.isEmpty else { return nil }
        self.init(rules: rules)
    }

    /// Whether bytes are held back waiting for the next frame or a flush.
    var hasPending: Bool { !pending.isEmpty }

    /// Takes the next frame; returns the bytes that are final, masked.
    mutating func consume(_ bytes: some Collection<UInt8>) -> [UInt8] {
        pending.append(contentsOf: bytes)
        guard pending.count >= 2 * Self.window else { return [] }
        let cut = pending.count - Self.window
        let matches = Self.merge(rules.map { ($0, $0.pattern.matches(in: pending)) })
        // A match that starts before the cut has seen all it can depend on: it goes out whole.
        var end = cut
        for (range, _) in matches where range.lowerBound < cut { end = max(end, range.upperBound) }
        let output = mask(upTo: end, matches: matches.filter { $0.range.lowerBound < cut })
        pending.removeFirst(end)
        return output
    }

    /// Everything held back, masked: at the end of the stream, or when it has gone quiet.
    mutating func flush() -> [UInt8] {
        guard !pending.isEmpty else { return [] }
        let matches = Self.merge(rules.map { ($0, $0.pattern.matches(in: pending)) })
        let output = mask(upTo: pending.count, matches: matches)
        pending = []
        return output
    }

    private mutating func mask(upTo end: Int, matches: [(range: Range<Int>, rule: Rule)]) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(end)
        var position = 0
        for (range, rule) in matches {
            output.append(contentsOf: pending[position..<range.lowerBound])
            output.append(contentsOf: rule.replacement)
            position = range.upperBound
            maskedCount += 1
        }
        output.append(contentsOf: pending[position..<end])
        return output
    }

    /// The matches of all rules, earliest first; where two overlap the earlier (then the longer)
    /// wins, so every byte is masked at most once.
    static func merge(_ found: [(Rule, [Range<Int>])]) -> [(range: Range<Int>, rule: Rule)] {
        let all = found.flatMap { rule, ranges in ranges.map { (range: $0, rule: rule) } }
            .sorted {
                $0.range.lowerBound != $1.range.lowerBound
                    ? $0.range.lowerBound < $1.range.lowerBound : $0.range.count > $1.range.count
            }
        var chosen: [(range: Range<Int>, rule: Rule)] = []
        for candidate in all where candidate.range.lowerBound >= (chosen.last?.range.upperBound ?? 0) {
            chosen.append(candidate)
        }
        return chosen
    }
}
