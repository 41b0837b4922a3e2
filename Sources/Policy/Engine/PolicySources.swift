/// The policies in force when they come from two places: files (reloaded on SIGHUP) and
/// `AccessPolicy` objects in the cluster (pushed by a watch). Either side may change on its own;
/// the union is compiled and swapped into the ``PolicyStore`` as one set.
///
/// As with files alone, a set that does not compile (a broken object, a name used by a file and an
/// object) leaves the previous set in force and reports every problem.
public final class PolicySources: Sendable {
    public let store: PolicyStore
    private let state: LockedBox<State>

    private struct State: Sendable {
        var files: [AccessPolicy]
        var cluster: [AccessPolicy]
    }

    /// Starts with the policies `store` already holds, counted as coming from files.
    public init(store: PolicyStore, files: [AccessPolicy]) {
        self.store = store
        state = LockedBox(State(files: files, cluster: []))
    }

    /// Reloads the files; the cluster's policies stay as they are.
    @discardableResult
    public func reloadFiles(paths: [String]) throws(PolicyLoadErrors) -> PolicyEngine {
        let files = try PolicyLoader.load(paths: paths)
        return try update { $0.files = files }
    }

    /// Replaces the policies that came from the cluster; the files' stay as they are.
    @discardableResult
    public func replaceClusterPolicies(_ policies: [AccessPolicy]) throws(PolicyLoadErrors) -> PolicyEngine {
        try update { $0.cluster = policies }
    }

    /// Applies `change` and compiles the result; the state is only kept if it compiles, and the
    /// lock is held throughout so that two sources never interleave.
    private func update(_ change: (inout State) -> Void) throws(PolicyLoadErrors) -> PolicyEngine {
        try state.withLock { (current: inout State) throws(PolicyLoadErrors) -> PolicyEngine in
            var next = current
            change(&next)
            let engine = try store.replace(with: next.files + next.cluster)
            current = next
            return engine
        }
    }
}
