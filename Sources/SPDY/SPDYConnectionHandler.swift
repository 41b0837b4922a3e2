import NIOCore

/// Runs the SPDY session protocol on a channel of ``SPDYFrame``s (protocols.md §1.5–§1.8).
///
/// It sits between the frame codec and the stream multiplexer and does one job: it drives
/// ``SPDYConnectionStateMachine`` and performs its actions. It echoes the peer's PINGs (and sends
/// its own when configured), resets streams that break the rules, holds DATA until our SYN_REPLY,
/// turns session errors into GOAWAY and a close, and closes an idle session. Inbound, it passes on
/// only frames of live streams, GOAWAY, and an RST_STREAM for every stream it reset itself. Outbound,
/// it checks each frame against the session and fails the write of one that breaks it.
///
/// Closing the channel closes the session the Kubernetes way (§1.8): RST_STREAM(CANCEL) for every
/// stream we have not finished, GOAWAY(OK) as the very last frame, then the TCP close.
public final class SPDYConnectionHandler: ChannelDuplexHandler {
    public typealias InboundIn = SPDYFrame
    public typealias InboundOut = SPDYFrame
    public typealias OutboundIn = SPDYFrame
    public typealias OutboundOut = SPDYFrame

    private let role: SPDYRole
    private let limits: SPDYLimits
    private let pingInterval: TimeAmount?
    private var machine: SPDYConnectionStateMachine?
    private var idleTimer: Scheduled<Void>?
    private var pingTimer: RepeatedTask?
    private var needsFlush = false

    /// - Parameters:
    ///   - role: which side of the upgrade we are.
    ///   - limits: stream, buffering and idle limits.
    ///   - pingInterval: send our own PINGs this often (client-go uses 5 s). Servers leave it `nil`:
    ///     nothing may be sent before the client speaks (§2).
    public init(role: SPDYRole, limits: SPDYLimits = .default, pingInterval: TimeAmount? = nil) {
        self.role = role
        self.limits = limits
        self.pingInterval = pingInterval
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        machine = SPDYConnectionStateMachine(role: role, limits: limits, now: context.eventLoop.now)
        if context.channel.isActive { startTimers(context: context) }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        stopTimers()
    }

    public func channelActive(context: ChannelHandlerContext) {
        startTimers(context: context)
        context.fireChannelActive()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        _ = machine?.connectionClosed()
        stopTimers()
        context.fireChannelInactive()
    }

    // MARK: Inbound

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        guard var machine else { return }
        machine.recordActivity(now: context.eventLoop.now)
        let action = machine.received(frame)
        let drained = machine.isDrained
        self.machine = machine
        switch action {
        case .forward:
            context.fireChannelRead(wrapInboundOut(frame))
        case .ignore, .buffered:
            break
        case .reply(let reply):
            context.write(wrapOutboundOut(reply), promise: nil)
            needsFlush = true
        case .resetStream(let rst, let notify):
            context.write(wrapOutboundOut(.rstStream(rst)), promise: nil)
            needsFlush = true
            if notify { context.fireChannelRead(wrapInboundOut(.rstStream(rst))) }
        case .forwardGoAway(let abandoned):
            for id in abandoned {
                context.fireChannelRead(
                    wrapInboundOut(.rstStream(SPDYRstStreamFrame(streamID: id, status: .refusedStream))))
            }
            context.fireChannelRead(wrapInboundOut(frame))
        }
        if drained { shutdown(context: context, status: .ok) }
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        flushIfNeeded(context: context)
        context.fireChannelReadComplete()
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? SPDYError, case .goAway(let status) = error.wireAction {
            // A session error: the GOAWAY is the only frame worth sending, then the connection ends (§8).
            if var machine, !machine.isClosed {
                let shutdown = machine.close(status: status)
                self.machine = machine
                if let goAway = shutdown.goAway {
                    context.writeAndFlush(wrapOutboundOut(.goAway(goAway)), promise: nil)
                }
            }
            context.fireErrorCaught(error)
            context.close(promise: nil)
            return
        }
        context.fireErrorCaught(error)
        if error is ChannelError || error is IOError { context.close(promise: nil) }
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            // The peer stopped sending: nothing more can arrive on any stream.
            context.close(promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    // MARK: Outbound

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let frame = unwrapOutboundIn(data)
        guard var machine else {
            promise?.fail(SPDYError(.sessionClosed, "the SPDY handler is not set up"))
            return
        }
        let released: [SPDYDataFrame]
        do {
            released = try machine.send(frame)
        } catch {
            self.machine = machine
            promise?.fail(error)
            return
        }
        machine.recordActivity(now: context.eventLoop.now)
        self.machine = machine
        context.write(wrapOutboundOut(frame), promise: promise)
        // DATA that waited for our SYN_REPLY may now go up (§1.5).
        for data in released { context.fireChannelRead(wrapInboundOut(.data(data))) }
        if !released.isEmpty { context.fireChannelReadComplete() }
    }

    public func flush(context: ChannelHandlerContext) {
        needsFlush = false
        context.flush()
    }

    public func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if mode == .all { writeShutdown(context: context, status: .ok) }
        context.close(mode: mode, promise: promise)
    }

    // MARK: Helpers

    private func flushIfNeeded(context: ChannelHandlerContext) {
        if needsFlush {
            needsFlush = false
            context.flush()
        }
    }

    /// RST_STREAM(CANCEL) for what we have not finished, then GOAWAY: the last frames of the session.
    private func writeShutdown(context: ChannelHandlerContext, status: SPDYGoAwayStatus) {
        guard var machine, !machine.isClosed else { return }
        let shutdown = machine.close(status: status)
        self.machine = machine
        for rst in shutdown.resets { context.write(wrapOutboundOut(.rstStream(rst)), promise: nil) }
        if let goAway = shutdown.goAway { context.write(wrapOutboundOut(.goAway(goAway)), promise: nil) }
        context.flush()
    }

    private func shutdown(context: ChannelHandlerContext, status: SPDYGoAwayStatus) {
        writeShutdown(context: context, status: status)
        context.close(promise: nil)
    }

    private func startTimers(context: ChannelHandlerContext) {
        guard idleTimer == nil, pingTimer == nil else { return }
        scheduleIdleCheck(context: context)
        if let pingInterval {
            let loopBoundContext = NIOLoopBound(context, eventLoop: context.eventLoop)
            let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
            pingTimer = context.eventLoop.scheduleRepeatedTask(initialDelay: pingInterval, delay: pingInterval) { _ in
                handler.value.sendPing(context: loopBoundContext.value)
            }
        }
    }

    private func stopTimers() {
        idleTimer?.cancel()
        idleTimer = nil
        pingTimer?.cancel()
        pingTimer = nil
    }

    /// A keep-alive PING, only after a quiet interval. A busy connection needs none, and a PING that
    /// reaches the apiserver after the pod's side of an exec ended lies unread in its socket when
    /// it closes: the kernel then answers with RST instead of FIN, and output still in our receive
    /// buffer (a consumer applying backpressure) is lost with the status.
    private func sendPing(context: ChannelHandlerContext) {
        guard let pingInterval, machine?.hasBeenQuiet(for: pingInterval, now: context.eventLoop.now) == true,
            let ping = machine?.nextPing()
        else { return }
        context.writeAndFlush(wrapOutboundOut(.ping(ping)), promise: nil)
    }

    private func scheduleIdleCheck(context: ChannelHandlerContext) {
        guard let deadline = machine?.idleDeadline else { return }
        let loopBoundContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        idleTimer = context.eventLoop.scheduleTask(deadline: deadline) {
            handler.value.idleCheck(context: loopBoundContext.value)
        }
    }

    private func idleCheck(context: ChannelHandlerContext) {
        idleTimer = nil
        guard let machine, !machine.isClosed else { return }
        guard machine.isIdle(now: context.eventLoop.now) else {
            scheduleIdleCheck(context: context)
            return
        }
        context.fireErrorCaught(SPDYError(.idleTimeout, "no frame for \(limits.idleTimeout)"))
        shutdown(context: context, status: .ok)
    }
}
