import Foundation
import Logging
import Policy

/// What a proxy or webhook replica keeps of the cluster: the AccessPolicy objects (into
/// `sources`) and the namespaces' labels (into `directory`), both watched.
public final class ClusterStateWatchers: Sendable {
    /// How long startup waits for the first lists before giving up.
    public static let syncLimit: Duration = .seconds(30)

    public let policies: ClusterPolicyWatcher
    public let namespaces: NamespaceWatcher
    private let task: Task<Void, Never>

    private init(policies: ClusterPolicyWatcher, namespaces: NamespaceWatcher, task: Task<Void, Never>) {
        self.policies = policies
        self.namespaces = namespaces
        self.task = task
    }

    /// Starts both watches and returns once both have applied a first list; throws (and stops
    /// them) if that takes longer than `syncLimit`.
    public static func start(
        client: KubernetesClient, sources: PolicySources, directory: NamespaceDirectory,
        settings: ListWatch.Settings = .init(), syncLimit: Duration = syncLimit, logger: Logger
    ) async throws -> ClusterStateWatchers {
        let namespaces = NamespaceWatcher(client: client, directory: directory, settings: settings, logger: logger)
        let policies = ClusterPolicyWatcher(client: client, sources: sources, settings: settings, logger: logger)
        let task = Task {
            await withDiscardingTaskGroup { group in
                group.addTask { await namespaces.run() }
                group.addTask { await policies.run() }
            }
        }
        do {
            try await namespaces.waitUntilSynced(timeout: syncLimit)
            try await policies.waitUntilSynced(timeout: syncLimit)
        } catch {
            task.cancel()
            await task.value
            throw error
        }
        return ClusterStateWatchers(policies: policies, namespaces: namespaces, task: task)
    }

    public var synced: Bool { policies.status.synced && namespaces.status.synced }

    /// Stops both watches.
    public func stop() async {
        task.cancel()
        await task.value
    }
}
