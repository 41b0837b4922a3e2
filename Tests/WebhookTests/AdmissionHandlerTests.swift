import Foundation
import Policy
import Testing

@testable import Webhook

@Suite("Admission reviews")
struct AdmissionHandlerTests {
    static let policies = """
        apiVersion: portcullis.dev/v1alpha1
        kind: AccessPolicy
        metadata: {name: labels}
        spec:
          match: {resources: [configmaps], operations: [CREATE, UPDATE]}
          rules:
          - {name: team, action: Deny, expression: "!has(object.metadata.labels) || !('team' in object.metadata.labels)", message: configmaps need a team label}
          - {name: note, action: Warn, expression: "object.metadata.name.startsWith('tmp-')", message: temporary configmap}
          - name: stamp
            action: Mutate
            patch:
            - {op: add, path: /metadata/labels/checked, value: "yes"}
            - {op: add, path: /metadata/annotations/owner, valueExpression: "request.user.name"}
        ---
        apiVersion: portcullis.dev/v1alpha1
        kind: AccessPolicy
        metadata: {name: exec}
        spec:
          match: {resources: [pods/exec]}
          rules:
          - {name: no-rm, action: Deny, expression: "exec.command.exists(c, c == 'rm')", message: no rm}
          - {name: psql, action: Review, expression: "exec.command[0] == 'psql'", message: psql needs approval, review: {approvers: {groups: [sre]}}}
          - {name: audit-all, action: Allow}
        """

    static func handler(_ options: AdmissionHandler.Options = .init()) throws -> AdmissionHandler {
        let compiled = try PolicyCompiler.compile(try PolicyLoader.parse(policies, file: "p.yaml"))
        return AdmissionHandler(
            policies: PolicyStore(PolicyEngine(policies: compiled)), options: options,
            now: { Date(timeIntervalSince1970: 1_800_000_000) })
    }

    static func review(
        operation: String = "CREATE", group: String = "", resource: String = "configmaps", subResource: String = "",
        user: String = "alice", groups: [String] = ["developers"], extra: [String: [String]] = [:],
        object: [String: Any]? = ["metadata": ["name": "cm"]], oldObject: [String: Any]? = nil
    ) throws -> AdmissionRequest {
        var request: [String: Any] = [
            "uid": "uid-1", "kind": ["group": group, "version": "v1", "kind": "X"],
            "resource": ["group": group, "version": "v1", "resource": resource], "subResource": subResource,
            "name": "cm", "namespace": "dev", "operation": operation,
            "userInfo": ["username": user, "uid": "u", "groups": groups, "extra": extra], "dryRun": false,
        ]
        request["object"] = object ?? NSNull()
        request["oldObject"] = oldObject ?? NSNull()
        let body = try JSONSerialization.data(withJSONObject: [
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request,
        ])
        return try AdmissionRequest.decode(body)
    }

    @Test("a denial carries 403, the policy message and audit annotations, and echoes the uid")
    func denial() throws {
        let response = try Self.handler().validate(try Self.review())
        #expect(!response.allowed)
        #expect(response.uid == "uid-1")
        #expect(response.statusCode == 403)
        #expect(response.message == "configmaps need a team label")
        #expect(response.auditAnnotations["portcullis.dev/rule"] == "labels/team")
        let json = try #require(try JSONSerialization.jsonObject(with: response.encoded()) as? [String: Any])
        let body = try #require(json["response"] as? [String: Any])
        #expect(body["allowed"] as? Bool == false)
        #expect((body["status"] as? [String: Any])?["code"] as? Int == 403)
    }

    @Test("warnings reach the response of an allowed request")
    func warnings() throws {
        let review = try Self.review(object: ["metadata": ["name": "tmp-x", "labels": ["team": "a"]]])
        let response = try Self.handler().validate(review)
        #expect(response.allowed)
        #expect(response.warnings == ["temporary configmap"])
    }

    @Test("mutation returns a JSON Patch that creates missing parents, and nothing once applied")
    func mutationIsIdempotent() throws {
        let handler = try Self.handler()
        let first = handler.mutate(try Self.review(object: ["metadata": ["name": "cm"]]))
        let patch = try #require(first.patch)
        let operations = try #require(try JSONSerialization.jsonObject(with: patch) as? [[String: Any]])
        #expect(
            operations.map { $0["path"] as? String } == [
                "/metadata/labels", "/metadata/labels/checked", "/metadata/annotations", "/metadata/annotations/owner",
            ])
        #expect(operations[3]["value"] as? String == "alice")
        let mutated: [String: Any] = [
            "metadata": ["name": "cm", "labels": ["checked": "yes"], "annotations": ["owner": "alice"]]
        ]
        #expect(handler.mutate(try Self.review(object: mutated)).patch == nil)
    }

    @Test("CONNECT exec reviews are checked on their command")
    func connectExec() throws {
        let handler = try Self.handler()
        let denied = handler.validate(
            try Self.review(
                operation: "CONNECT", resource: "pods", subResource: "exec",
                object: ["kind": "PodExecOptions", "command": ["rm", "-rf", "/"], "container": "app"]))
        #expect(!denied.allowed)
        #expect(denied.message == "no rm")
        let allowed = handler.validate(
            try Self.review(operation: "CONNECT", resource: "pods", subResource: "exec", object: ["command": ["ls"]]))
        #expect(allowed.allowed)
    }

    @Test("Review is refused straight to the apiserver and left to the proxy's approvals through it")
    func reviewThroughTheProxy() throws {
        let handler = try Self.handler()
        let direct = handler.validate(
            try Self.review(operation: "CONNECT", resource: "pods", subResource: "exec", object: ["command": ["psql"]]))
        #expect(!direct.allowed)
        #expect(direct.message.contains("psql needs approval (approval by group sre is required"))
        let viaProxy = handler.validate(
            try Self.review(
                operation: "CONNECT", resource: "pods", subResource: "exec",
                extra: [AdmissionHandler.proxySessionExtraKey: ["s-9"]], object: ["command": ["psql"]]))
        #expect(viaProxy.allowed)
        #expect(viaProxy.auditAnnotations["portcullis.dev/review"] == "granted through the proxy (session s-9)")
        let deniedEvenViaProxy = handler.validate(
            try Self.review(
                operation: "CONNECT", resource: "pods", subResource: "exec",
                extra: [AdmissionHandler.proxySessionExtraKey: ["s-9"]], object: ["command": ["rm", "-rf", "/"]]))
        #expect(!deniedEvenViaProxy.allowed, "Deny rules hold whatever path the request took")
    }

    @Test("with requireProxy, exec that did not come through the proxy is refused")
    func requireProxy() throws {
        let handler = try Self.handler(
            .init(requireProxyExtraKey: AdmissionHandler.proxySessionExtraKey, proxyExemptUsers: ["oncall"]))
        let direct = try Self.review(
            operation: "CONNECT", resource: "pods", subResource: "exec", object: ["command": ["ls"]])
        #expect(handler.validate(direct).message.contains("must go through the Portcullis proxy"))
        let viaProxy = try Self.review(
            operation: "CONNECT", resource: "pods", subResource: "exec",
            extra: [AdmissionHandler.proxySessionExtraKey: ["s-1"]], object: ["command": ["ls"]])
        #expect(handler.validate(viaProxy).allowed)
        let exempt = try Self.review(
            operation: "CONNECT", resource: "pods", subResource: "exec", user: "oncall", object: ["command": ["ls"]])
        #expect(handler.validate(exempt).allowed)
    }

    @Test("an AccessPolicy that does not compile is refused with its errors by field path")
    func guardsPolicies() throws {
        let policy: [String: Any] = [
            "apiVersion": "portcullis.dev/v1alpha1", "kind": "AccessPolicy", "metadata": ["name": "bad"],
            "spec": [
                "rules": [["name": "r", "action": "Deny", "message": "m", "expression": "request.namespace == "]]
            ],
        ]
        let response = try Self.handler().validate(
            try Self.review(group: "portcullis.dev", resource: "accesspolicies", object: policy))
        #expect(!response.allowed)
        #expect(response.message.contains("AccessPolicy bad spec.rules[0].expression:1:22: error: CEL: Syntax error"))
    }

    static func accessRequest(state: String?, decidedBy: String? = nil, expiresAt: String? = nil) -> [String: Any] {
        var object: [String: Any] = [
            "apiVersion": "portcullis.dev/v1alpha1", "kind": "AccessRequest", "metadata": ["name": "ar"],
            "spec": [
                "requester": ["user": "alice", "groups": ["developers"]],
                "request": ["text": "t", "verb": "create", "resource": "pods/exec", "fingerprint": "f"],
                "policy": "p", "rule": "r", "message": "m", "approvers": ["groups": ["sre"]], "grantFor": "1h",
            ],
        ]
        if let state {
            var status: [String: Any] = ["state": state]
            if let decidedBy { status["decidedBy"] = decidedBy }
            if let expiresAt { status["expiresAt"] = expiresAt }
            object["status"] = status
        }
        return object
    }

    @Test("AccessRequests are decided only by an approver who is not the requester")
    func guardsApprovals() throws {
        let handler = try Self.handler()
        // The handler's clock reads 1_800_000_000 (2027-01-15T08:00:00Z); grantFor is 1h.
        func update(
            _ user: String, _ groups: [String], to state: String, from old: String = "Pending",
            expiresAt: String? = "2027-01-15T09:00:00Z"
        ) throws -> AdmissionResponse {
            handler.validate(
                try Self.review(
                    operation: "UPDATE", group: "portcullis.dev", resource: "accessrequests", subResource: "status",
                    user: user, groups: groups,
                    object: Self.accessRequest(state: state, decidedBy: user, expiresAt: expiresAt),
                    oldObject: Self.accessRequest(state: old)))
        }
        #expect(try update("alice", ["sre"], to: "Approved").message.contains("cannot approve"))
        #expect(try update("eve", ["developers"], to: "Approved").message.contains("not an approver"))
        #expect(try update("bob", ["sre"], to: "Approved").allowed)
        #expect(try update("bob", ["sre"], to: "Denied").allowed)
        #expect(try update("bob", ["sre"], to: "Denied", from: "Approved").message.contains("already Approved"))
        #expect(
            try update("bob", ["sre"], to: "Approved", expiresAt: "2027-01-16T08:00:00Z").message
                .contains("at most grantFor (1h) from now"))
        let created = { (user: String, state: String?) in
            handler.validate(
                try Self.review(
                    group: "portcullis.dev", resource: "accessrequests", user: user,
                    object: Self.accessRequest(state: state)))
        }
        #expect(try created("alice", nil).allowed)
        #expect(try created("alice", "Approved").message.contains("must be Pending"))
        #expect(try created("mallory", nil).message.contains("on behalf of alice"))
    }

    @Test(
        "malformed reviews are refused with the field that is wrong",
        arguments: [
            (
                #"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{}}"#,
                "apiVersion must be admission.k8s.io/v1"
            ),
            (#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#, "request must be an object"),
            (
                #"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"kind":{},"resource":{},"userInfo":{}}}"#,
                "request.operation is missing"
            ),
            ("[1,2]", "the body is not a JSON object"), ("{", "the body is not valid JSON"),
        ])
    func malformed(body: String, message: String) {
        #expect {
            try AdmissionRequest.decode(Data(body.utf8))
        } throws: { error in
            (error as? WebhookError)?.message.hasPrefix(message) == true && (error as? WebhookError)?.httpStatus == 400
        }
    }

    @Test("a body over the limit is refused as too large before parsing")
    func tooLarge() {
        #expect {
            try AdmissionRequest.decode(Data(count: AdmissionRequest.maximumBodyBytes + 1))
        } throws: { error in
            (error as? WebhookError)?.httpStatus == 413
        }
    }

    @Test("a decision on an AccessRequest is stamped with the deciding user and the grant's end")
    func stampsDecisions() throws {
        let review = try Self.review(
            operation: "UPDATE", group: "portcullis.dev", resource: "accessrequests", subResource: "status",
            user: "bob",
            groups: ["sre"], object: Self.accessRequest(state: "Approved", decidedBy: "mallory"),
            oldObject: Self.accessRequest(state: "Pending"))
        let response = try Self.handler().mutate(review)
        let patch = try #require(response.patch)
        let operations = try #require(try JSONSerialization.jsonObject(with: patch) as? [[String: Any]])
        var values: [String: String] = [:]
        for operation in operations {
            if let path = operation["path"] as? String { values[path] = operation["value"] as? String }
        }
        #expect(values["/status/decidedBy"] == "bob")
        #expect(values["/status/decidedAt"] == "2027-01-15T08:00:00Z")
        #expect(values["/status/expiresAt"] == "2027-01-15T09:00:00Z")
    }
}
