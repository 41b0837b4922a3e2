/// An error from bringing the local cluster up or down. The kind can grow; the message says what
/// to do about it.
public struct SandboxError: Error, CustomStringConvertible, Sendable {
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        public var description: String { name }

        public static let scriptsNotFound = Kind(name: "scriptsNotFound")
        public static let scriptFailed = Kind(name: "scriptFailed")
        public static let malformedClusterDescription = Kind(name: "malformedClusterDescription")
        public static let startTimedOut = Kind(name: "startTimedOut")
        public static let notRunning = Kind(name: "notRunning")
        public static let processTimedOut = Kind(name: "processTimedOut")
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
