import NIOCore
import NIOHTTP1
import NIOWebSocket

/// What a Kubernetes WebSocket client sends and accepts in the upgrade (RFC 6455 §4.1, protocols.md
/// §4.6): `Sec-WebSocket-Key` and `Sec-WebSocket-Version: 13`, the offered subprotocols on one line, and
/// the checks client-go makes on the 101: `Upgrade: websocket`, exactly one of the offered subprotocols,
/// and the `Sec-WebSocket-Accept` that matches the key (NIO's WebSocket upgrader computes it).
struct WebSocketClientRequest: Sendable {
    static let subprotocolHeader = "Sec-WebSocket-Protocol"

    let uri: String
    let headers: HTTPHeaders
    let protocols: [String]
    let key: String
    private let keyCheck: NIOWebSocketClientUpgrader

    init(
        uri: String, headers: HTTPHeaders, protocols: [String],
        key: String = NIOWebSocketClientUpgrader.randomRequestKey()
    ) {
        self.uri = uri
        self.headers = headers
        self.protocols = protocols
        self.key = key
        keyCheck = NIOWebSocketClientUpgrader(requestKey: key) { channel, _ in
            channel.eventLoop.makeSucceededVoidFuture()
        }
    }

    /// The request's bytes.
    ///
    /// - Throws: ``SPDYError/Kind/invalidState`` for a target or header containing CR or LF.
    func encoded() throws(SPDYError) -> ByteBuffer {
        var lines = ["GET \(uri) HTTP/1.1"]
        var all = headers
        all.replaceOrAdd(name: "Connection", value: "Upgrade")
        all.replaceOrAdd(name: "Upgrade", value: "websocket")
        all.replaceOrAdd(name: "Sec-WebSocket-Version", value: "13")
        all.replaceOrAdd(name: "Sec-WebSocket-Key", value: key)
        // One line, comma-separated: Go's x/net/websocket server reads only the first header line.
        all.replaceOrAdd(name: Self.subprotocolHeader, value: protocols.joined(separator: ", "))
        lines += all.map { "\($0.name): \($0.value)" }
        guard !lines.contains(where: { $0.contains("\r") || $0.contains("\n") }) else {
            throw SPDYError(.invalidState, "a request target or header contains CR or LF")
        }
        return ByteBuffer(string: lines.joined(separator: "\r\n") + "\r\n\r\n")
    }

    /// The subprotocol a 101 chose, if it is exactly one of those offered.
    func chosenProtocol(_ response: HTTPResponseHead) -> String? {
        let values = response.headers[Self.subprotocolHeader]
        guard values.count == 1, protocols.contains(values[0]) else { return nil }
        return values[0]
    }

    /// Why a response does not complete the upgrade, or `nil` if it does.
    func refusal(of response: HTTPResponseHead) -> WebSocketUpgradeRejection.Reason? {
        guard response.status == .switchingProtocols else { return .status }
        guard response.headers["Upgrade"].contains(where: { $0.lowercased() == "websocket" }) else {
            return .notWebSocket
        }
        guard chosenProtocol(response) != nil else { return .subprotocolMismatch }
        guard keyCheck.shouldAllowUpgrade(upgradeResponse: response) else { return .invalidAccept }
        return nil
    }
}

/// Performs a Kubernetes WebSocket upgrade on a connected channel (plain, or with TLS already in the
/// pipeline): `GET` with `Upgrade: websocket` and the offered subprotocols (protocols.md §4.6, §5.3).
public enum WebSocketClientHandshake {
    /// Sends the upgrade request and waits for the answer.
    ///
    /// - Parameters:
    ///   - uri: the request target, e.g. `/api/v1/namespaces/ns/pods/p/exec?command=sh&stdout=true`.
    ///   - headers: must include `Host`, plus any credentials; `Connection`, `Upgrade`, the key, the
    ///     version and `Sec-WebSocket-Protocol` are set here.
    ///   - protocols: offered in preference order, on one header line.
    ///   - maxFrameSize: the largest incoming frame (``WebSocketClientConfiguration/maxFrameSize``).
    ///   - configure: called on the event loop right after the frame codec is added and before any frame
    ///     is read, with the chosen subprotocol: add the handlers that serve the connection at the end of
    ///     the pipeline.
    /// - Returns: what `configure` returned.
    /// - Throws: ``WebSocketUpgradeRejection`` when the server refuses (fall back to SPDY then);
    ///   ``KubernetesStreamError/Kind/connectionClosed`` when the connection ends before an answer;
    ///   ``SPDYError/Kind/upgradeRejected`` for an answer that is not HTTP/1.x; or what `configure`
    ///   threw. The channel is closed on every failure.
    public static func upgrade<Upgraded: Sendable>(
        channel: any Channel,
        uri: String,
        headers: HTTPHeaders,
        protocols: [String],
        maxFrameSize: Int = KubernetesWebSocket.defaultMaxFrameSize,
        configure: @escaping @Sendable (_ channel: any Channel, _ protocolName: String) throws -> Upgraded
    ) async throws -> Upgraded {
        let result = channel.eventLoop.makePromise(of: Upgraded.self)
        let request = WebSocketClientRequest(uri: uri, headers: headers, protocols: protocols)
        do {
            let bytes = try request.encoded()
            try await channel.eventLoop.submit {
                let handler = WebSocketUpgradeResponseHandler(
                    request: request, maxFrameSize: maxFrameSize,
                    onUpgrade: { channel, chosen in result.succeed(try configure(channel, chosen)) },
                    onFailure: { result.fail($0) })
                try channel.pipeline.syncOperations.addHandler(handler)
                channel.writeAndFlush(bytes).whenFailure { result.fail($0) }
            }.get()
            return try await result.futureResult.get()
        } catch {
            result.fail(error)
            try? await channel.close()
            throw error
        }
    }
}

/// Reads the answer to the upgrade request and, on a valid 101, swaps itself for the WebSocket codec and
/// the caller's handlers, then hands them the bytes that came with the 101, all within one event.
///
/// ```
/// AWAITING_HEAD ──valid 101──▶ DONE: codec and handlers added, remaining bytes passed on, handler removed
///       ├──refused 101──▶ DONE: rejection, connection closed
///       ├──other status──▶ BODY(head) ──body complete, or the connection ends──▶ DONE: rejection
///       └──the connection ends──▶ DONE: connection closed
/// ```
final class WebSocketUpgradeResponseHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private enum State {
        case awaitingHead
        case body(HTTPResponseHead)
        case done
    }

    private let request: WebSocketClientRequest
    private let maxFrameSize: Int
    private let onUpgrade: (any Channel, String) throws -> Void
    private let onFailure: (any Error) -> Void
    private var decoder = HTTPUpgradeResponseDecoder(maxBodyLength: WebSocketUpgradeRejection.maxBody)
    private var state = State.awaitingHead

    /// - Parameters:
    ///   - onUpgrade: adds the caller's handlers after the codec; a throw fails the upgrade.
    ///   - onFailure: the rejection or error; called at most once, and never after `onUpgrade`.
    init(
        request: WebSocketClientRequest, maxFrameSize: Int,
        onUpgrade: @escaping (any Channel, String) throws -> Void, onFailure: @escaping (any Error) -> Void
    ) {
        self.request = request
        self.maxFrameSize = maxFrameSize
        self.onUpgrade = onUpgrade
        self.onFailure = onFailure
    }

    private var isDone: Bool {
        if case .done = state { return true }
        return false
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if !context.channel.isActive {
            fail(KubernetesStreamError(.connectionClosed, "the connection closed before the upgrade"), context: context)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        decoder.receive(unwrapInboundIn(data))
        do {
            try advance(context: context, atEndOfInput: false)
        } catch {
            fail(error, context: context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        do {
            try advance(context: context, atEndOfInput: true)
        } catch {
            fail(error, context: context)
        }
        if !isDone {
            fail(
                KubernetesStreamError(.connectionClosed, "the connection closed before the upgrade completed"),
                context: context)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard isDone else {
            fail(error, context: context)
            return
        }
        context.fireErrorCaught(error)
    }

    private func advance(context: ChannelHandlerContext, atEndOfInput: Bool) throws {
        if case .awaitingHead = state, let head = try decoder.nextHead() {
            switch request.refusal(of: head) {
            case nil:
                try upgrade(context: context, head: head)
                return
            case let reason? where head.status == .switchingProtocols:
                fail(WebSocketUpgradeRejection(reason: reason, response: head), context: context)
                return
            case .some:
                state = .body(head)
            }
        }
        if case .body(let head) = state, let body = decoder.nextBody(atEndOfInput: atEndOfInput) {
            fail(WebSocketUpgradeRejection(reason: .status, response: head, body: body), context: context)
        }
    }

    /// A throw leaves the state alone, so that the caller reports it.
    private func upgrade(context: ChannelHandlerContext, head: HTTPResponseHead) throws {
        let pipeline = context.pipeline.syncOperations
        try pipeline.addHandlers(
            [
                WebSocketFrameEncoder(), ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: maxFrameSize)),
                WebSocketProtocolErrorHandler(isServer: false),
            ], position: .after(self))
        try onUpgrade(context.channel, request.chosenProtocol(head) ?? "")
        state = .done
        let remaining = decoder.remainingBytes()
        if remaining.readableBytes > 0 {
            context.fireChannelRead(wrapInboundOut(remaining))
            context.fireChannelReadComplete()
        }
        pipeline.removeHandler(context: context, promise: nil)
    }

    private func fail(_ error: any Error, context: ChannelHandlerContext) {
        guard !isDone else { return }
        state = .done
        onFailure(error)
        context.close(promise: nil)
    }
}
