import Foundation

/// An `admission.k8s.io/v1` AdmissionReview request, decoded strictly: a review that is not what
/// the apiserver sends is refused with a 400 that says which field is wrong, rather than
/// evaluated with guessed values. (Not `Sendable`: it holds JSONSerialization output and lives
/// for one review on one event loop.)
public struct AdmissionRequest {
    public struct GroupVersionKind: Sendable, Hashable {
        public var group: String
        public var version: String
        public var kind: String
    }

    public struct GroupVersionResource: Sendable, Hashable {
        public var group: String
        public var version: String
        public var resource: String
    }

    public struct UserInfo: Sendable, Hashable {
        public var username: String
        public var uid: String
        public var groups: [String]
        public var extra: [String: [String]]
    }

    public var uid: String
    public var kind: GroupVersionKind
    public var resource: GroupVersionResource
    public var subResource: String
    public var name: String
    public var namespace: String
    /// CREATE, UPDATE, DELETE or CONNECT.
    public var operation: String
    public var userInfo: UserInfo
    /// The JSON objects, as parsed by JSONSerialization (nil when absent or `null`).
    public var object: [String: Any]?
    public var oldObject: [String: Any]?
    public var dryRun: Bool

    /// The largest review body read. The apiserver's own request limit is 3 MiB and a review
    /// carries the object twice on UPDATE, plus the envelope.
    public static let maximumBodyBytes = 8 * 1024 * 1024

    /// Decodes the body of a POST from the apiserver.
    public static func decode(_ body: Data) throws(WebhookError) -> AdmissionRequest {
        guard body.count <= maximumBodyBytes else {
            throw WebhookError(
                .bodyTooLarge, "the AdmissionReview has \(body.count) bytes; the limit is \(maximumBodyBytes)")
        }
        let root: [String: Any]
        do {
            guard let object = try JSONSerialization.jsonObject(with: body) as? [String: Any] else {
                throw WebhookError(.malformedReview, "the body is not a JSON object")
            }
            root = object
        } catch let error as WebhookError {
            throw error
        } catch {
            throw WebhookError(.malformedReview, "the body is not valid JSON")
        }
        var reader = FieldReader(path: "")
        guard try reader.string(root, "apiVersion") == "admission.k8s.io/v1" else {
            throw WebhookError(
                .malformedReview, "apiVersion must be admission.k8s.io/v1 (configure admissionReviewVersions: [v1])")
        }
        guard try reader.string(root, "kind") == "AdmissionReview" else {
            throw WebhookError(.malformedReview, "kind must be AdmissionReview")
        }
        let request = try reader.object(root, "request")
        reader = FieldReader(path: "request.")
        let kind = try reader.object(request, "kind")
        let resource = try reader.object(request, "resource")
        let user = try reader.object(request, "userInfo")
        let operation = try reader.string(request, "operation")
        guard ["CREATE", "UPDATE", "DELETE", "CONNECT"].contains(operation) else {
            throw WebhookError(
                .malformedReview, "request.operation \"\(operation)\" is not CREATE, UPDATE, DELETE or CONNECT")
        }
        var extra: [String: [String]] = [:]
        if let values = user["extra"] as? [String: Any] {
            for (key, value) in values { extra[key] = value as? [String] ?? [] }
        }
        return AdmissionRequest(
            uid: try reader.string(request, "uid"),
            kind: .init(
                group: try reader.optionalString(kind, "group"), version: try reader.string(kind, "version"),
                kind: try reader.string(kind, "kind")),
            resource: .init(
                group: try reader.optionalString(resource, "group"), version: try reader.string(resource, "version"),
                resource: try reader.string(resource, "resource")),
            subResource: try reader.optionalString(request, "subResource"),
            name: try reader.optionalString(request, "name"),
            namespace: try reader.optionalString(request, "namespace"),
            operation: operation,
            userInfo: .init(
                username: try reader.optionalString(user, "username"), uid: try reader.optionalString(user, "uid"),
                groups: user["groups"] as? [String] ?? [], extra: extra),
            object: request["object"] as? [String: Any],
            oldObject: request["oldObject"] as? [String: Any],
            dryRun: request["dryRun"] as? Bool ?? false)
    }

    /// The review's `uid`, if the body has one, so even a refused review can be answered by uid.
    public static func uid(in body: Data) -> String? {
        let root = try? JSONSerialization.jsonObject(with: body) as? [String: Any]
        return (root?["request"] as? [String: Any])?["uid"] as? String
    }
}

/// Reads required and optional string fields, naming the field on error.
private struct FieldReader {
    let path: String

    func string(_ object: [String: Any], _ key: String) throws(WebhookError) -> String {
        guard let value = object[key] else { throw WebhookError(.malformedReview, "\(path)\(key) is missing") }
        guard let text = value as? String, !text.isEmpty else {
            throw WebhookError(.malformedReview, "\(path)\(key) must be a non-empty string")
        }
        return text
    }

    func optionalString(_ object: [String: Any], _ key: String) throws(WebhookError) -> String {
        guard let value = object[key], !(value is NSNull) else { return "" }
        guard let text = value as? String else {
            throw WebhookError(.malformedReview, "\(path)\(key) must be a string")
        }
        return text
    }

    func object(_ object: [String: Any], _ key: String) throws(WebhookError) -> [String: Any] {
        guard let value = object[key] as? [String: Any] else {
            throw WebhookError(.malformedReview, "\(path)\(key) must be an object")
        }
        return value
    }
}

/// The answer to one review.
public struct AdmissionResponse: Sendable {
    public var uid: String
    public var allowed: Bool
    /// HTTP-style code for denials (403 for policy denials).
    public var statusCode: Int
    public var statusReason: String
    public var message: String
    public var warnings: [String]
    public var auditAnnotations: [String: String]
    /// A JSON Patch (RFC 6902), sent base64-encoded with `patchType: JSONPatch`.
    public var patch: Data?

    public init(
        uid: String, allowed: Bool, statusCode: Int = 200, statusReason: String = "", message: String = "",
        warnings: [String] = [], auditAnnotations: [String: String] = [:], patch: Data? = nil
    ) {
        self.uid = uid
        self.allowed = allowed
        self.statusCode = statusCode
        self.statusReason = statusReason
        self.message = message
        self.warnings = warnings
        self.auditAnnotations = auditAnnotations
        self.patch = patch
    }

    /// The AdmissionReview body the apiserver expects back.
    public func encoded() -> Data {
        var response: [String: Any] = ["uid": uid, "allowed": allowed]
        if !allowed || !message.isEmpty {
            var status: [String: Any] = ["code": statusCode, "message": message]
            if !statusReason.isEmpty { status["reason"] = statusReason }
            response["status"] = status
        }
        // The apiserver limits warnings: at most a few, each short (it truncates beyond).
        if !warnings.isEmpty { response["warnings"] = Array(warnings.prefix(Self.maximumWarnings)) }
        if !auditAnnotations.isEmpty { response["auditAnnotations"] = auditAnnotations }
        if let patch {
            response["patch"] = patch.base64EncodedString()
            response["patchType"] = "JSONPatch"
        }
        let review: [String: Any] = [
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response,
        ]
        return (try? JSONSerialization.data(withJSONObject: review, options: [.sortedKeys])) ?? Data()
    }

    /// How many warnings one response carries.
    public static let maximumWarnings = 8
}
