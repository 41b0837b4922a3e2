import Foundation
import Sandbox
import TestSupport
import Testing

/// Captures the AdmissionReviews the real kube-apiserver sends for a handful of requests, the
/// golden fixtures in `Tests/WebhookTests/Fixtures` (decoded and decided by the unit tests, and
/// replayed by `WebhookBenchmark`).
///
/// With `UPDATE_GOLDEN=1` the bodies are written verbatim, byte for byte as received. Otherwise the
/// fresh captures are compared with the committed ones by shape (every key path, arrays
/// collapsed): values such as uids, timestamps and the random namespace differ per run, but a
/// field the apiserver adds, drops or moves fails the test.
@Suite("Golden AdmissionReviews from the real apiserver", .serialized, .timeLimit(.minutes(5)))
struct GoldenReviewCaptureTests {
    static let directory = Paths.packageRoot.appendingPathComponent("Tests/WebhookTests/Fixtures")

    @Test("the apiserver's reviews for create, update, delete, connect, dry run and status have the golden shape")
    func captureOrCompare() async throws {
        let (namespace, _, cluster) = try await WebhookIntegrationTests.Fixture.shared.start()
        let captured = try await Self.capture(namespace: namespace, cluster: cluster)
        #expect(captured.count == 7, "every scenario produced its review: \(captured.keys.sorted())")
        let update = ProcessInfo.processInfo.environment["UPDATE_GOLDEN"] == "1"
        if update { try FileManager.default.createDirectory(at: Self.directory, withIntermediateDirectories: true) }
        for (name, body) in captured.sorted(by: { $0.key < $1.key }) {
            let file = Self.directory.appendingPathComponent("\(name).json")
            if update { try body.write(to: file) }
            guard let golden = try? Data(contentsOf: file) else {
                Issue.record("\(file.path) is missing; run the integration tests with UPDATE_GOLDEN=1")
                continue
            }
            let (fresh, committed) = (try Self.shape(of: body), try Self.shape(of: golden))
            #expect(
                fresh == committed,
                "\(name): new \(fresh.subtracting(committed).sorted()), gone \(committed.subtracting(fresh).sorted())")
        }
    }

    /// Runs each scenario through kubectl and picks the review it caused, by fixture name.
    static func capture(namespace: String, cluster: ClusterDescription) async throws -> [String: Data] {
        typealias Run = WebhookIntegrationTests
        let reviews = Run.reviews
        func kubectl(_ arguments: [String], as user: String = "admin", input: String? = nil) async throws {
            _ = try await Run.run("1.33", ["-n", namespace] + arguments, as: user, input: input, cluster: cluster)
        }
        var captured: [String: Data] = [:]
        func keep(_ name: String, _ entry: ReviewLog.Entry?) {
            if let entry { captured[name] = entry.body } else { Issue.record("no review captured for \(name)") }
        }

        try await kubectl(
            ["apply", "-f", "-"],
            input: Run.pod("golden-pod", namespace: namespace, labels: "team: platform", privileged: true))
        keep("create-pod", reviews.last("validate", operation: "CREATE", resource: "pods", name: "golden-pod"))

        try await kubectl(["create", "configmap", "tmp-golden", "--from-literal=size=1"])
        try await kubectl(["label", "configmap", "tmp-golden", "tier=cache"])
        keep(
            "update-configmap",
            reviews.last("validate", operation: "UPDATE", resource: "configmaps", name: "tmp-golden"))

        try await kubectl(["create", "configmap", "keep-golden", "--from-literal=size=1"])
        try await kubectl(["delete", "configmap", "keep-golden"])
        keep(
            "delete-configmap",
            reviews.last("validate", operation: "DELETE", resource: "configmaps", name: "keep-golden"))

        try await kubectl(["exec", "shell", "--", "rm", "-rf", "/tmp/golden"])
        keep(
            "connect-pods-exec",
            reviews.last("validate", operation: "CONNECT", resource: "pods", subResource: "exec", name: "shell") {
                ($0["object"] as? [String: Any])?["command"] as? [String] == ["rm", "-rf", "/tmp/golden"]
            })

        let deployment = """
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: golden-api, namespace: \(namespace)}
            spec:
              selector: {matchLabels: {app: api}}
              template: {metadata: {labels: {app: api}}, spec: {containers: [{name: app, image: portcullis/local}]}}
            """
        try await kubectl(["apply", "--dry-run=server", "-f", "-"], input: deployment)
        keep(
            "create-deployment-dry-run",
            reviews.last("validate", operation: "CREATE", resource: "deployments", name: "golden-api") {
                $0["dryRun"] as? Bool == true
            })

        let accessRequest = """
            apiVersion: portcullis.dev/v1alpha1
            kind: AccessRequest
            metadata: {name: golden-ar, namespace: \(namespace)}
            spec:
              requester: {user: alice, groups: [developers]}
              request: {text: "exec in prod/db-0: psql", verb: create, resource: pods/exec, namespace: prod, name: db-0, command: psql, fingerprint: "0000000000000000"}
              policy: psql-approval
              rule: psql-needs-approval
              message: psql needs approval
              approvers: {groups: [sre]}
              grantFor: 1h
            """
        try await kubectl(["create", "-f", "-"], as: "alice", input: accessRequest)
        try await kubectl(
            [
                "patch", "accessrequest", "golden-ar", "--subresource=status", "--type=merge", "-p",
                #"{"status":{"state":"Approved","decidedBy":"bob"}}"#,
            ], as: "bob")
        for endpoint in ["validate", "mutate"] {
            keep(
                endpoint == "validate" ? "update-accessrequest-status" : "update-accessrequest-status-mutate",
                reviews.last(
                    endpoint, operation: "UPDATE", resource: "accessrequests", subResource: "status", name: "golden-ar")
            )
        }
        return captured
    }

    /// Every key path in a JSON document, arrays collapsed to `[]`, map keys that are data
    /// (labels, annotations, managed fields) kept: they are part of what the apiserver sends.
    static func shape(of body: Data) throws -> Set<String> {
        var paths: Set<String> = []
        func walk(_ value: Any, _ path: String) {
            if let object = value as? [String: Any] {
                for (key, child) in object { walk(child, path + "." + key) }
            } else if let array = value as? [Any] {
                for child in array { walk(child, path + "[]") }
            }
            paths.insert(path)
        }
        walk(try JSONSerialization.jsonObject(with: body), "")
        return paths
    }
}
