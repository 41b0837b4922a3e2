import NIOCore
import NIOWebSocket

/// Serves the legacy WebSocket port-forward that language clients use (protocols.md §5.2; kubectl never
/// does): `GET …/portforward?ports=8080,9090` with subprotocol `v4.channel.k8s.io`,
/// `v4.base64.channel.k8s.io` or none.
///
/// The i-th port gets data channel 2i and error channel 2i+1, and one connection each; the server's first
/// message on every channel is the port, 2 bytes little-endian. There is no half-close: as with the
/// kubelet, a connection is done once the target side ends (``PortForwardConnection/closeWrite()``,
/// ``PortForwardConnection/finish()`` or ``PortForwardConnection/fail(message:)``), and the WebSocket
/// closes (1000) when every port is done; the client's side then ends too.
public enum WebSocketPortForwardServer {
    /// The subprotocols to offer (`""`, no header, is also accepted by the apiserver).
    public static let protocolVersions = ["v4.channel.k8s.io", "v4.base64.channel.k8s.io"]

    /// The `ports` query parameter as the apiserver reads it: repeated parameters and comma lists, each a
    /// port in 1…65535; `nil` if any is not.
    public static func ports(queryItems: [(name: String, value: String)]) -> [UInt16]? {
        let values = queryItems.filter { $0.name == "ports" }.flatMap { $0.value.split(separator: ",") }
        let ports = values.map { UInt16($0.trimmingCharacters(in: " ")) }
        guard !ports.isEmpty, ports.allSatisfy({ $0 != nil && $0 != 0 }) else { return nil }
        return ports.map { $0! }
    }

    /// Sets up the channel after the WebSocket upgrade. Call on the event loop.
    public static func start(channel: any Channel, protocolName: String, ports: [UInt16]) throws -> PortForwardSession {
        guard protocolName.isEmpty || protocolVersions.contains(protocolName) else {
            throw KubernetesStreamError(.unsupportedProtocol, "unknown port-forward subprotocol \(protocolName)")
        }
        guard !ports.isEmpty, ports.count <= 127 else {
            throw KubernetesStreamError(.invalidPort, "port-forward needs 1 to 127 ports")
        }
        let framing = WebSocketChannelFraming(base64: protocolName.contains("base64"), closeSignal: false)
        let handler = WebSocketChannelHandler(framing: framing, eventLoop: channel.eventLoop)
        let inputs = ports.indices.map { handler.makeInput(channel: UInt8($0 * 2)) }
        try channel.pipeline.syncOperations.addHandlers([
            NIOWebSocketFrameAggregator(
                minNonFinalFragmentSize: 1, maxAccumulatedFrameCount: 1 << 12,
                maxAccumulatedFrameSize: KubernetesWebSocket.maxMessageSize),
            handler,
        ])
        let bound = NIOLoopBound(handler, eventLoop: channel.eventLoop)
        let tracker = CompletionTracker(remaining: ports.count) {
            _ = try? await channel.eventLoop.flatSubmit { bound.value.close() }.get()
        }
        let (connections, continuation) = AsyncStream<PortForwardConnection>.makeStream()
        for (index, port) in ports.enumerated() {
            let prefix = WebSocketPortPrefix.encode(port)
            _ = handler.send(channel: UInt8(index * 2), payload: prefix)
            _ = handler.send(channel: UInt8(index * 2 + 1), payload: prefix)
            let transport = WebSocketPortForwardTransport(
                handler: bound, eventLoop: channel.eventLoop, dataChannel: UInt8(index * 2), tracker: tracker)
            continuation.yield(
                PortForwardConnection(
                    requestID: String(port), port: port, inbound: inputs[index].endingAtReset(), transport: transport))
        }
        continuation.finish()
        return PortForwardSession(
            connections: connections,
            close: { _ = try? await channel.eventLoop.flatSubmit { bound.value.close() }.get() })
    }
}

/// Closes the WebSocket once every port's connection is done.
private actor CompletionTracker {
    private var done: Set<UInt8> = []
    private let count: Int
    private let onDone: @Sendable () async -> Void

    init(remaining: Int, onDone: @escaping @Sendable () async -> Void) {
        self.count = remaining
        self.onDone = onDone
    }

    /// Marks the connection on `dataChannel` done; repeated calls count once.
    func finished(_ dataChannel: UInt8) async {
        guard done.insert(dataChannel).inserted else { return }
        if done.count == count { await onDone() }
    }
}

/// A forwarded connection over a legacy WebSocket channel pair.
private struct WebSocketPortForwardTransport: PortForwardConnectionTransport {
    let handler: NIOLoopBound<WebSocketChannelHandler>
    let eventLoop: any EventLoop
    let dataChannel: UInt8
    let tracker: CompletionTracker

    func write(_ bytes: ByteBuffer) async throws {
        guard bytes.readableBytes > 0 else { return }
        let handler = self.handler
        let channel = dataChannel
        try await eventLoop.flatSubmit { handler.value.send(channel: channel, payload: bytes) }.get()
    }

    /// No half-close exists here: the target's end is the connection's end.
    func closeWrite() async throws {
        await tracker.finished(dataChannel)
    }

    func finish() async {
        await tracker.finished(dataChannel)
    }

    func fail(message: String) async {
        let handler = self.handler
        let channel = dataChannel + 1
        _ = try? await eventLoop.flatSubmit {
            handler.value.send(channel: channel, payload: ByteBuffer(string: message))
        }
        .get()
        await tracker.finished(dataChannel)
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in characters: String) -> Substring {
        var slice = self
        while let first = slice.first, characters.contains(first) { slice.removeFirst() }
        while let last = slice.last, characters.contains(last) { slice.removeLast() }
        return slice
    }
}
