import NIOCore

/// The transport under a server-side forwarded connection: a SPDY stream pair or a WebSocket channel pair.
protocol PortForwardConnectionTransport: Sendable {
    func write(_ bytes: ByteBuffer) async throws
    func closeWrite() async throws
    func finish() async
    func fail(message: String) async
}

/// One forwarded TCP connection on the server side (protocols.md §5.1, §5.2).
///
/// Read the client's bytes from ``inbound`` (it ends at the client's half-close and throws
/// ``SPDYError/Kind/streamReset`` if the client aborts), write the target's bytes with ``write(_:)``,
/// half-close with ``closeWrite()``, and end with ``finish()`` or, on failure, ``fail(message:)``.
public final class PortForwardConnection: Sendable, CustomStringConvertible {
    public let requestID: String
    /// The pod port the client asked for, to be authorised per connection (§7.4 item 12).
    public let port: UInt16
    /// The client's bytes.
    public let inbound: InboundByteStream
    private let transport: any PortForwardConnectionTransport

    init(requestID: String, port: UInt16, inbound: InboundByteStream, transport: any PortForwardConnectionTransport) {
        self.requestID = requestID
        self.port = port
        self.inbound = inbound
        self.transport = transport
    }

    public var description: String { "port-forward request \(requestID) to port \(port)" }

    /// Sends the target's bytes to the client.
    public func write(_ bytes: ByteBuffer) async throws {
        try await transport.write(bytes)
    }

    /// The target half-closed: FIN on the data stream (a TCP half-close, §7.4 item 4). Legacy WebSocket
    /// port-forward cannot half-close; there it ends the connection, as the kubelet does.
    public func closeWrite() async throws {
        try await transport.closeWrite()
    }

    /// Ends the connection normally: both streams FIN'd, the error stream empty.
    public func finish() async {
        await transport.finish()
    }

    /// Reports a failure (e.g. the target refused the connection). kubectl prints it and, as client-go
    /// does, tears down the whole port-forward session (§5.1 step 5).
    public func fail(message: String) async {
        await transport.fail(message: message)
    }
}

/// A forwarded connection over a SPDY data/error stream pair.
struct SPDYPortForwardTransport: PortForwardConnectionTransport {
    let data: SPDYStream
    let error: SPDYStream

    func write(_ bytes: ByteBuffer) async throws { try await data.write(bytes) }
    func closeWrite() async throws { try await data.closeWrite() }

    func finish() async {
        try? await data.closeWrite()
        try? await error.closeWrite()
    }

    func fail(message: String) async {
        try? await error.writeAndClose(ByteBuffer(string: message))
        await data.reset()
    }
}

/// The server side of one `kubectl port-forward` connection: the forwarded connections, as pairs complete.
public final class PortForwardSession: Sendable {
    /// Every complete and valid pair, in completion order; ends with the session.
    public let connections: AsyncStream<PortForwardConnection>
    private let closer: @Sendable () async -> Void

    init(connections: AsyncStream<PortForwardConnection>, close: @escaping @Sendable () async -> Void) {
        self.connections = connections
        self.closer = close
    }

    /// Closes the connection (SPDY: RST for open streams, GOAWAY, TCP close; WebSocket: Close 1000).
    public func close() async {
        await closer()
    }
}

/// Serves port-forward over an upgraded SPDY session (protocols.md §5.1, §8 "port-forward pair").
public enum PortForwardSPDYServer {
    /// The subprotocols to pass to ``SPDYServerUpgrader``.
    public static let protocolVersions = [PortForwardProtocol.version]

    /// Pairs the client's streams by request id and hands out each complete pair.
    ///
    /// Each stream is checked on arrival (``PortForwardStreamHeaders``) and refused with RST_STREAM(CANCEL)
    /// if invalid, as the kubelet does; a valid one is replied to at once. A second stream of a type for a
    /// request id is refused ("already assigned" on the pair's error stream while the pair is incomplete),
    /// and so is any stream for a request id whose pair was already handed out; a pair whose ports differ
    /// fails. A pair not complete within `pairTimeout`
    /// gets "timed out waiting for streams" on its error stream.
    public static func accept(
        session: SPDYSession, pairTimeout: Duration = PortForwardProtocol.defaultPairTimeout
    )
        -> PortForwardSession
    {
        let (connections, continuation) = AsyncStream<PortForwardConnection>.makeStream()
        let pairing = Pairing(continuation: continuation, timeout: pairTimeout)
        Task {
            for await stream in session.inboundStreams {
                await pairing.received(stream)
            }
            await pairing.finish()
        }
        return PortForwardSession(connections: connections, close: { await session.close() })
    }

    /// Half-built pairs, keyed by request id.
    private actor Pairing {
        struct Half {
            var port: UInt16
            var data: SPDYStream?
            var error: SPDYStream?
            var timer: Task<Void, Never>?
        }

        let continuation: AsyncStream<PortForwardConnection>.Continuation
        let timeout: Duration
        var pending: [String: Half] = [:]
        /// Request ids whose pair was handed out: client-go never reuses one.
        var completed: Set<String> = []

        init(continuation: AsyncStream<PortForwardConnection>.Continuation, timeout: Duration) {
            self.continuation = continuation
            self.timeout = timeout
        }

        func received(_ stream: SPDYStream) async {
            let headers: PortForwardStreamHeaders
            do {
                headers = try PortForwardStreamHeaders(stream.headers)
            } catch {
                await stream.reset(status: .cancel)
                return
            }
            guard !completed.contains(headers.requestID) else {
                await stream.reset(status: .cancel)
                return
            }
            if let existing = pending[headers.requestID],
                headers.streamType == .data ? existing.data != nil : existing.error != nil
            {
                let message = "\(headers.streamType) stream already assigned for request \(headers.requestID)"
                try? await existing.error?.write(ByteBuffer(string: message))
                await stream.reset(status: .cancel)
                return
            }
            do {
                try await stream.reply()
            } catch {
                return
            }
            // Read the half only now: the actor may have timed it out while the reply was written.
            var half = pending[headers.requestID] ?? Half(port: headers.port)
            if headers.streamType == .data { half.data = stream } else { half.error = stream }
            if headers.streamType == .error {
                // The client half-closes the error stream at once and never writes on it: discard.
                stream.discardInbound()
            }
            guard half.port == headers.port else {
                pending[headers.requestID] = nil
                half.timer?.cancel()
                let message = "port mismatch for request \(headers.requestID): \(half.port) and \(headers.port)"
                try? await half.error?.writeAndClose(ByteBuffer(string: message))
                await half.data?.reset()
                return
            }
            if let data = half.data, let error = half.error {
                half.timer?.cancel()
                pending[headers.requestID] = nil
                completed.insert(headers.requestID)
                continuation.yield(
                    PortForwardConnection(
                        requestID: headers.requestID, port: headers.port, inbound: data.inbound,
                        transport: SPDYPortForwardTransport(data: data, error: error)))
                return
            }
            let requestID = headers.requestID
            let timeout = self.timeout
            half.timer = Task { [weak self] in
                try? await Task.sleep(for: timeout)
                guard !Task.isCancelled else { return }
                await self?.timedOut(requestID)
            }
            pending[requestID] = half
        }

        private func timedOut(_ requestID: String) async {
            guard let half = pending.removeValue(forKey: requestID) else { return }
            try? await half.error?.writeAndClose(ByteBuffer(string: "timed out waiting for streams"))
            await half.data?.reset()
        }

        func finish() {
            for half in pending.values { half.timer?.cancel() }
            pending.removeAll()
            continuation.finish()
        }
    }
}
