import Foundation
import Logging
import NIOConcurrencyHelpers

/// Keeps a local copy of one collection of the Kubernetes API: list, then watch from the list's
/// `resourceVersion`, and list again when the watch expires (410 Gone) or fails. The caller says
/// what a list and an event mean; this does the protocol, the retries and the bookkeeping.
///
/// A watch the server ends normally (after `timeoutSeconds`) is resumed from the last
/// `resourceVersion` without a list. Any failure is retried with a new list, after a backoff
/// (0.5 s doubling up to 15 s), so that deletions missed meanwhile are not kept.
public final class ListWatch: Sendable {
    public struct Settings: Sendable {
        /// How long the apiserver keeps one watch open before ending it.
        public var watchSeconds: Int = 300
        /// Silence longer than this means the connection is dead. Bookmarks arrive about once a
        /// minute, and the server ends the watch after `watchSeconds`.
        public var idleLimit: Duration = .seconds(360)
        /// Delay before the first retry after a failure, doubled up to `maximumRetryDelay`.
        public var retryDelay: Duration = .milliseconds(500)
        public var maximumRetryDelay: Duration = .seconds(15)

        public init() {}
    }

    /// What the watch has achieved so far, for readiness and logs.
    public struct Status: Sendable {
        /// A full list has been applied at least once.
        public var synced = false
        /// Why the last list, watch or change failed; nil once it works again.
        public var problem: String?
    }

    /// A watch that the server ends sooner than this is taken for a failure: otherwise a server
    /// that ends every watch at once would have the loop hammer it.
    static let shortestNormalWatch: Duration = .seconds(1)

    let client: KubernetesClient
    /// The collection's path, e.g. `/api/v1/namespaces`.
    public let collection: String
    /// What the objects are, for messages: "AccessPolicy", "Namespace".
    let kind: String
    let settings: Settings
    let logger: Logger
    private let state = NIOLockedValueBox(Status())

    public init(client: KubernetesClient, collection: String, kind: String, settings: Settings, logger: Logger) {
        self.client = client
        self.collection = collection
        self.kind = kind
        self.settings = settings
        self.logger = logger
    }

    public var status: Status { state.withLockedValue { $0 } }

    /// The outcome of applying a list or an event: applied, or why not (the previous state stays).
    public enum Applied {
        case applied
        case refused(problems: [String])
    }

    /// Lists and watches until the task is cancelled. `onList` gets every item of a list (replace
    /// everything); `onEvent` gets `ADDED`, `MODIFIED` and `DELETED` with their object.
    public func run(
        onList: ([[String: Any]]) -> Applied, onEvent: (String, [String: Any]) -> Applied
    ) async {
        var delay = settings.retryDelay
        while !Task.isCancelled {
            do {
                try await listAndWatch(onList: onList, onEvent: onEvent) { delay = self.settings.retryDelay }
            } catch is Expired {
                logger.debug("\(kind) watch expired; listing again")
            } catch {
                if Task.isCancelled { return }
                note(problem: "\(error)")
                logger.warning(
                    "\(kind) watch failed; the last state stays in force, retrying",
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
                    description: "the \(kind) objects could not be listed within \(timeout): "
                        + (status.problem ?? "no answer"))
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Thrown when the apiserver no longer has the history a watch resumes from.
    struct Expired: Error {}

    private func listAndWatch(
        onList: ([[String: Any]]) -> Applied, onEvent: (String, [String: Any]) -> Applied,
        onProgress: () -> Void
    ) async throws {
        let list = try await client.json(.GET, collection)
        var resourceVersion = (list["metadata"] as? [String: Any])?["resourceVersion"] as? String ?? ""
        record(onList(list["items"] as? [[String: Any]] ?? []), list: true)
        onProgress()
        while true {
            // A cancelled consumer sees its stream end as if the server had ended it.
            try Task.checkCancellation()
            let started = ContinuousClock.now
            resourceVersion = try await client.watch(
                "\(collection)?resourceVersion=\(resourceVersion)&allowWatchBookmarks=true"
                    + "&timeoutSeconds=\(settings.watchSeconds)",
                idleLimit: settings.idleLimit
            ) { events in
                var resourceVersion = resourceVersion
                for try await event in events {
                    onProgress()
                    switch event.type {
                    case "ADDED", "MODIFIED", "DELETED":
                        record(onEvent(event.type, event.object), list: false)
                    case "BOOKMARK":
                        break
                    case "ERROR":
                        if event.object["code"] as? Int == 410 { throw Expired() }
                        throw KubernetesClient.Failure(
                            description: "the \(kind) watch reported: \(event.object["message"] as? String ?? "?")")
                    default:
                        throw KubernetesClient.Failure(description: "unknown watch event type \(event.type)")
                    }
                    resourceVersion = event.resourceVersion ?? resourceVersion
                }
                return resourceVersion
            }
            if ContinuousClock.now - started < Self.shortestNormalWatch {
                try Task.checkCancellation()
                throw KubernetesClient.Failure(description: "the \(kind) watch ended as soon as it began")
            }
        }
    }

    private func record(_ applied: Applied, list: Bool) {
        switch applied {
        case .applied:
            state.withLockedValue {
                $0.synced = $0.synced || list
                $0.problem = nil
            }
        case .refused(let problems):
            note(problem: problems.joined(separator: "\n"))
            logger.error(
                "the \(kind) objects in the cluster were not applied; the last state stays in force",
                metadata: ["problems": "\(problems.joined(separator: "\n"))"])
        }
    }

    private func note(problem: String) {
        state.withLockedValue { $0.problem = problem }
    }
}
