import NIOCore

/// Which way bytes cross a forwarded connection.
enum PortForwardDirection: String, Sendable {
    /// From the user's local socket toward the pod.
    case clientToPod = "client-to-pod"
    /// From the pod back to the user.
    case podToClient = "pod-to-client"
}

/// What an inspector does with a chunk of a forwarded connection.
enum PortForwardInspection: Sendable, Equatable {
    /// Pass these bytes on (possibly fewer or more than were given: a parser may hold back a
    /// partial message and release it with the next chunk).
    case forward(ByteBuffer)
    /// End the connection: `message` goes to the client's error stream (kubectl prints it), and
    /// nothing more reaches either side.
    case refuse(message: String)
}

/// Sees the byte streams of one forwarded connection, both directions, in order per direction:
/// where a protocol-aware check (PostgreSQL next) plugs in. One instance per connection, so it may
/// keep parser state; the two directions call it from two tasks, so that state must be safe to
/// share (an actor or a lock).
protocol PortForwardInspector: Sendable {
    /// Its name in the connection's audit line.
    var name: String { get }
    func inspect(_ bytes: ByteBuffer, direction: PortForwardDirection) async -> PortForwardInspection
}

/// Forwards everything unchanged: what a port without a protocol inspector gets.
struct PassThroughInspector: PortForwardInspector {
    var name: String { "tcp" }

    func inspect(_ bytes: ByteBuffer, direction: PortForwardDirection) async -> PortForwardInspection {
        .forward(bytes)
    }
}

/// What an inspector knows of the connection it is made for.
struct PortForwardConnectionContext: Sendable {
    let sessionID: String
    let user: String
    let namespace: String
    let pod: String
    let port: UInt16
    let requestID: String
}

/// Chooses the inspector of each connection by its pod port; ports without one pass through.
struct PortForwardInspectors: Sendable {
    typealias Factory = @Sendable (PortForwardConnectionContext) -> any PortForwardInspector

    private var byPort: [UInt16: Factory] = [:]

    init(_ byPort: [UInt16: Factory] = [:]) {
        self.byPort = byPort
    }

    /// Every port passes through.
    static let passThrough = PortForwardInspectors()

    func inspector(for context: PortForwardConnectionContext) -> any PortForwardInspector {
        byPort[context.port]?(context) ?? PassThroughInspector()
    }
}
