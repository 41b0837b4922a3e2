import Foundation

/// A `v1.Status` body, the form in which kubectl expects every error: it prints
/// `Error from server (<reason>): <message>`.
struct KubernetesStatus: Sendable {
    var code: Int
    var reason: String
    var message: String
    var details: [String: String] = [:]

    static func unauthorized() -> KubernetesStatus {
        // Deliberately uninformative: which authenticator failed, and why, goes to the audit log.
        KubernetesStatus(code: 401, reason: "Unauthorized", message: "Unauthorized")
    }

    static func forbidden(_ message: String, resource: String = "", name: String = "") -> KubernetesStatus {
        var details: [String: String] = [:]
        if !name.isEmpty { details["name"] = name }
        if !resource.isEmpty { details["kind"] = resource }
        return KubernetesStatus(code: 403, reason: "Forbidden", message: message, details: details)
    }

    static func badRequest(_ message: String) -> KubernetesStatus {
        KubernetesStatus(code: 400, reason: "BadRequest", message: message)
    }

    static func tooLarge(_ message: String) -> KubernetesStatus {
        KubernetesStatus(code: 413, reason: "RequestEntityTooLarge", message: message)
    }

    static func notFound(_ message: String) -> KubernetesStatus {
        KubernetesStatus(code: 404, reason: "NotFound", message: message)
    }

    static func methodNotAllowed(_ message: String) -> KubernetesStatus {
        KubernetesStatus(code: 405, reason: "MethodNotAllowed", message: message)
    }

    static func conflict(_ message: String) -> KubernetesStatus {
        KubernetesStatus(code: 409, reason: "Conflict", message: message)
    }

    static func unsupportedMediaType(_ message: String) -> KubernetesStatus {
        KubernetesStatus(code: 415, reason: "UnsupportedMediaType", message: message)
    }

    static func invalid(_ message: String) -> KubernetesStatus {
        KubernetesStatus(code: 422, reason: "Invalid", message: message)
    }

    static func badGateway(_ message: String) -> KubernetesStatus {
        KubernetesStatus(code: 502, reason: "InternalError", message: message)
    }

    static func unavailable(_ message: String) -> KubernetesStatus {
        KubernetesStatus(code: 503, reason: "ServiceUnavailable", message: message)
    }

    var json: Data {
        var object: [String: Any] = [
            "kind": "Status", "apiVersion": "v1", "metadata": [String: Any](), "status": "Failure",
            "message": message, "reason": reason, "code": code,
        ]
        if !details.isEmpty { object["details"] = details }
        return (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
    }
}

extension KubernetesStatus {
    /// The one place approvals errors meet the wire.
    init(_ error: ApprovalsError) {
        switch error.kind {
        case .full: self = .unavailable(error.message)
        case .notFound: self = .notFound(error.message)
        case .forbidden: self = .forbidden(error.message)
        case .conflict: self = .conflict(error.message)
        case .invalid: self = .invalid(error.message)
        case .unsupported: self = .methodNotAllowed(error.message)
        case .unsupportedMediaType: self = .unsupportedMediaType(error.message)
        default: self = .badRequest(error.message)
        }
    }
}
