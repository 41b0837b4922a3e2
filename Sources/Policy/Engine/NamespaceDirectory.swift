/// The labels of every namespace, as last seen by a watch: what `match.namespaceSelector` and
/// `namespaceObject` need, since neither a proxied request nor an admission review carries the
/// namespace's labels.
///
/// Shared by reference: the engine's options hold it across policy reloads, and the watcher
/// updates it in place. A namespace it does not know has unknown labels (nil), which a policy
/// with a namespace selector treats as an evaluation error under its `failurePolicy`.
public final class NamespaceDirectory: Sendable {
    private let namespaces = LockedBox<[String: [String: String]]>([:])

    public init() {}

    public func labels(of namespace: String) -> [String: String]? { namespaces.value[namespace] }

    /// Replaces everything, after a list.
    public func replaceAll(_ labels: [String: [String: String]]) { namespaces.value = labels }

    public func set(_ namespace: String, labels: [String: String]) {
        namespaces.withLock { $0[namespace] = labels }
    }

    public func remove(_ namespace: String) {
        namespaces.withLock { $0[namespace] = nil }
    }
}

extension NamespaceDirectory: Hashable {
    public static func == (left: NamespaceDirectory, right: NamespaceDirectory) -> Bool { left === right }
    public func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(self)) }
}
