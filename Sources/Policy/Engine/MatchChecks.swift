/// The parts of the policies' match blocks, numbered so that one request checks each distinct
/// part once: policies copy match blocks from each other, and a request often meets dozens of
/// candidates with a handful of distinct parts (`resources: [pods/exec], verbs: [create]`,
/// `namespaces: ["prod", "prod-*"]`, `subjects: [{group: developers}]`).
struct MatchChecks: Sendable {
    /// For each policy (by position), the numbers of its lists, side by side in one array so
    /// that ruling a candidate out on an answer already known reads a few bytes, not the policy.
    let lists: [Lists]

    struct Lists: Sendable {
        /// The number of the resources, verbs and operations together, or `none` when all three
        /// are empty.
        let kinds: Int32
        /// The number of the namespace list, or `none` when the policy has none.
        let namespaces: Int32
        /// The number of the subject list, or `none` when the policy has none.
        let subjects: Int32

        static let none: Int32 = -1
        /// Lists whose answers are not kept.
        static let unnumbered = Lists(kinds: none, namespaces: none, subjects: none)
    }

    /// The parts of a match block that say which requests (rather than whose, or where) it selects.
    private struct Kinds: Hashable {
        let resources: [ResourcePattern]
        let verbs: [Glob]
        let operations: [AccessPolicy.Operation]
        var isEmpty: Bool { resources.isEmpty && verbs.isEmpty && operations.isEmpty }
    }

    init(_ policies: [AccessPolicy]) {
        var kindNumbers: [Kinds: Int32] = [:]
        var namespaceNumbers: [[Glob]: Int32] = [:]
        var subjectNumbers: [[SubjectPattern]: Int32] = [:]
        func number<List: Hashable>(_ list: List, isEmpty: Bool, in numbers: inout [List: Int32]) -> Int32 {
            guard !isEmpty else { return Lists.none }
            if let number = numbers[list] { return number }
            let number = Int32(numbers.count)
            numbers[list] = number
            return number
        }
        lists = policies.map { policy in
            let match = policy.match
            let kinds = Kinds(resources: match.resources, verbs: match.verbs, operations: match.operations)
            return Lists(
                kinds: number(kinds, isEmpty: kinds.isEmpty, in: &kindNumbers),
                namespaces: number(match.namespaces, isEmpty: match.namespaces.isEmpty, in: &namespaceNumbers),
                subjects: number(match.subjects, isEmpty: match.subjects.isEmpty, in: &subjectNumbers))
        }
    }
}

/// The answers of one request's match block parts, by number.
struct MatchAnswers {
    var kinds = CheckAnswers()
    var namespaces = CheckAnswers()
    var subjects = CheckAnswers()
}

/// The answers given so far for one request to numbered checks: the first 64 are kept in two
/// words, without allocating; others (and unnumbered checks) are not kept.
struct CheckAnswers {
    private var known: UInt64 = 0
    private var answers: UInt64 = 0

    /// The answer of check `number`, when it has been given.
    subscript(number: Int32) -> Bool? {
        get {
            guard number >= 0, number < UInt64.bitWidth else { return nil }
            let bit: UInt64 = 1 << UInt64(number)
            return known & bit == 0 ? nil : answers & bit != 0
        }
        set {
            guard number >= 0, number < UInt64.bitWidth, let newValue else { return }
            let bit: UInt64 = 1 << UInt64(number)
            known |= bit
            if newValue { answers |= bit } else { answers &= ~bit }
        }
    }
}
