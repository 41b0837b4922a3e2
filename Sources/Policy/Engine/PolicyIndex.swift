/// Finds the policies that can apply to a request without looking at all of them.
///
/// A policy whose resource patterns all have a literal resource name and group (`pods`,
/// `pods/exec`, `deployments.apps`) is filed under each `group/resource`, and there under its
/// subresource: none (`pods`), a literal one (`pods/exec`), or any (`pods/*`, filed under every
/// subresource of the resource). One with wildcards in a resource or group, or with no resources,
/// is a candidate for every request. Within each of those lists, a policy whose verbs are all
/// literal (`get`, `create`) is filed under those verbs only; one with a wildcard verb or none
/// under every verb. Candidates keep the policies' load order, so results are reported in a stable
/// order. The index only narrows: each candidate's match block is still checked in full.
struct PolicyIndex: Sendable {
    /// Group, then resource, to the candidates filed there merged with `everywhere`: merged once
    /// here, and looked up without building a key per request.
    private var byResource: [String: [String: BySubresource]] = [:]
    private var everywhere = ByVerb(positions: [], policies: [])

    /// The candidates for one group and resource, split by subresource.
    private struct BySubresource: Sendable {
        /// Subresource ("" for the resource itself) to the candidates for it.
        let bySubresource: [String: ByVerb]
        /// The candidates for a subresource no policy names literally.
        let anySubresource: ByVerb

        func candidates(subresource: String, verb: String) -> [Int] {
            (bySubresource[subresource] ?? anySubresource).candidates(verb: verb)
        }
    }

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

    /// The policies filed under one group and resource, before merging.
    private struct Filed {
        var bySubresource: [String: Set<Int>] = [:]
        var anySubresource: Set<Int> = []
    }

    init(_ policies: [AccessPolicy]) {
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
        self.everywhere = ByVerb(positions: everywhere, policies: policies)
        byResource = specific.mapValues {
            $0.mapValues { filed in
                let anySubresource = filed.anySubresource.union(everywhere)
                return BySubresource(
                    bySubresource: filed.bySubresource.mapValues {
                        ByVerb(positions: $0.union(anySubresource).sorted(), policies: policies)
                    },
                    anySubresource: ByVerb(positions: anySubresource.sorted(), policies: policies))
            }
        }
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

    func candidates(group: String, resource: String, subresource: String, verb: String) -> [Int] {
        guard let filed = byResource[group]?[resource] else { return everywhere.candidates(verb: verb) }
        return filed.candidates(subresource: subresource, verb: verb)
    }
}
