import NIOCore
import Synchronization

/// The transport under a client-side forwarded connection: a SPDY stream pair (§5.1) or a legacy
/// WebSocket channel pair (§5.2).
protocol PortForwardClientConnectionTransport: Sendable {
    func write(_ bytes: ByteBuffer) async throws
    func closeWrite() async throws
    func errorText(maxBytes: Int) async throws -> ByteBuffer
    func reset() async
}

/// One forwarded connection on the client side (what the proxy opens toward the apiserver or kubelet,
/// §5.1, §5.2), whatever the transport.
public final class PortForwardClientConnection: Sendable {
    public let requestID: String
    public let port: UInt16
    /// The pod's bytes; ends at the server's half-close (a reset ends it too, as for a Go reader).
    public let inbound: InboundByteStream
    private let transport: any PortForwardClientConnectionTransport

    init(
        requestID: String, port: UInt16, inbound: InboundByteStream, transport: any PortForwardClientConnectionTransport
    ) {
        self.requestID = requestID
        self.port = port
        self.inbound = inbound.endingAtReset()
        self.transport = transport
    }

    /// Sends bytes to the pod.
    public func write(_ bytes: ByteBuffer) async throws {
        try await transport.write(bytes)
    }

    /// Half-closes toward the pod (local EOF).
    ///
    /// - Throws: ``KubernetesStreamError/Kind/unsupportedProtocol`` over legacy WebSocket, which has no
    ///   half-close (§5.2).
    public func closeWrite() async throws {
        try await transport.closeWrite()
    }

    /// Reads the error stream to its end: the server's error text, or `nil` when it reported none.
    public func errorMessage() async throws -> String? {
        let text = try await transport.errorText(maxBytes: PortForwardProtocol.maxErrorLength)
        return text.readableBytes == 0 ? nil : String(buffer: text)
    }

    /// Aborts the connection: RST on the data stream (client-go resets it once the server has finished,
    /// §5.1 step 5); over legacy WebSocket, which has no per-connection abort, the whole WebSocket closes.
    public func reset() async {
        await transport.reset()
    }
}

/// A forwarded connection over a SPDY data/error stream pair.
struct SPDYPortForwardClientTransport: PortForwardClientConnectionTransport {
    let data: SPDYStream
    let error: SPDYStream

    func write(_ bytes: ByteBuffer) async throws { try await data.write(bytes) }
    func closeWrite() async throws { try await data.closeWrite() }
    func reset() async { await data.reset() }

    func errorText(maxBytes: Int) async throws -> ByteBuffer {
        try await error.inbound.endingAtReset().collect(upTo: maxBytes)
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
        return PortForwardClientConnection(
            requestID: requestID, port: port, inbound: data.inbound,
            transport: SPDYPortForwardClientTransport(data: data, error: error))
    }

    /// Closes the connection.
    public func close() async {
        await session.close()
    }
}
