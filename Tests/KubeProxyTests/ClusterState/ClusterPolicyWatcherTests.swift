import Foundation
import Logging
import Policy
import Testing

@testable import KubeProxy

/// The watcher against a scripted apiserver: lists, watches, and what it does when the watch
/// expires, breaks, goes silent or carries an object that does not compile.
@Suite("Watching AccessPolicy objects")
struct ClusterPolicyWatcherTests {
    static func object(_ name: String, expression: String = "true") -> String {
        #"{"apiVersion":"portcullis.dev/v1alpha1","kind":"AccessPolicy","metadata":{"name":"\#(name)","resourceVersion":"1"},"#
            + #""spec":{"rules":[{"name":"r","action":"Deny","expression":"\#(expression)","message":"no"}]}}"#
    }

    static func list(_ names: [String], resourceVersion: String) -> ScriptedAPIServer.Reply {
        .json(
            status: 200,
            body: #"{"kind":"AccessPolicyList","metadata":{"resourceVersion":"\#(resourceVersion)"},"items":["#
                + names.map { object($0) }.joined(separator: ",") + "]}")
    }

    static func event(_ type: String, _ object: String, resourceVersion: String) -> String {
        let versioned = object.replacingOccurrences(
            of: #""resourceVersion":"1""#, with: #""resourceVersion":"\#(resourceVersion)""#)
        return #"{"type":"\#(type)","object":\#(versioned)}"#
    }

    static let expired =
        #"{"type":"ERROR","object":{"kind":"Status","status":"Failure","message":"too old resource version","reason":"Expired","code":410}}"#

    /// A running watcher over a fresh store, stopped when `body` returns.
    static func watching(
        _ server: ScriptedAPIServer, idleLimit: Duration = .seconds(30),
        _ body: (ClusterPolicyWatcher, PolicyStore) async throws -> Void
    ) async throws {
        let store = PolicyStore(PolicyEngine(policies: []))
        var settings = ListWatch.Settings()
        settings.retryDelay = .milliseconds(20)
        settings.idleLimit = idleLimit
        let watcher = ClusterPolicyWatcher(
            client: try KubernetesClient(configuration: server.upstream),
            sources: PolicySources(store: store, files: []), settings: settings,
            logger: Logger(label: "test.watcher"))
        let task = Task { await watcher.run() }
        do {
            try await body(watcher, store)
        } catch {
            task.cancel()
            await task.value
            throw error
        }
        // Stopping must end the loop: `run` returns, and no request follows.
        task.cancel()
        await task.value
        let count = server.requests.count
        try await Task.sleep(for: .milliseconds(100))
        #expect(server.requests.count == count, "requests after the watcher stopped: \(server.requests.suffix(3))")
    }

    static func names(_ store: PolicyStore) -> [String] { store.engine.policies.map(\.policy.name).sorted() }

    /// Polls `condition` for up to 120 s. Generous on purpose: at the start of a full test run,
    /// hundreds of synchronous tests (the CEL conformance cases among them) hold both cooperative
    /// threads for about 20 s, and the watcher's tasks wait with everything else.
    static func eventually(_ what: String, _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(120)
        while !condition() {
            guard ContinuousClock.now < deadline else { throw WatcherTestFailure("not within 120 s: \(what)") }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    struct WatcherTestFailure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    /// A script from the replies to lists and to watches, each in order; past the end, lists
    /// repeat their last reply and watches hang.
    static func script(
        lists: [ScriptedAPIServer.Reply], watches: [ScriptedAPIServer.Reply]
    ) -> @Sendable (ScriptedAPIServer.Request) -> ScriptedAPIServer.Reply {
        { request in
            if request.isWatch {
                return request.index < watches.count ? watches[request.index] : .stream(lines: [], then: .hang)
            }
            return lists[min(request.index, lists.count - 1)]
        }
    }

    @Test("list, then watch from the list's resourceVersion; events add, change and remove policies")
    func listThenWatch() async throws {
        let server = try await ScriptedAPIServer.start(
            script: Self.script(
                lists: [Self.list(["a"], resourceVersion: "10")],
                watches: [
                    .stream(
                        lines: [
                            Self.event("ADDED", Self.object("b"), resourceVersion: "11"),
                            #"{"type":"BOOKMARK","object":{"kind":"AccessPolicy","metadata":{"resourceVersion":"12"}}}"#,
                            Self.event("DELETED", Self.object("a"), resourceVersion: "13"),
                        ], then: .finishAfter(.milliseconds(1200)))
                ]))
        try await Self.watching(server) { watcher, store in
            try await Self.eventually("synced") { watcher.status.synced }
            try await Self.eventually("b alone") { Self.names(store) == ["b"] }
            // The server ended the first watch normally: the next one resumes from the last
            // version seen, without a new list.
            try await Self.eventually("a second watch") { server.requests.count >= 3 }
        }
        let requests = server.requests
        #expect(requests[0] == ClusterPolicyWatcher.collection)
        #expect(requests[1].contains("watch=1") && requests[1].contains("resourceVersion=10"), "\(requests)")
        #expect(requests[2].contains("watch=1") && requests[2].contains("resourceVersion=13"), "\(requests)")
        try await server.close()
    }

    @Test("a watch the server ends at once counts as a failure: a new list follows, after a pause")
    func instantEndRelists() async throws {
        // Every watch ends at once. Without the rule they would be resumed one after another
        // and the second list, which brings b, would never be asked for. (Under a loaded run one
        // may take a second and count as normal; the next one is quick again.)
        let server = try await ScriptedAPIServer.start(
            script: Self.script(
                lists: [Self.list(["a"], resourceVersion: "10"), Self.list(["b"], resourceVersion: "11")],
                watches: Array(repeating: .stream(lines: [], then: .finish), count: 1000)))
        try await Self.watching(server) { watcher, store in
            try await Self.eventually("b alone") { Self.names(store) == ["b"] }
            #expect(watcher.status.problem == nil, "the new list worked")
        }
        try await server.close()
    }

    @Test("an expired watch (410) leads to a new list, whose objects replace the old ones")
    func expiredWatchRelists() async throws {
        let server = try await ScriptedAPIServer.start(
            script: Self.script(
                lists: [Self.list(["a"], resourceVersion: "10"), Self.list(["c"], resourceVersion: "20")],
                watches: [.stream(lines: [Self.expired], then: .finish)]))
        try await Self.watching(server) { _, store in
            try await Self.eventually("c alone") { Self.names(store) == ["c"] }
            try await Self.eventually("a second watch") { server.requests.count >= 4 }
        }
        let requests = server.requests
        #expect(requests[2] == ClusterPolicyWatcher.collection, "\(requests)")
        #expect(requests[3].contains("resourceVersion=20"), "\(requests)")
        try await server.close()
    }

    @Test("a watch dropped mid-stream is retried with a new list: deletions missed meanwhile are not kept")
    func droppedWatchResyncs() async throws {
        let server = try await ScriptedAPIServer.start(
            script: Self.script(
                lists: [Self.list(["a", "b"], resourceVersion: "10"), Self.list(["a"], resourceVersion: "15")],
                watches: [
                    .stream(lines: [Self.event("ADDED", Self.object("c"), resourceVersion: "11")], then: .drop)
                ]))
        try await Self.watching(server) { watcher, store in
            try await Self.eventually("a alone after the resync") { Self.names(store) == ["a"] }
            #expect(watcher.status.synced)
        }
        try await server.close()
    }

    @Test("an object that does not compile leaves the previous set in force and is reported by name")
    func brokenObjectKeepsPreviousSet() async throws {
        let server = try await ScriptedAPIServer.start(
            script: Self.script(
                lists: [Self.list(["a"], resourceVersion: "10")],
                watches: [
                    .stream(
                        lines: [
                            Self.event(
                                "ADDED", Self.object("broken", expression: "request.verb =="), resourceVersion: "11")
                        ], then: .hang)
                ]))
        try await Self.watching(server) { watcher, store in
            try await Self.eventually("the problem reported") { watcher.status.problem != nil }
            #expect(Self.names(store) == ["a"])
            #expect(watcher.status.problem?.contains("AccessPolicy broken") == true, "\(watcher.status)")
        }
        try await server.close()
    }

    @Test("a watch that goes silent past the idle limit is abandoned and replaced")
    func silentWatchIsReplaced() async throws {
        let server = try await ScriptedAPIServer.start(
            script: Self.script(lists: [Self.list(["a"], resourceVersion: "10")], watches: []))
        let started = ContinuousClock.now
        // Counted rather than taken by position: under load, the abandoned watch's request can
        // reach the server after the list that replaces it.
        let lists = { server.requests.filter { $0 == ClusterPolicyWatcher.collection }.count }
        try await Self.watching(server, idleLimit: .milliseconds(300)) { _, _ in
            try await Self.eventually("a second list") { lists() >= 2 }
        }
        #expect(ContinuousClock.now - started >= .milliseconds(300))
        try await server.close()
    }

    @Test("a refused list is retried, and startup gives up with the apiserver's reason")
    func refusedListFailsStartup() async throws {
        let refusal = ScriptedAPIServer.Reply.json(
            status: 403, body: #"{"kind":"Status","code":403,"message":"accesspolicies is forbidden: cannot list"}"#)
        let server = try await ScriptedAPIServer.start(script: Self.script(lists: [refusal], watches: []))
        try await Self.watching(server) { watcher, _ in
            try await Self.eventually("a retry") { server.requests.count >= 2 }
            let error = await #expect(throws: ProxyConfiguration.Error.self) {
                try await watcher.waitUntilSynced(timeout: .milliseconds(100))
            }
            #expect(
                error?.description.contains("accesspolicies is forbidden: cannot list") == true,
                "\(String(describing: error))")
            #expect(!watcher.status.synced)
        }
        try await server.close()
    }
}
