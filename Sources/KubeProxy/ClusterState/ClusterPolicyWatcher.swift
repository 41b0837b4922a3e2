import Foundation
import Logging
import Policy

/// Keeps the cluster half of ``PolicySources`` equal to the `AccessPolicy` objects in the
/// cluster, so that every replica of the proxy and the webhook enforces what `kubectl apply` last
/// wrote, as soon as the watch event arrives (milliseconds after the apiserver stored it).
///
/// Objects and files are compiled as one set: a set that does not compile (an object that
/// bypassed the webhook's validation, a name used twice) leaves the previous set in force and is
/// reported with every problem. Until a first list compiles, the watcher is not synced, so a proxy
/// does not start with half its policies.
public final class ClusterPolicyWatcher: Sendable {
    public static let collection = "/apis/\(PolicyAPI.group)/\(PolicyAPI.version)/accesspolicies"

    private let sources: PolicySources
    private let watch: ListWatch
    private let logger: Logger

    public init(
        client: KubernetesClient, sources: PolicySources, settings: ListWatch.Settings = .init(), logger: Logger
    ) {
        self.sources = sources
        self.logger = logger
        watch = ListWatch(
            client: client, collection: Self.collection, kind: "AccessPolicy", settings: settings, logger: logger)
    }

    public var status: ListWatch.Status { watch.status }

    /// Lists and watches until the task is cancelled.
    public func run() async {
        var objects = ObjectSet()
        await watch.run(
            onList: { items in
                objects = ObjectSet()
                for item in items { objects.update(item) }
                return apply(objects)
            },
            onEvent: { type, object in
                if type == "DELETED" { objects.remove(object) } else { objects.update(object) }
                return apply(objects)
            })
    }

    /// Waits until the first list has been applied, or throws after `timeout` with the reason.
    public func waitUntilSynced(timeout: Duration) async throws {
        try await watch.waitUntilSynced(timeout: timeout)
    }

    private func apply(_ objects: ObjectSet) -> ListWatch.Applied {
        let problems = objects.problems
        guard problems.isEmpty else { return .refused(problems: problems) }
        do {
            try sources.replaceClusterPolicies(objects.policies)
        } catch {
            return .refused(problems: error.errors.map(\.description))
        }
        logger.info("AccessPolicies applied", metadata: ["objects": "\(objects.count)"])
        return .applied
    }
}

/// The AccessPolicy objects last seen, by name, each parsed once as it arrives.
private struct ObjectSet {
    private var parsed: [String: Result<AccessPolicy, PolicyLoadErrors>] = [:]

    var count: Int { parsed.count }

    mutating func update(_ object: [String: Any]) {
        guard let name = Self.name(of: object) else { return }
        do throws(PolicyLoadErrors) {
            guard let policy = try PolicyLoader.parseObject(object, label: "AccessPolicy \(name)").first else {
                return
            }
            parsed[name] = .success(policy)
        } catch {
            parsed[name] = .failure(error)
        }
    }

    mutating func remove(_ object: [String: Any]) {
        if let name = Self.name(of: object) { parsed[name] = nil }
    }

    /// In name order, so that every replica compiles the same list.
    var policies: [AccessPolicy] {
        parsed.sorted { $0.key < $1.key }.compactMap { try? $0.value.get() }
    }

    var problems: [String] {
        parsed.sorted { $0.key < $1.key }.flatMap { entry -> [String] in
            guard case .failure(let errors) = entry.value else { return [] }
            return errors.errors.map(\.description)
        }
    }

    private static func name(of object: [String: Any]) -> String? {
        (object["metadata"] as? [String: Any])?["name"] as? String
    }
}
