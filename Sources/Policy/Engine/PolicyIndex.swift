/// Finds the policies that can apply to a request without looking at all of them.
///
/// A policy whose resource patterns all have a literal resource name (`pods`, `pods/exec`,
/// `deployments.apps`) is filed under each `group/resource`; one with wildcards or no resources is
/// a candidate for every request. Candidates keep the policies' load order, so results are
/// reported in a stable order.
struct PolicyIndex: Sendable {
    /// Group, then resource, to the positions of the policies filed there merged with
    /// `everywhere`: merged once here, and looked up without building a key per request.
    private var byResource: [String: [String: [Int]]] = [:]
    private var everywhere: [Int] = []

    init(_ policies: [AccessPolicy]) {
        var specific: [String: [String: [Int]]] = [:]
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
        byResource = specific.mapValues { $0.mapValues { Self.merge($0, everywhere) } }
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

    func candidates(group: String, resource: String) -> [Int] {
        byResource[group]?[resource] ?? everywhere
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
