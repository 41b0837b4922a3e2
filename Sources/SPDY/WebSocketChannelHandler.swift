import NIOCore
import NIOWebSocket

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The channel framing of Kubernetes WebSocket streams (protocols.md §4.2): each message is
/// `[channel][payload]`, or for the base64 protocols a text message `'0'+channel` + base64.
struct WebSocketChannelFraming: Hashable, Sendable {
    /// Text messages with base64 payloads (`*base64.channel.k8s.io`).
    var base64: Bool
    /// v5: `[0xFF, channel]` closes a channel (stdin EOF, §4.3).
    var closeSignal: Bool

    static let closeChannel: UInt8 = 0xFF
}

/// Carries a WebSocket's numbered channels to and from async code (protocols.md §4.2, §4.3, §4.5), on
/// either end of the connection.
///
/// Inbound messages for the registered channels feed ``InboundByteStream``s (empty messages, such as the
/// server's "connected" marker, and unknown channels are ignored, as the apiserver and client-go do); a v5
/// CLOSE ends one. When a consumer falls behind, the channel stops reading. Pings are answered (kubectl
/// drops a connection after 61 s without pongs), and writes wait while the channel is not writable.
///
/// The peer's Close is echoed. Close 1000 ends every input normally: client-go reads it as EOF on every
/// channel, and only then decodes the status (§4.4); any other Close, or the connection ending without
/// one, ends them with ``SPDYError/Kind/sessionClosed``. The connection closes only once the closing
/// handshake is done (RFC 6455 §7.1.1, ``close()``): NIO drops what the socket has not taken yet when a
/// channel closes, and a peer that sees its connection end mid-message fails. As the client (the side
/// that sent the upgrade request) it masks every frame it sends (RFC 6455 §5.3) and, given a heartbeat,
/// pings the server and gives up when pongs stop (§4.5). Put a `NIOWebSocketFrameAggregator` in front of
/// it: a message may arrive fragmented.
final class WebSocketChannelHandler: ChannelDuplexHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private struct Input {
        var source: InboundByteStream.Source?
        /// Legacy port-forward, client end: the port that opens the channel, not yet seen (§5.2).
        var portPrefix: WebSocketPortPrefix?
        var blocked = false
        var consumerGone = false
    }

    let framing: WebSocketChannelFraming
    /// Which end of the upgrade this is; a client masks its frames.
    let role: SPDYRole
    private let eventLoop: any EventLoop
    private let highWatermark: Int
    private var heartbeat: WebSocketHeartbeat?
    private var heartbeatTask: RepeatedTask?
    private var context: ChannelHandlerContext?
    private var inputs: [UInt8: Input] = [:]
    private var blockedInputs = 0
    private var readPending = false
    private var writabilityWaiters: [EventLoopPromise<Void>] = []
    private var closeSent = false
    private var ended = false
    /// ``close()`` was called: inbound data is dropped and reading never pauses, so the peer's Close gets in.
    private var closing = false
    /// How long to wait for the peer's Close once ours is written, or for our echo to be written.
    private let closeTimeout: TimeAmount
    private var closeTimer: Scheduled<Void>?

    /// - Parameters:
    ///   - role: ``SPDYRole/client`` on the end that sent the upgrade request.
    ///   - pingInterval: with `pongTimeout`, the client's heartbeat (§4.5); `nil` sends no pings.
    ///   - closeTimeout: how long ``close()`` waits for the peer's Close once its own is on the wire.
    init(
        framing: WebSocketChannelFraming, role: SPDYRole = .server, eventLoop: any EventLoop, highWatermark: Int = 16,
        pingInterval: TimeAmount? = nil, pongTimeout: TimeAmount = WebSocketClientConfiguration.defaultPongTimeout,
        closeTimeout: TimeAmount = WebSocketChannelHandler.defaultCloseTimeout
    ) {
        self.framing = framing
        self.role = role
        self.eventLoop = eventLoop
        self.highWatermark = highWatermark
        self.closeTimeout = closeTimeout
        if let pingInterval {
            heartbeat = WebSocketHeartbeat(interval: pingInterval, timeout: pongTimeout, now: eventLoop.now)
        }
    }

    /// client-go answers a Close as soon as its reader gets to it.
    static let defaultCloseTimeout: TimeAmount = .seconds(10)

    private var loopBoundSelf: NIOLoopBound<WebSocketChannelHandler> { NIOLoopBound(self, eventLoop: eventLoop) }

    /// Registers an inbound channel and returns what arrives on it. Call before the first read.
    ///
    /// - Parameter portPrefix: the port the channel's first 2 bytes must name; they are stripped, and
    ///   another port ends the input with ``KubernetesStreamError/Kind/invalidPort`` (§5.2).
    func makeInput(channel: UInt8, portPrefix: UInt16? = nil) -> InboundByteStream {
        let eventLoop = self.eventLoop
        let handler = loopBoundSelf
        let (stream, source) = InboundByteStream.makeStream(
            highWatermark: highWatermark,
            onDemand: { eventLoop.execute { handler.value.consumerWantsMore(channel) } },
            onTermination: { eventLoop.execute { handler.value.consumerGone(channel) } })
        inputs[channel] = Input(source: source, portPrefix: portPrefix.map(WebSocketPortPrefix.init(expectedPort:)))
        return stream
    }

    // MARK: Lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if let interval = heartbeat?.interval {
            let handler = loopBoundSelf
            heartbeatTask = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
                handler.value.heartbeatTick()
            }
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        endEverything()
        closeTimer?.cancel()
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        endEverything()
        closeTimer?.cancel()
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            let waiters = writabilityWaiters
            writabilityWaiters.removeAll()
            for waiter in waiters { waiter.succeed() }
        }
        context.fireChannelWritabilityChanged()
    }

    /// Ends every input: normally after the peer's Close 1000 (`cleanly`), otherwise with
    /// ``SPDYError/Kind/sessionClosed`` carrying `reason`. Pending writes fail either way.
    private func endEverything(cleanly: Bool = false, reason: String = "the WebSocket connection ended") {
        guard !ended else { return }
        ended = true
        heartbeatTask?.cancel()
        heartbeatTask = nil
        let error = SPDYError(.sessionClosed, reason)
        for (channel, var input) in inputs {
            if cleanly { input.source?.finish() } else { input.source?.finish(error) }
            input.source = nil
            inputs[channel] = input
        }
        let waiters = writabilityWaiters
        writabilityWaiters.removeAll()
        for waiter in waiters { waiter.fail(error) }
    }

    private func heartbeatTick() {
        guard var heartbeat, let context, !ended, !closeSent else { return }
        let action = heartbeat.tick(at: context.eventLoop.now)
        self.heartbeat = heartbeat
        switch action {
        case .sendPing:
            context.writeAndFlush(wrapOutboundOut(frame(.ping, ByteBuffer())), promise: nil)
        case .giveUp:
            endEverything(reason: "no WebSocket pong for \(heartbeat.timeout.nanoseconds / 1_000_000) ms")
            context.close(promise: nil)
        case .nothing:
            break
        }
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .ping:
            context.writeAndFlush(wrapOutboundOut(self.frame(.pong, frame.unmaskedData)), promise: nil)
        case .pong:
            heartbeat?.pongReceived(at: context.eventLoop.now)
        case .connectionClose:
            var payload = frame.unmaskedData
            let code = payload.readWebSocketErrorCode()
            if code == .normalClosure {
                endEverything(cleanly: true)
            } else {
                let number = code.map { String(UInt16(webSocketErrorCode: $0)) } ?? "none"
                endEverything(reason: "the WebSocket was closed with code \(number)")
            }
            if closeSent {
                // The answer to ours: the handshake is complete, and everything we sent is out.
                context.close(promise: nil)
            } else {
                closeOnceWritten(context: context, code: .normalClosure)
            }
        case .binary, .text:
            guard let (channel, payload) = decodeMessage(frame.unmaskedData, isText: frame.opcode == .text) else {
                return
            }
            receivedMessage(channel: channel, payload: payload, context: context)
        default:
            break
        }
    }

    private func decodeMessage(_ message: ByteBuffer, isText: Bool) -> (UInt8, ByteBuffer)? {
        var message = message
        guard let first = message.readInteger(as: UInt8.self) else { return nil }
        guard framing.base64, isText else { return (first, message) }
        // '0'+channel, then standard base64 with padding.
        guard first >= UInt8(ascii: "0"), let decoded = Data(base64Encoded: Data(message.readableBytesView)) else {
            return nil
        }
        return (first - UInt8(ascii: "0"), ByteBuffer(bytes: decoded))
    }

    private func receivedMessage(channel: UInt8, payload: ByteBuffer, context: ChannelHandlerContext) {
        guard !closing else { return }
        if channel == WebSocketChannelFraming.closeChannel, framing.closeSignal {
            // [0xFF, channel], exactly two bytes; anything else makes the server drop the connection (§4.3).
            guard payload.readableBytes == 1, let closed = payload.getInteger(at: payload.readerIndex, as: UInt8.self)
            else {
                closeOnceWritten(context: context, code: .protocolError)
                return
            }
            finishInput(closed)
            return
        }
        guard var input = inputs[channel], let source = input.source, !input.consumerGone, payload.readableBytes > 0
        else { return }
        var payload = payload
        if var prefix = input.portPrefix {
            switch prefix.receive(payload) {
            case .wait:
                input.portPrefix = prefix
                inputs[channel] = input
                return
            case .deliver(let rest):
                input.portPrefix = nil
                inputs[channel] = input
                guard rest.readableBytes > 0 else { return }
                payload = rest
            case .mismatch(let received):
                source.finish(
                    KubernetesStreamError(
                        .invalidPort, "channel \(channel) opened for port \(received), not \(prefix.expectedPort)"))
                input.source = nil
                inputs[channel] = input
                return
            }
        }
        switch source.yield(payload) {
        case .produceMore: break
        case .stopProducing:
            if !input.blocked {
                input.blocked = true
                blockedInputs += 1
            }
        case .dropped: input.consumerGone = true
        }
        inputs[channel] = input
    }

    private func finishInput(_ channel: UInt8) {
        guard var input = inputs[channel] else { return }
        input.source?.finish()
        input.source = nil
        unblock(&input)
        inputs[channel] = input
    }

    private func consumerWantsMore(_ channel: UInt8) {
        guard var input = inputs[channel] else { return }
        unblock(&input)
        inputs[channel] = input
    }

    private func consumerGone(_ channel: UInt8) {
        guard var input = inputs[channel] else { return }
        input.consumerGone = true
        unblock(&input)
        inputs[channel] = input
    }

    private func unblock(_ input: inout Input) {
        guard input.blocked else { return }
        input.blocked = false
        blockedInputs -= 1
        if blockedInputs == 0, readPending, let context {
            readPending = false
            context.read()
        }
    }

    func read(context: ChannelHandlerContext) {
        if blockedInputs > 0, !closing {
            readPending = true
        } else {
            context.read()
        }
    }

    // MARK: Outbound (from tasks)

    /// Sends `payload` on `channel`, in messages of at most 32 KiB; an empty payload sends the bare channel
    /// byte (the connection marker, §4.2). Completes when the connection can take more.
    func send(channel: UInt8, payload: ByteBuffer) -> EventLoopFuture<Void> {
        guard let context, !ended, !closeSent else {
            return eventLoop.makeFailedFuture(SPDYError(.sessionClosed, "the WebSocket connection ended"))
        }
        var remaining = payload
        repeat {
            let chunk = remaining.readSlice(length: min(32 << 10, remaining.readableBytes))!
            context.write(wrapOutboundOut(message(channel: channel, payload: chunk, context: context)), promise: nil)
        } while remaining.readableBytes > 0
        context.flush()
        if context.channel.isWritable { return eventLoop.makeSucceededVoidFuture() }
        let waiter = eventLoop.makePromise(of: Void.self)
        writabilityWaiters.append(waiter)
        return waiter.futureResult
    }

    private func message(channel: UInt8, payload: ByteBuffer, context: ChannelHandlerContext) -> WebSocketFrame {
        if framing.base64 {
            let text =
                String(UnicodeScalar(UInt8(ascii: "0") + channel))
                + Data(payload.readableBytesView).base64EncodedString()
            return frame(.text, ByteBuffer(string: text))
        }
        // The channel byte goes in a small buffer of its own, in the frame's extension-data slot,
        // which the encoder sends right before the data: the payload is then sent as it came,
        // not copied behind the byte (bulk output is hundreds of MiB). The room in front takes
        // the frame header.
        var channelByte = context.channel.allocator.buffer(capacity: Self.frameHeaderRoom + 1)
        channelByte.moveWriterIndex(forwardBy: Self.frameHeaderRoom)
        channelByte.moveReaderIndex(forwardBy: Self.frameHeaderRoom)
        channelByte.writeInteger(channel)
        return frame(.binary, payload, prefix: channelByte)
    }

    /// The largest WebSocket frame header: 2 bytes, a 64-bit length and a mask key.
    private static let frameHeaderRoom = 14

    /// A final frame, masked when we are the client (the encoder applies the key). `prefix`, if
    /// any, is sent before `data` as part of the same payload.
    private func frame(_ opcode: WebSocketOpcode, _ data: ByteBuffer, prefix: ByteBuffer? = nil) -> WebSocketFrame {
        WebSocketFrame(
            fin: true, opcode: opcode, maskKey: role == .client ? .random() : nil, data: data, extensionData: prefix)
    }

    /// Ends the connection from this side (§4.4, RFC 6455 §7.1.1): sends Close 1000 after everything
    /// already written, keeps reading (and dropping data) until the peer's Close comes back, then closes
    /// the connection; `closeTimeout` after our Close went out it closes anyway. Completes when the
    /// connection is closed.
    ///
    /// Closing the channel any earlier would lose the end of the output: NIO drops the writes the socket
    /// has not taken yet (with a slow reader, up to the write buffer's high watermark, and the status and
    /// Close behind them), and client-go then fails with "read message" instead of reading the status.
    func close() -> EventLoopFuture<Void> {
        guard let context else { return eventLoop.makeSucceededVoidFuture() }
        let closeFuture = context.channel.closeFuture
        guard !closing, !ended, !closeSent else { return closeFuture }
        closing = true
        if readPending {
            readPending = false
            context.read()
        }
        let written = context.eventLoop.makePromise(of: Void.self)
        sendClose(context: context, code: .normalClosure, promise: written)
        let handler = loopBoundSelf
        written.futureResult.whenComplete { _ in handler.value.startCloseTimer() }
        return closeFuture
    }

    /// Sends a Close (an echo, or one refusing the peer) and closes the connection once it is written, or
    /// after `closeTimeout` if the peer stops reading.
    private func closeOnceWritten(context: ChannelHandlerContext, code: WebSocketErrorCode) {
        let written = context.eventLoop.makePromise(of: Void.self)
        sendClose(context: context, code: code, promise: written)
        let handler = loopBoundSelf
        written.futureResult.whenComplete { _ in handler.value.context?.close(promise: nil) }
        startCloseTimer()
    }

    private func startCloseTimer() {
        guard closeTimer == nil, let context, context.channel.isActive else { return }
        let handler = loopBoundSelf
        closeTimer = context.eventLoop.scheduleTask(in: closeTimeout) { handler.value.context?.close(promise: nil) }
    }

    private func sendClose(context: ChannelHandlerContext, code: WebSocketErrorCode, promise: EventLoopPromise<Void>) {
        guard !closeSent, context.channel.isActive else {
            promise.succeed()
            return
        }
        closeSent = true
        var payload = context.channel.allocator.buffer(capacity: 2)
        payload.write(webSocketErrorCode: code)
        context.writeAndFlush(wrapOutboundOut(frame(.connectionClose, payload)), promise: promise)
    }
}
