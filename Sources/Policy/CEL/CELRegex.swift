/// An RE2-compatible regular expression, compiled to a Pike VM program that runs in time
/// linear in the input (no backtracking), over Unicode scalars.
///
/// Semantics follow RE2 as cel-go uses it: `matches` is an unanchored search, matches are
/// leftmost-first (Perl-like preference), `^`/`$` anchor at the text's ends unless `(?m)`,
/// `\b`, `\d`, `\w`, `\s` are ASCII-only. Not supported: Unicode script classes (`\p{Greek}`);
/// they fail to compile with `.invalidArgument` rather than behave differently.
struct CELRegex: Sendable {
    enum Instruction: Sendable {
        case scalar(Unicode.Scalar)
        case scalars([Unicode.Scalar])
        case set(Int)
        case anyCharacter
        case anyExceptNewline
        /// Try `first`, then `second` (priority order).
        case split(Int, Int)
        case jump(Int)
        case assertion(CELRegexAssertion)
        case match
    }

    private let program: [Instruction]
    private let sets: [CELRegexClass]
    /// A literal every match contains: a text without it is not searched (and the search's work
    /// is not spent, nor charged).
    private let required: CELRegexRequiredLiteral

    init(_ pattern: String) throws(CELError) {
        var parser = CELRegexParser(pattern)
        let tree = try parser.parse()
        var compiler = Compiler()
        try compiler.emit(tree)
        compiler.program.append(.match)
        program = compiler.program
        sets = compiler.sets
        required = CELRegexRequiredLiteral(tree)
    }

    // MARK: - Compilation

    private struct Compiler {
        var program: [Instruction] = []
        var sets: [CELRegexClass] = []

        mutating func append(_ instruction: Instruction) throws(CELError) -> Int {
            guard program.count < CELLimits.maxRegexProgramSize else {
                throw CELError(.invalidArgument, "error parsing regexp: expression too large")
            }
            program.append(instruction)
            return program.count - 1
        }

        mutating func emit(_ node: CELRegexNode) throws(CELError) {
            switch node {
            case .empty:
                break
            case .literal(let scalar, let foldCase):
                let variants = foldCase ? CELRegexClass.caseVariants(scalar) : [scalar]
                _ = try append(variants.count == 1 ? .scalar(scalar) : .scalars(variants))
            case .set(let set):
                sets.append(set)
                _ = try append(.set(sets.count - 1))
            case .anyCharacter(let matchesNewline):
                _ = try append(matchesNewline ? .anyCharacter : .anyExceptNewline)
            case .concatenation(let items):
                for item in items { try emit(item) }
            case .alternation(let branches):
                var jumps: [Int] = []
                for (index, branch) in branches.enumerated() {
                    if index < branches.count - 1 {
                        let split = try append(.split(0, 0))
                        try emit(branch)
                        jumps.append(try append(.jump(0)))
                        program[split] = .split(split + 1, program.count)
                    } else {
                        try emit(branch)
                    }
                }
                for jump in jumps { program[jump] = .jump(program.count) }
            case .repetition(let inner, let minimum, let maximum, let greedy):
                for _ in 0..<minimum { try emit(inner) }
                if let maximum {
                    // Nested optionals: (x(x(x)?)?)?
                    var splits: [Int] = []
                    for _ in minimum..<maximum {
                        splits.append(try append(.split(0, 0)))
                        try emit(inner)
                    }
                    for split in splits {
                        program[split] = greedy ? .split(split + 1, program.count) : .split(program.count, split + 1)
                    }
                } else {
                    let split = try append(.split(0, 0))
                    try emit(inner)
                    _ = try append(.jump(split))
                    program[split] = greedy ? .split(split + 1, program.count) : .split(program.count, split + 1)
                }
            case .assertion(let assertion):
                _ = try append(.assertion(assertion))
            }
        }
    }

    // MARK: - Matching

    /// The number of instructions: what compiling the pattern built.
    var instructionCount: Int { program.count }

    /// The VM's work so far (threads advanced and instructions visited), for callers that charge
    /// for it; a search stops once it passes `limit`. A search is linear in the text, but
    /// `allMatches` searches again after each match and a program can be large.
    struct Work {
        var steps = 0
        let limit: Int
        var exceeded: Bool { steps > limit }

        static var unlimited: Work { Work(limit: .max) }
    }

    /// Whether the pattern matches anywhere in `text`.
    func matches(_ text: String) -> Bool {
        var work = Work.unlimited
        return matches(text, work: &work)
    }

    /// Whether the pattern matches anywhere in `text`; false once `work` is exceeded.
    func matches(_ text: String, work: inout Work) -> Bool {
        guard required.occurs(in: text) else { return false }
        // An ASCII text's UTF-8 bytes are its scalars: searched in place, without decoding it
        // into an array first.
        var asciiWork = work
        let ascii = text.utf8.withContiguousStorageIfAvailable { bytes -> Bool? in
            guard bytes.allSatisfy({ $0 < 0x80 }) else { return nil }
            let scalars = bytes.lazy.map { Unicode.Scalar($0) }
            return search(scalars, from: 0, stopAtFirst: true, work: &asciiWork) != nil
        }
        if case .some(.some(let matched)) = ascii {
            work = asciiWork
            return matched
        }
        return search(Array(text.unicodeScalars), from: 0, stopAtFirst: true, work: &work) != nil
    }

    /// The leftmost-first match in `text`, or nil.
    func firstMatch(in text: String) -> String? {
        var work = Work.unlimited
        return firstMatch(in: text, work: &work)
    }

    /// The leftmost-first match in `text`, or nil (also once `work` is exceeded).
    func firstMatch(in text: String, work: inout Work) -> String? {
        guard required.occurs(in: text) else { return nil }
        let input = Array(text.unicodeScalars)
        guard let range = search(input, from: 0, stopAtFirst: false, work: &work) else { return nil }
        return CELText.string(input[range])
    }

    /// Successive non-overlapping matches, at most `limit` of them (all when negative).
    func allMatches(in text: String, limit: Int) -> [String] {
        var work = Work.unlimited
        return allMatches(in: text, limit: limit, work: &work)
    }

    /// Successive non-overlapping matches, at most `limit` of them (all when negative); those
    /// found before `work` is exceeded.
    func allMatches(in text: String, limit: Int, work: inout Work) -> [String] {
        guard required.occurs(in: text) else { return [] }
        let input = Array(text.unicodeScalars)
        var results: [String] = []
        var start = 0
        var lastEnd = -1
        while limit < 0 || results.count < limit, start <= input.count,
            let range = search(input, from: start, stopAtFirst: false, work: &work)
        {
            if range.isEmpty && range.lowerBound == lastEnd {
                // An empty match right after the previous match is skipped, as Go does.
                start = range.lowerBound + 1
                continue
            }
            results.append(CELText.string(input[range]))
            lastEnd = range.upperBound
            start = range.isEmpty ? range.upperBound + 1 : range.upperBound
        }
        return results
    }

    /// The ranges of successive non-overlapping, non-empty matches in `input` (stream masking).
    func matchRanges(in input: [Unicode.Scalar]) -> [Range<Int>] {
        var work = Work.unlimited
        var ranges: [Range<Int>] = []
        var start = 0
        while start < input.count, let range = search(input, from: start, stopAtFirst: false, work: &work) {
            if range.isEmpty {
                start = range.lowerBound + 1
                continue
            }
            ranges.append(range)
            start = range.upperBound
        }
        return ranges
    }

    private struct Thread {
        let pc: Int
        let start: Int
    }

    /// Runs the Pike VM from `from`; returns the leftmost-first match's range, or nil when there
    /// is none or `work` is exceeded.
    private func search<Input: RandomAccessCollection<Unicode.Scalar>>(
        _ input: Input, from: Int, stopAtFirst: Bool, work: inout Work
    ) -> Range<Int>? where Input.Index == Int {
        // A list holds each instruction at most once per position: reserved at that size once
        // rather than grown by doubling in the first steps of every search.
        var current: [Thread] = []
        current.reserveCapacity(program.count)
        var next: [Thread] = []
        next.reserveCapacity(program.count)
        var marks = [Int](repeating: -1, count: program.count)
        var stack: [Thread] = []
        stack.reserveCapacity(program.count)
        var matched: Range<Int>?
        var generation = 0
        var position = from
        while true {
            // `current` was built with `generation`; the start thread joins it with the same marks.
            if matched == nil {
                // A new thread starting here has the lowest priority.
                add(
                    Thread(pc: 0, start: position), to: &current, at: position, input, &marks, generation, &stack, &work
                )
            }
            if work.exceeded { return nil }
            if current.isEmpty {
                // Nothing can match from here; try a start at the next position.
                if matched != nil || position >= input.count { break }
                position += 1
                generation += 1
                continue
            }
            generation += 1
            work.steps += current.count
            let scalar: Unicode.Scalar? = position < input.count ? input[position] : nil
            threads: for thread in current {
                switch program[thread.pc] {
                case .match:
                    matched = thread.start..<position
                    if stopAtFirst { return matched }
                    // Lower-priority threads cannot win any more.
                    break threads
                case .scalar(let expected):
                    if scalar == expected {
                        add(
                            Thread(pc: thread.pc + 1, start: thread.start), to: &next, at: position + 1, input, &marks,
                            generation, &stack, &work)
                    }
                case .scalars(let options):
                    if let scalar, options.contains(scalar) {
                        add(
                            Thread(pc: thread.pc + 1, start: thread.start), to: &next, at: position + 1, input, &marks,
                            generation, &stack, &work)
                    }
                case .set(let index):
                    if let scalar, sets[index].contains(scalar) {
                        add(
                            Thread(pc: thread.pc + 1, start: thread.start), to: &next, at: position + 1, input, &marks,
                            generation, &stack, &work)
                    }
                case .anyCharacter:
                    if scalar != nil {
                        add(
                            Thread(pc: thread.pc + 1, start: thread.start), to: &next, at: position + 1, input, &marks,
                            generation, &stack, &work)
                    }
                case .anyExceptNewline:
                    if let scalar, scalar != "\n" {
                        add(
                            Thread(pc: thread.pc + 1, start: thread.start), to: &next, at: position + 1, input, &marks,
                            generation, &stack, &work)
                    }
                case .split, .jump, .assertion:
                    break
                }
            }
            if position >= input.count { break }
            swap(&current, &next)
            next.removeAll(keepingCapacity: true)
            position += 1
            if current.isEmpty && matched != nil { break }
        }
        return matched
    }

    /// Adds a thread and everything reachable from it without consuming input, in priority order.
    private func add<Input: RandomAccessCollection<Unicode.Scalar>>(
        _ thread: Thread, to list: inout [Thread], at position: Int, _ input: Input, _ marks: inout [Int],
        _ generation: Int, _ stack: inout [Thread], _ work: inout Work
    ) where Input.Index == Int {
        stack.append(thread)
        while let top = stack.popLast() {
            work.steps += 1
            guard marks[top.pc] != generation else { continue }
            marks[top.pc] = generation
            switch program[top.pc] {
            case .jump(let target):
                stack.append(Thread(pc: target, start: top.start))
            case .split(let first, let second):
                stack.append(Thread(pc: second, start: top.start))
                stack.append(Thread(pc: first, start: top.start))
            case .assertion(let assertion):
                if holds(assertion, at: position, input) { stack.append(Thread(pc: top.pc + 1, start: top.start)) }
            default:
                list.append(top)
            }
        }
    }

    private func holds<Input: RandomAccessCollection<Unicode.Scalar>>(
        _ assertion: CELRegexAssertion, at position: Int, _ input: Input
    ) -> Bool where Input.Index == Int {
        let before: Unicode.Scalar? = position > 0 ? input[position - 1] : nil
        let after: Unicode.Scalar? = position < input.count ? input[position] : nil
        switch assertion {
        case .beginText: return position == 0
        case .endText: return position == input.count
        case .beginLine: return position == 0 || before == "\n"
        case .endLine: return position == input.count || after == "\n"
        case .wordBoundary: return isWord(before) != isWord(after)
        case .notWordBoundary: return isWord(before) == isWord(after)
        }
    }

    private func isWord(_ scalar: Unicode.Scalar?) -> Bool {
        // RE2's \w is ASCII: letters, digits and underscore (the only ASCII alphabetic scalars
        // are the letters, so this is the Unicode property without its table lookup).
        guard let scalar, scalar.isASCII else { return false }
        return ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || scalar.isASCIIDigit || scalar == "_"
    }
}
