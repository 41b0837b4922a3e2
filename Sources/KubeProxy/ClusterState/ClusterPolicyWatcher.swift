import Foundation
import Logging
import NIOConcurrencyHelpers
import Policy

/// Keeps the cluster half of ``PolicySources`` equal to the `AccessPolicy` objects in the
/// cluster, so that every replica of the proxy and the webhook enforces what `kubectl apply` last
/// wrote: list, then watch from the list's `resourceVersion`, and list again when the watch
/// expires (410 Gone) or fails.
///
/// A change takes effect as soon as its event arrives (milliseconds after the apiserver stored
/// it). While the apiserver cannot be reached the last set stays in force; the proxy could not
/// forward anything then anyway.
public final class ClusterPolicyWatcher: Sendable {
    public static let collection = "/apis/\(PolicyAPI.group)/\(PolicyAPI.version)/accesspolicies"

    public struct Settings: Sendable {
        /// How long the apiserver keeps one watch open before ending it (it is then resumed from
        /// the last `resourceVersion`, without a new list).
        public var watchSeconds: Int = 300
        /// Silence longer than this means the connection is dead. Bookmarks arrive about once a
        /// minute, and the server ends the watch after `watchSeconds`.
        public var idleLimit: Duration = .seconds(360)
        /// Delay before the first retry after a failure, doubled up to `maximumRetryDelay`.
        public var retryDelay: Duration = .milliseconds(500)
        public var maximumRetryDelay: Duration = .seconds(15)

        public init() {}
    }

    /// What the watcher has achieved so far, for readiness and logs.
    public struct Status: Sendable {
        /// A full list has been applied at least once.
        public var synced = false
        /// The objects in force (those that compiled, with the files' policies).
        public var objectCount = 0
        /// Why the last list, watch or compilation failed; nil once it works again.
        public var problem: String?
    }

    private let client: KubernetesClient
    private let sources: PolicySources
    private let settings: Settings
    private let logger: Logger
    private let state = NIOLockedValueBox(Status())

    public init(client: KubernetesClient, sources: PolicySources, settings: Settings = Settings(), logger: Logger) {
        self.client = client
        self.sources = sources
        self.settings = settings
        self.logger = logger
    }

    public var status: Status { state.withLockedValue { $0 } }

    /// Lists and watches until the task is cancelled.
    public func run() async {
        var delay = settings.retryDelay
        while !Task.isCancelled {
            do {
                try await listAndWatch { delay = self.settings.retryDelay }
            } catch is Expired {
                logger.debug("AccessPolicy watch expired; listing again")
            } catch {
                if Task.isCancelled { return }
                note(problem: "\(error)")
                logger.warning(
                    "AccessPolicy watch failed; the policies in force stay, retrying",
                    metadata: ["error": "\(error)", "retryIn": "\(delay)"])
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, settings.maximumRetryDelay)
            }
        }
    }

    /// Waits until the first list has been applied, or throws after `timeout` with the reason.
    public func waitUntilSynced(timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        while !status.synced {
            guard ContinuousClock.now < deadline else {
                throw ProxyConfiguration.Error(
                    description: "the AccessPolicy objects could not be listed within \(timeout): "
                        + (status.problem ?? "no answer"))
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Thrown when the apiserver no longer has the history a watch resumes from.
    struct Expired: Error {}

    private func listAndWatch(onProgress: () -> Void) async throws {
        let list = try await client.json(.GET, Self.collection)
        var objects = ObjectSet()
        for item in list["items"] as? [[String: Any]] ?? [] { objects.update(item) }
        var resourceVersion = (list["metadata"] as? [String: Any])?["resourceVersion"] as? String ?? ""
        apply(objects, synced: true)
        onProgress()
        while true {
            // A cancelled consumer sees its stream end as if the server had ended it.
            try Task.checkCancellation()
            let started = ContinuousClock.now
            let events = client.watch(
                "\(Self.collection)?resourceVersion=\(resourceVersion)&allowWatchBookmarks=true"
                    + "&timeoutSeconds=\(settings.watchSeconds)",
                idleLimit: settings.idleLimit)
            for try await event in events {
                onProgress()
                switch event.type {
                case "ADDED", "MODIFIED":
                    objects.update(event.object)
                    apply(objects, synced: true)
                case "DELETED":
                    objects.remove(event.object)
                    apply(objects, synced: true)
                case "BOOKMARK":
                    break
                case "ERROR":
                    if event.object["code"] as? Int == 410 { throw Expired() }
                    throw KubernetesClient.Failure(
                        description: "the AccessPolicy watch reported: \(event.object["message"] as? String ?? "?")")
                default:
                    throw KubernetesClient.Failure(description: "unknown watch event type \(event.type)")
                }
                resourceVersion = event.resourceVersion ?? resourceVersion
            }
            // The server ends a watch after `watchSeconds`; one that ends at once would have the
            // loop hammer the apiserver, so it counts as a failure (with backoff and a new list).
            if ContinuousClock.now - started < Self.shortestNormalWatch {
                try Task.checkCancellation()
                throw KubernetesClient.Failure(description: "the AccessPolicy watch ended as soon as it began")
            }
        }
    }

    /// A watch that the server ends sooner than this is taken for a failure.
    static let shortestNormalWatch: Duration = .seconds(1)

    /// Compiles the objects with the files' policies and swaps them in; on errors the previous
    /// set stays and every problem is logged with the object's name.
    private func apply(_ objects: ObjectSet, synced: Bool) {
        let problems = objects.problems
        guard problems.isEmpty else {
            report(problems)
            return
        }
        do {
            try sources.replaceClusterPolicies(objects.policies)
            state.withLockedValue {
                $0.synced = $0.synced || synced
                $0.objectCount = objects.count
                $0.problem = nil
            }
            logger.info("AccessPolicies applied", metadata: ["objects": "\(objects.count)"])
        } catch {
            report(error.errors.map(\.description))
        }
    }

    private func report(_ problems: [String]) {
        note(problem: problems.joined(separator: "\n"))
        logger.error(
            "the AccessPolicy objects in the cluster do not compile; the previous policies stay in force",
            metadata: ["problems": "\(problems.joined(separator: "\n"))"])
    }

    private func note(problem: String) {
        state.withLockedValue { $0.problem = problem }
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
