/// Why an approvals operation failed. The kind is an open set of wire-relevant categories; the
/// message is what the caller reads. ``KubernetesStatus/init(_:)`` maps it to the wire.
public struct ApprovalsError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Kind: Sendable, Hashable {
        let name: String
        /// The store is at one of its limits (503).
        public static let full = Kind(name: "full")
        /// No such AccessRequest (404).
        public static let notFound = Kind(name: "notFound")
        /// The caller may not make this decision (403).
        public static let forbidden = Kind(name: "forbidden")
        /// The request was already decided, or changed since the caller read it (409).
        public static let conflict = Kind(name: "conflict")
        /// The change is not a valid AccessRequest change (422).
        public static let invalid = Kind(name: "invalid")
        /// The API call is not one the local store serves (405).
        public static let unsupported = Kind(name: "unsupported")
        /// The body's media type cannot be applied (415).
        public static let unsupportedMediaType = Kind(name: "unsupportedMediaType")
        /// The request itself is malformed (400).
        public static let badRequest = Kind(name: "badRequest")
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
