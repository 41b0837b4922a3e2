import Foundation
import Testing

@testable import Policy
@testable import Webhook

/// The AdmissionReviews in `Fixtures/` were sent by a real kube-apiserver 1.20 (captured by
/// `GoldenReviewCaptureTests` in IntegrationTests; regenerate with `UPDATE_GOLDEN=1`). Each is
/// decoded as it came and decided against the policies it was captured with: the shipped
/// examples and the integration tests' own.
@Suite("Golden AdmissionReviews from the real apiserver")
struct GoldenReviewTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
        "Fixtures")
    static let packageRoot = fixtures.deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// What the webhook must answer for one captured review.
    struct Expectation: Sendable, CustomTestStringConvertible {
        var fixture: String
        var endpoint = "validate"
        var operation: String
        var resource: String
        var subResource = ""
        var dryRun = false
        var hasOldObject = false
        var allowed: Bool
        /// The denial's message, exactly.
        var message = ""
        var rule: String?
        var warnings: [String] = []

        var testDescription: String { fixture }
    }

    static let expectations: [Expectation] = [
        .init(
            fixture: "create-pod", operation: "CREATE", resource: "pods", allowed: false,
            message: "privileged containers are not allowed", rule: "no-privileged-pods/no-privileged-containers",
            warnings: [
                "pods need a cost-center label (test-cost-center/cost-center-required, not enforced: mode Warn)"
            ]),
        .init(
            fixture: "update-configmap", operation: "UPDATE", resource: "configmaps", hasOldObject: true,
            allowed: true, warnings: ["temporary configmaps are deleted nightly"]),
        .init(
            fixture: "delete-configmap", operation: "DELETE", resource: "configmaps", hasOldObject: true,
            allowed: false, message: "configmaps named keep-* are never deleted", rule: "test-configmap-deletes/keep"),
        .init(
            fixture: "connect-pods-exec", operation: "CONNECT", resource: "pods", subResource: "exec", allowed: false,
            message: "rm is not allowed through exec here", rule: "test-exec/no-rm"),
        .init(
            fixture: "create-deployment-dry-run", operation: "CREATE", resource: "deployments", dryRun: true,
            allowed: false, message: #"the Deployment golden-api needs a non-empty "team" label"#,
            rule: "required-labels/team-label-required"),
        .init(
            fixture: "update-accessrequest-status", operation: "UPDATE", resource: "accessrequests",
            subResource: "status", hasOldObject: true, allowed: true),
        .init(
            fixture: "update-accessrequest-status-mutate", endpoint: "mutate", operation: "UPDATE",
            resource: "accessrequests", subResource: "status", hasOldObject: true, allowed: true),
    ]

    static func body(_ fixture: String) throws -> Data {
        try Data(contentsOf: fixtures.appendingPathComponent("\(fixture).json"))
    }

    /// The policies in force when the fixtures were captured.
    static func engine() throws -> PolicyEngine {
        try PolicyEngine(paths: [
            packageRoot.appendingPathComponent("manifests/policies/examples").path,
            packageRoot.appendingPathComponent("Tests/IntegrationTests/Fixtures/webhook-policies.yaml").path,
        ])
    }

    /// The moment of the captured decision, for the checks that compare against the clock.
    static func decidedAt(_ request: AdmissionRequest) -> Date? {
        ((request.object?["status"] as? [String: Any])?["decidedAt"] as? String).flatMap(AccessRequest.parseTimestamp)
    }

    @Test("every fixture on disk has an expectation, and every expectation a fixture")
    func fixturesAndExpectationsMatch() throws {
        let onDisk = try FileManager.default.contentsOfDirectory(atPath: Self.fixtures.path)
            .filter { $0.hasSuffix(".json") }.map { String($0.dropLast(".json".count)) }
        #expect(Set(onDisk) == Set(Self.expectations.map(\.fixture)))
    }

    @Test("each captured review decodes as sent and gets its decision", arguments: expectations)
    func decide(expected: Expectation) throws {
        let body = try Self.body(expected.fixture)
        let request = try AdmissionRequest.decode(body)
        #expect(request.uid == AdmissionRequest.uid(in: body))
        #expect(request.operation == expected.operation)
        #expect(request.resource.resource == expected.resource)
        #expect(request.subResource == expected.subResource)
        #expect(request.dryRun == expected.dryRun)
        #expect((request.oldObject != nil) == expected.hasOldObject)
        #expect(!request.userInfo.username.isEmpty)
        let now = Self.decidedAt(request) ?? Date()
        let handler = AdmissionHandler(policies: PolicyStore(try Self.engine()), now: { now })
        let response = expected.endpoint == "mutate" ? handler.mutate(request) : handler.validate(request)
        #expect(response.uid == request.uid)
        #expect(response.allowed == expected.allowed, "\(response.message)")
        #expect(response.message == expected.message)
        #expect(response.warnings == expected.warnings)
        if let rule = expected.rule {
            #expect(response.auditAnnotations["portcullis.dev/rule"] == rule)
        }
    }

    @Test("the captured exec review carries the command of kubectl exec")
    func execCommand() throws {
        let request = try AdmissionRequest.decode(try Self.body("connect-pods-exec"))
        #expect(request.object?["kind"] as? String == "PodExecOptions")
        #expect(request.name == "shell")
        let attributes = AdmissionHandler(policies: PolicyStore(try Self.engine())).attributes(for: request)
        #expect(attributes.exec?.command == ["rm", "-rf", "/tmp/golden"])
    }

    @Test("the captured approval is stamped with the approver and a one-hour grant")
    func approvalStamp() throws {
        let request = try AdmissionRequest.decode(try Self.body("update-accessrequest-status-mutate"))
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let response = AdmissionHandler(policies: PolicyStore(try Self.engine()), now: { now }).mutate(request)
        let patch = try #require(response.patch)
        let operations = try #require(try JSONSerialization.jsonObject(with: patch) as? [[String: Any]])
        var values: [String: String] = [:]
        for operation in operations {
            if let path = operation["path"] as? String { values[path] = operation["value"] as? String }
        }
        // kubectl sent decidedBy itself; the patch replaces it only when it names someone else.
        let sent = (request.object?["status"] as? [String: Any])?["decidedBy"] as? String
        #expect((values["/status/decidedBy"] ?? sent) == request.userInfo.username)
        #expect(values["/status/decidedAt"] == "2027-01-15T08:00:00Z")
        #expect(values["/status/expiresAt"] == "2027-01-15T09:00:00Z")
    }

    @Test("the captured DELETE review has no object and the deleted one as oldObject")
    func deleteCarriesOldObject() throws {
        let request = try AdmissionRequest.decode(try Self.body("delete-configmap"))
        #expect(request.object == nil)
        #expect((request.oldObject?["metadata"] as? [String: Any])?["name"] as? String == "keep-golden")
    }

    @Test(
        "object and oldObject are the values converted in full, and only what the policies read is converted",
        arguments: expectations)
    func deferredObjects(expected: Expectation) throws {
        let request = try AdmissionRequest.decode(try Self.body(expected.fixture))
        let engine = try Self.engine()
        let attributes = AdmissionHandler(policies: PolicyStore(engine)).attributes(for: request)
        let decision = engine.evaluate(attributes, now: Self.decidedAt(request) ?? Date())
        for (value, source) in [(attributes.object, request.object), (attributes.oldObject, request.oldObject)] {
            guard let source else {
                #expect(value == nil)
                continue
            }
            guard case .map(let map)? = value, let deferred = map.deferredValues else {
                Issue.record("not a deferred map: \(String(describing: value))")
                continue
            }
            // Before the comparison below, which reads everything.
            if decision.results.isEmpty {
                #expect(deferred.convertedCount == 0, "no policy matched, yet fields were converted")
            } else {
                #expect(deferred.convertedCount < map.count, "the policies read only some top-level fields")
            }
            #expect(value == (try CELValue(jsonObject: source)))
        }
    }
}
