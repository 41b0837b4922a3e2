import Foundation
import Logging
import Policy

/// Keeps a ``NamespaceDirectory`` equal to the namespaces in the cluster and their labels, for
/// policies that select namespaces by label (`match.namespaceSelector`, `namespaceObject`):
/// neither a proxied request nor an admission review carries them.
public final class NamespaceWatcher: Sendable {
    public static let collection = "/api/v1/namespaces"

    public let directory: NamespaceDirectory
    private let watch: ListWatch

    public init(
        client: KubernetesClient, directory: NamespaceDirectory, settings: ListWatch.Settings = .init(),
        logger: Logger
    ) {
        self.directory = directory
        watch = ListWatch(
            client: client, collection: Self.collection, kind: "Namespace", settings: settings, logger: logger)
    }

    public var status: ListWatch.Status { watch.status }

    /// Lists and watches until the task is cancelled.
    public func run() async {
        let directory = self.directory
        await watch.run(
            onList: { items in
                var all: [String: [String: String]] = [:]
                for item in items {
                    if let (name, labels) = Self.labels(of: item) { all[name] = labels }
                }
                directory.replaceAll(all)
                return .applied
            },
            onEvent: { type, object in
                guard let (name, labels) = Self.labels(of: object) else {
                    return .refused(problems: ["a Namespace event without a name"])
                }
                if type == "DELETED" { directory.remove(name) } else { directory.set(name, labels: labels) }
                return .applied
            })
    }

    /// Waits until the first list has been applied, or throws after `timeout` with the reason.
    public func waitUntilSynced(timeout: Duration) async throws {
        try await watch.waitUntilSynced(timeout: timeout)
    }

    static func labels(of object: [String: Any]) -> (String, [String: String])? {
        let metadata = object["metadata"] as? [String: Any]
        guard let name = metadata?["name"] as? String else { return nil }
        return (name, metadata?["labels"] as? [String: String] ?? [:])
    }
}
