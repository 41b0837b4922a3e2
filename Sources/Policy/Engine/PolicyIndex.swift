/// Finds the policies that can apply to a request without looking at all of them.
///
/// A policy whose resource patterns all have a literal resource name (`pods`, `pods/exec`,
/// `deployments.apps`) is filed under each `group/resource`; one with wildcards or no resources is
/// a candidate for every request. Candidates keep the policies' load order, so results are
/// reported in a stable order.
struct PolicyIndex: Sendable {
    private var byResource: [String: [Int]] = [:]
    private var everywhere: [Int] = []

    init(_ policies: [AccessPolicy]) {
        for (position, policy) in policies.enumerated() {
            let keys = policy.match.resources.map(Self.key)
            if keys.isEmpty || keys.contains(nil) {
                everywhere.append(position)
            } else {
                for key in Set(keys.compactMap { $0 }) { byResource[key, default: []].append(position) }
            }
        }
    }

    /// The index key of a pattern, or nil when the pattern's resource or group is a glob.
    private static func key(_ pattern: ResourcePattern) -> String? {
        guard let resource = pattern.resource.literal else { return nil }
        switch pattern.group {
        case nil: return "/" + resource
        case .some(let group): return group.literal.map { "\($0)/\(resource)" }
        }
    }

    func candidates(group: String, resource: String) -> [Int] {
        guard let specific = byResource["\(group)/\(resource)"] else { return everywhere }
        if everywhere.isEmpty { return specific }
        // Both lists are ascending: merge them to keep load order.
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
