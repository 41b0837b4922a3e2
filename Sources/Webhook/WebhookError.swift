/// An error of the webhook server. The kind can grow; ``httpStatus`` is the one place where
/// errors meet the wire (a refused review is a 4xx with a plain message; the apiserver then
/// applies the webhook's failurePolicy).
public struct WebhookError: Error, Sendable, CustomStringConvertible {
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        public var description: String { name }
        public init(_ name: String) { self.name = name }

        public static let malformedReview = Kind("malformedReview")
        public static let bodyTooLarge = Kind("bodyTooLarge")
        public static let unsupportedMediaType = Kind("unsupportedMediaType")
        public static let notFound = Kind("notFound")
        public static let methodNotAllowed = Kind("methodNotAllowed")
        public static let invalidConfiguration = Kind("invalidConfiguration")
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }

    /// The HTTP status a request failing with this error gets.
    public var httpStatus: Int {
        switch kind {
        case .malformedReview: 400
        case .bodyTooLarge: 413
        case .unsupportedMediaType: 415
        case .notFound: 404
        case .methodNotAllowed: 405
        default: 500
        }
    }
}
