import Foundation

/// The JSON bodies of `authentication.k8s.io/v1` `TokenReview`, as pure functions: the
/// ``TokenReviewClient`` implementation only does the HTTP.
///
/// Request: `{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{"token":…,
/// "audiences":[…]}}`. Response: the same object with `status: {authenticated, user: {username,
/// uid, groups, extra}, audiences, error}`. The apiserver echoes `spec` (with the token) in its
/// answer; the decoder ignores it and no error it throws quotes the body.
public enum TokenReviewCodec {
    /// Where to `POST` the request body.
    public static let path = "/apis/authentication.k8s.io/v1/tokenreviews"
    public static let apiVersion = "authentication.k8s.io/v1"
    public static let kind = "TokenReview"
    /// The `Content-Type` (and `Accept`) of both bodies.
    public static let contentType = "application/json"

    /// Why a response body is not a usable `TokenReview`.
    public struct DecodingError: Error, Sendable, Hashable, CustomStringConvertible {
        public var description: String
    }

    private struct RequestBody: Encodable {
        struct Spec: Encodable {
            var token: String
            var audiences: [String]?
        }
        var apiVersion = TokenReviewCodec.apiVersion
        var kind = TokenReviewCodec.kind
        var spec: Spec
    }

    private struct ResponseBody: Decodable {
        struct User: Decodable {
            var username: String?
            var uid: String?
            var groups: [String]?
            var extra: [String: [String]]?
        }
        struct Status: Decodable {
            var authenticated: Bool?
            var user: User?
            var audiences: [String]?
            var error: String?
        }
        var apiVersion: String?
        var kind: String?
        var status: Status?
    }

    /// What every Kubernetes object starts with: enough to tell a `TokenReview` from a `Status`.
    private struct TypeMeta: Decodable {
        var apiVersion: String?
        var kind: String?
    }

    /// A `v1.Status` in place of the TokenReview (for example 403 when the proxy may not create
    /// token reviews).
    private struct StatusBody: Decodable {
        var reason: String?
        var message: String?
        var code: Int?
    }

    /// The request body for `token`; `audiences` empty means the apiserver's own audiences.
    public static func encodeRequest(token: String, audiences: [String] = []) -> [UInt8] {
        let body = RequestBody(spec: .init(token: token, audiences: audiences.isEmpty ? nil : audiences))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding strings and string arrays cannot fail.
        return (try? Array(encoder.encode(body))) ?? []
    }

    /// Decodes a response body. Throws for anything but a `TokenReview` of this API version,
    /// including a `Status` (whose reason and message are reported).
    public static func decodeResponse(_ body: some Sequence<UInt8>) throws(DecodingError) -> TokenReviewResponse {
        let data = Data(body)
        let meta = try decode(TypeMeta.self, from: data)
        if meta.kind == "Status" {
            let status = try decode(StatusBody.self, from: data)
            let code = status.code.map { " (\($0))" } ?? ""
            throw DecodingError(
                description:
                    "the apiserver refused the TokenReview\(code): \(status.reason ?? "unknown"): \(status.message ?? "")"
            )
        }
        guard meta.kind == kind, meta.apiVersion == apiVersion else {
            throw DecodingError(
                description: "the response is \(meta.apiVersion ?? "?") \(meta.kind ?? "?"), not \(apiVersion) \(kind)")
        }
        let decoded = try decode(ResponseBody.self, from: data)
        guard let status = decoded.status else {
            throw DecodingError(description: "the TokenReview response has no status")
        }
        var user: Identity?
        if let wire = status.user, let name = wire.username, !name.isEmpty {
            user = Identity(
                name: name, uid: wire.uid ?? "", groups: wire.groups ?? [], extra: wire.extra ?? [:],
                method: .tokenReview)
        }
        return TokenReviewResponse(
            authenticated: status.authenticated ?? false, user: user, audiences: status.audiences ?? [],
            error: status.error.flatMap { $0.isEmpty ? nil : $0 })
    }

    private static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws(DecodingError) -> T {
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch let error as Swift.DecodingError {
            throw DecodingError(description: "the TokenReview response is not valid: \(describe(error))")
        } catch {
            throw DecodingError(description: "the TokenReview response is not valid JSON")
        }
    }

    private static func describe(_ error: Swift.DecodingError) -> String {
        func path(_ context: Swift.DecodingError.Context) -> String {
            let joined = context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(
                separator: ".")
            return joined.isEmpty ? "the top level" : joined
        }
        switch error {
        case .typeMismatch(_, let context): return "a value of the wrong type at \(path(context))"
        case .valueNotFound(_, let context): return "a missing value at \(path(context))"
        case .keyNotFound(let key, let context): return "no \"\(key.stringValue)\" at \(path(context))"
        case .dataCorrupted(let context): return "malformed JSON at \(path(context))"
        @unknown default: return "undecodable JSON"
        }
    }
}
