import NIOCore
import Synchronization

/// One forwarded connection on the client side (what the proxy opens toward the kubelet, §5.1).
public final class PortForwardClientConnection: Sendable {
    public let requestID: String
    public let port: UInt16
    /// The pod's bytes; ends at the server's half-close (a reset ends it too, as for a Go reader).
    public let inbound: InboundByteStream
    private let data: SPDYStream
    private let error: SPDYStream

    init(requestID: String, port: UInt16, data: SPDYStream, error: SPDYStream) {
        self.requestID = requestID
        self.port = port
        self.data = data
        self.error = error
        inbound = data.inbound.endingAtReset()
    }

    /// Sends bytes to the pod.
    public func write(_ bytes: ByteBuffer) async throws {
        try await data.write(bytes)
    }

    /// Half-closes toward the pod (local EOF).
    public func closeWrite() async throws {
        try await data.closeWrite()
    }

    /// Reads the error stream to its end: the server's error text, or `nil` when it reported none.
    public func errorMessage() async throws -> String? {
        let text = try await error.inbound.endingAtReset().collect(upTo: PortForwardProtocol.maxErrorLength)
        return text.readableBytes == 0 ? nil : String(buffer: text)
    }

    /// Aborts the data stream (client-go resets it once the server has finished, §5.1 step 5).
    public func reset() async {
        await data.reset()
    }
}

/// The client side of a port-forward connection over SPDY (protocols.md §5.1).
public final class PortForwardClientSession: Sendable {
    private let session: SPDYSession
    private let nextRequestID = Mutex<Int>(0)

    /// Wraps an upgraded session (subprotocol `portforward.k8s.io`).
    public init(session: SPDYSession) {
        self.session = session
    }

    /// Opens a pair for one forwarded connection, as client-go does: the error stream, half-closed at once,
    /// then the data stream, each waiting for its SYN_REPLY.
    ///
    /// - Parameter requestID: defaults to a per-session counter from 0.
    public func connect(port: UInt16, requestID: String? = nil) async throws -> PortForwardClientConnection {
        let requestID =
            requestID
            ?? nextRequestID.withLock { next in
                defer { next += 1 }
                return String(next)
            }
        let error = try await session.openStream(
            headers: PortForwardStreamHeaders(streamType: .error, port: port, requestID: requestID).spdyHeaders)
        try await error.closeWrite()
        let data = try await session.openStream(
            headers: PortForwardStreamHeaders(streamType: .data, port: port, requestID: requestID).spdyHeaders)
        return PortForwardClientConnection(requestID: requestID, port: port, data: data, error: error)
    }

    /// Closes the connection.
    public func close() async {
        await session.close()
    }
}
