/// Finds the policies that can apply to a request without looking at all of them.
///
/// A policy whose resource patterns all have a literal resource name and group (`pods`,
/// `pods/exec`, `deployments.apps`) is filed under each `group/resource`, and there under its
/// subresource: none (`pods`), a literal one (`pods/exec`), or any (`pods/*`, filed under every
/// subresource of the resource). One with wildcards in a resource or group, or with no resources,
/// is a candidate for every request. Within each of those lists, a policy whose verbs are all
/// literal (`get`, `create`) is filed under those verbs only; one with a wildcard verb or none
/// under every verb. Candidates keep the policies' load order, so results are reported in a stable
/// order. The index only narrows: each candidate's match block is still checked in full, except
/// that a list filed under a literal resource, subresource and verb carries the answers of its
/// candidates' resource and verb checks (`MatchChecks.Lists.kinds`) for exactly those, made here
/// once rather than per request (not for checks that list operations, which the request decides),
/// and leaves out the candidates whose check fails for them.
struct PolicyIndex: Sendable {
    /// Candidate positions in load order; for a list filed under literal keys (`keys`: group,
    /// resource, subresource and verb), the answers of its kind checks for them, and the
    /// candidates whose check does not fail for them.
    struct Candidates: Sendable {
        private let positions: [Int]
        private let kept: [Int]
        private let kinds: CheckAnswers
        private let keys: [String]

        init(positions: [Int], kinds: CheckAnswers = CheckAnswers(), keys: [String] = [], lists: [MatchChecks.Lists]) {
            self.positions = positions
            self.kinds = kinds
            self.keys = keys
            kept = keys.isEmpty ? positions : positions.filter { kinds[lists[$0].kinds] != false }
        }

        /// The candidates for `request` and the answers known for it: those made for `keys` when
        /// the request's fields are them byte for byte, as the checks compare them (dictionary
        /// keys are equal up to Unicode canonical equivalence, which the checks do not follow).
        /// A candidate left out would have failed its kind check.
        func candidates(for request: RequestAttributes) -> (positions: [Int], kinds: CheckAnswers) {
            guard keys.count == 4, CELText.equal(keys[0], request.group), CELText.equal(keys[1], request.resource),
                CELText.equal(keys[2], request.subresource), CELText.equal(keys[3], request.verb)
            else { return (positions, CheckAnswers()) }
            return (kept, kinds)
        }
    }

    /// Group, then resource, to the candidates filed there merged with `everywhere`: merged once
    /// here, and looked up without building a key per request.
    private var byResource: [String: [String: BySubresource]] = [:]
    private var everywhere = ByVerb(positions: [], policies: [], lists: [])

    /// The candidates for one group and resource, split by subresource.
    private struct BySubresource: Sendable {
        /// Subresource ("" for the resource itself) to the candidates for it.
        let bySubresource: [String: ByVerb]
        /// The candidates for a subresource no policy names literally.
        let anySubresource: ByVerb

        func candidates(subresource: String, verb: String) -> Candidates {
            (bySubresource[subresource] ?? anySubresource).candidates(verb: verb)
        }
    }

    /// One candidate list, split by verb.
    private struct ByVerb: Sendable {
        /// Verb to the candidates for requests with that verb.
        let byVerb: [String: Candidates]
        /// The candidates for a verb no policy names literally: those matching any verb.
        let anyVerb: Candidates

        /// `request`: the group, resource and subresource of every request that meets these
        /// candidates, when they are literal (the kind checks are then answered per verb).
        init(
            positions: [Int], policies: [AccessPolicy], lists: [MatchChecks.Lists],
            request: (group: String, resource: String, subresource: String)? = nil
        ) {
            var literalVerbs: [Int: Set<String>] = [:]
            for position in positions {
                let verbs = policies[position].match.verbs.map(\.literal)
                if !verbs.isEmpty, !verbs.contains(nil) { literalVerbs[position] = Set(verbs.compactMap { $0 }) }
            }
            anyVerb = Candidates(positions: positions.filter { literalVerbs[$0] == nil }, lists: lists)
            var byVerb: [String: Candidates] = [:]
            for verb in Set(literalVerbs.values.joined()) {
                let candidates = positions.filter { literalVerbs[$0]?.contains(verb) ?? true }
                var kinds = CheckAnswers()
                if let request {
                    for position in candidates {
                        let match = policies[position].match
                        guard match.operations.isEmpty, lists[position].kinds != MatchChecks.Lists.none else {
                            continue
                        }
                        kinds[lists[position].kinds] = match.kindsMatch(
                            group: request.group, resource: request.resource, subresource: request.subresource,
                            verb: verb)
                    }
                }
                byVerb[verb] = Candidates(
                    positions: candidates, kinds: kinds,
                    keys: request.map { [$0.group, $0.resource, $0.subresource, verb] } ?? [], lists: lists)
            }
            self.byVerb = byVerb
        }

        func candidates(verb: String) -> Candidates { byVerb[verb] ?? anyVerb }
    }

    /// The policies filed under one group and resource, before merging.
    private struct Filed {
        var bySubresource: [String: Set<Int>] = [:]
        var anySubresource: Set<Int> = []
    }

    /// `lists`: the numbers of each policy's match block parts (`MatchChecks`).
    init(_ policies: [AccessPolicy], lists: [MatchChecks.Lists]) {
        var specific: [String: [String: Filed]] = [:]
        var everywhere: [Int] = []
        for (position, policy) in policies.enumerated() {
            let keys = policy.match.resources.map(Self.key)
            if keys.isEmpty || keys.contains(nil) {
                everywhere.append(position)
                continue
            }
            for key in keys.compactMap({ $0 }) {
                if let subresource = key.subresource {
                    specific[key.group, default: [:]][key.resource, default: Filed()]
                        .bySubresource[subresource, default: []].insert(position)
                } else {
                    specific[key.group, default: [:]][key.resource, default: Filed()].anySubresource.insert(position)
                }
            }
        }
        self.everywhere = ByVerb(positions: everywhere, policies: policies, lists: lists)
        byResource = Dictionary(
            uniqueKeysWithValues: specific.map { group, byResource in
                (
                    group,
                    Dictionary(
                        uniqueKeysWithValues: byResource.map { resource, filed in
                            let anySubresource = filed.anySubresource.union(everywhere)
                            let bySubresource = Dictionary(
                                uniqueKeysWithValues: filed.bySubresource.map { subresource, positions in
                                    (
                                        subresource,
                                        ByVerb(
                                            positions: positions.union(anySubresource).sorted(), policies: policies,
                                            lists: lists, request: (group, resource, subresource))
                                    )
                                })
                            return (
                                resource,
                                BySubresource(
                                    bySubresource: bySubresource,
                                    anySubresource: ByVerb(
                                        positions: anySubresource.sorted(), policies: policies, lists: lists))
                            )
                        })
                )
            })
    }

    /// The index key of a pattern, or nil when the pattern's resource or group is a glob.
    private static func key(_ pattern: ResourcePattern) -> Key? {
        guard let resource = pattern.resource.literal else { return nil }
        let subresource: String?
        switch pattern.subresource {
        case nil: subresource = ""
        case .some(let glob): subresource = glob.literal
        }
        switch pattern.group {
        case nil: return Key(group: "", resource: resource, subresource: subresource)
        case .some(let group): return group.literal.map { Key(group: $0, resource: resource, subresource: subresource) }
        }
    }

    private struct Key: Hashable {
        let group: String
        let resource: String
        /// "" for the resource itself, nil for any subresource (a glob).
        let subresource: String?
    }

    func candidates(group: String, resource: String, subresource: String, verb: String) -> Candidates {
        guard let filed = byResource[group]?[resource] else { return everywhere.candidates(verb: verb) }
        return filed.candidates(subresource: subresource, verb: verb)
    }
}
