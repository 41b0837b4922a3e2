/// Finds the policies that can apply to a request without looking at all of them.
///
/// A policy whose resource patterns all have a literal resource name (`pods`, `pods/exec`,
/// `deployments.apps`) is filed under each `group/resource`; one with wildcards or no resources is
/// a candidate for every request. Within each of those lists, a policy whose verbs are all literal
/// (`get`, `create`) is filed under those verbs only; one with a wildcard verb or none under every
/// verb. Candidates keep the policies' load order, so results are reported in a stable order. The
/// index only narrows: each candidate's match block is still checked in full.
struct PolicyIndex: Sendable {
    /// Group, then resource, to the candidates filed there merged with `everywhere`: merged once
    /// here, and looked up without building a key per request.
    private var byResource: [String: [String: ByVerb]] = [:]
    private var everywhere = ByVerb(positions: [], policies: [])

    /// One candidate list, split by verb.
    private struct ByVerb: Sendable {
        /// Verb to the candidates for requests with that verb.
        let byVerb: [String: [Int]]
        /// The candidates for a verb no policy names literally: those matching any verb.
        let anyVerb: [Int]

        init(positions: [Int], policies: [AccessPolicy]) {
            var literalVerbs: [Int: Set<String>] = [:]
            for position in positions {
                let verbs = policies[position].match.verbs.map(\.literal)
                if !verbs.isEmpty, !verbs.contains(nil) { literalVerbs[position] = Set(verbs.compactMap { $0 }) }
            }
            anyVerb = positions.filter { literalVerbs[$0] == nil }
            var byVerb: [String: [Int]] = [:]
            for verb in Set(literalVerbs.values.joined()) {
                byVerb[verb] = positions.filter { literalVerbs[$0]?.contains(verb) ?? true }
            }
            self.byVerb = byVerb
        }

        func candidates(verb: String) -> [Int] { byVerb[verb] ?? anyVerb }
    }

    init(_ policies: [AccessPolicy]) {
        var specific: [String: [String: [Int]]] = [:]
        var everywhere: [Int] = []
        for (position, policy) in policies.enumerated() {
            let keys = policy.match.resources.map(Self.key)
            if keys.isEmpty || keys.contains(nil) {
                everywhere.append(position)
            } else {
                for key in Set(keys.compactMap { $0 }) {
                    specific[key.group, default: [:]][key.resource, default: []].append(position)
                }
            }
        }
        self.everywhere = ByVerb(positions: everywhere, policies: policies)
        byResource = specific.mapValues {
            $0.mapValues { ByVerb(positions: Self.merge($0, everywhere), policies: policies) }
        }
    }

    /// The index key of a pattern, or nil when the pattern's resource or group is a glob.
    private static func key(_ pattern: ResourcePattern) -> Key? {
        guard let resource = pattern.resource.literal else { return nil }
        switch pattern.group {
        case nil: return Key(group: "", resource: resource)
        case .some(let group): return group.literal.map { Key(group: $0, resource: resource) }
        }
    }

    private struct Key: Hashable {
        let group: String
        let resource: String
    }

    func candidates(group: String, resource: String, verb: String) -> [Int] {
        (byResource[group]?[resource] ?? everywhere).candidates(verb: verb)
    }

    /// Merges two ascending lists, keeping load order.
    private static func merge(_ specific: [Int], _ everywhere: [Int]) -> [Int] {
        var merged: [Int] = []
        merged.reserveCapacity(specific.count + everywhere.count)
        var i = 0
        var j = 0
        while i < specific.count || j < everywhere.count {
            if j == everywhere.count || (i < specific.count && specific[i] < everywhere[j]) {
                merged.append(specific[i])
                i += 1
            } else {
                merged.append(everywhere[j])
                j += 1
            }
        }
        return merged
    }
}
