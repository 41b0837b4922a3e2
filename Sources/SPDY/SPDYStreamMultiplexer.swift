import NIOCore

/// Exposes each stream of a SPDY connection to async code as an ``SPDYStream`` (protocols.md §7.3).
///
/// The last handler of a SPDY pipeline, after ``SPDYConnectionHandler``. Its one job is the hand-over
/// between the event loop and tasks: inbound DATA goes into each stream's ``InboundByteStream``, and
/// when any of them is full the channel stops reading until its consumer catches up (TCP is the only
/// backpressure Go peers understand, §1.6); writes from tasks are cut into DATA frames and complete
/// when the channel is writable again. It allocates our stream ids and times out unanswered SYN_STREAMs.
///
/// DATA of one stream read in one burst is handed over as one chunk when the burst ends (up to
/// ``maxCoalescedBytes``): a consumer pays its per-chunk costs (a task switch, a write and flush on
/// another connection, an event in a recording) per burst instead of per frame.
final class SPDYStreamMultiplexer: ChannelDuplexHandler {
    typealias InboundIn = SPDYFrame
    typealias OutboundIn = SPDYFrame
    typealias OutboundOut = SPDYFrame

    /// What the multiplexer tracks per stream.
    private struct Entry {
        /// Feeds ``SPDYStream/inbound``; `nil` once the inbound side ended (FIN, RST or consumer gone).
        var source: InboundByteStream.Source?
        /// The consumer dropped the sequence: later DATA is discarded.
        var consumerGone = false
        /// The source asked us to stop producing.
        var blocked = false
        /// Our SYN_STREAM waiting for its SYN_REPLY.
        var opening: Opening?
        /// We sent FIN or RST.
        var localFinished = false
    }

    private struct Opening {
        let headers: SPDYHeaders
        let inbound: InboundByteStream
        let promise: EventLoopPromise<SPDYStream>
        let timeout: Scheduled<Void>?
    }

    /// The largest chunk DATA frames are merged into; with at most
    /// ``SPDYLimits/maxBufferedFramesPerStream`` chunks waiting, this bounds what a slow consumer
    /// holds per stream (2 MiB at the defaults).
    static let maxCoalescedBytes = 128 << 10

    private let configuration: SPDYSessionConfiguration
    private let eventLoop: any EventLoop
    /// DATA read in the current burst, per stream, not handed over yet.
    private var held: [SPDYStreamID: ByteBuffer] = [:]
    /// A hand-over is queued on the event loop: it runs after the read burst even when no
    /// `channelReadComplete` follows (bytes an upgrade handler re-fires get none).
    private var handOverQueued = false
    private var context: ChannelHandlerContext?
    private(set) var session: SPDYSession?
    private var inboundStreams: AsyncStream<SPDYStream>.Continuation?
    private var entries: [SPDYStreamID: Entry] = [:]
    private var nextStreamID: UInt32
    private var blockedStreams = 0
    private var readPending = false
    private var writabilityWaiters: [EventLoopPromise<Void>] = []
    private var goAwayReceived = false
    private var closed = false
    /// The first error seen: why the session ended.
    private(set) var closeReason: (any Error)?

    init(configuration: SPDYSessionConfiguration, eventLoop: any EventLoop) {
        self.configuration = configuration
        self.eventLoop = eventLoop
        nextStreamID = configuration.role.firstID
    }

    private var loopBoundSelf: NIOLoopBound<SPDYStreamMultiplexer> { NIOLoopBound(self, eventLoop: eventLoop) }

    // MARK: Lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let (stream, continuation) = AsyncStream<SPDYStream>.makeStream()
        inboundStreams = continuation
        session = SPDYSession(
            role: configuration.role, channel: context.channel, inboundStreams: stream, multiplexer: loopBoundSelf)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        endEverything()
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        endEverything()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if closeReason == nil { closeReason = error }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            let waiters = writabilityWaiters
            writabilityWaiters.removeAll()
            for waiter in waiters { waiter.succeed() }
        }
        context.fireChannelWritabilityChanged()
    }

    /// The session is over: every stream, opener and writer learns it.
    private func endEverything() {
        guard !closed else { return }
        closed = true
        let error = SPDYError(
            .sessionClosed, closeReason.map { "the SPDY session ended: \($0)" } ?? "the SPDY session ended")
        for id in Array(held.keys) { handOverHeld(id) }
        let entries = self.entries
        self.entries.removeAll()
        for (_, entry) in entries {
            entry.source?.finish(error)
            entry.opening?.timeout?.cancel()
            entry.opening?.promise.fail(error)
        }
        let waiters = writabilityWaiters
        writabilityWaiters.removeAll()
        for waiter in waiters { waiter.fail(error) }
        inboundStreams?.finish()
        inboundStreams = nil
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .synStream(let syn):
            receivedSynStream(syn, context: context)
        case .synReply(let reply):
            receivedReply(reply)
        case .data(let frame):
            deliver(frame.streamID, frame.data, isFin: frame.isFin)
        case .headers(let headers):
            if headers.isFin { deliver(headers.streamID, ByteBuffer(), isFin: true) }
        case .rstStream(let rst):
            receivedReset(rst)
        case .goAway:
            goAwayReceived = true
        case .settings, .ping, .windowUpdate:
            break
        }
    }

    private func receivedSynStream(_ syn: SPDYSynStreamFrame, context: ChannelHandlerContext) {
        let id = syn.streamID
        let (inbound, source) = makeInbound(id)
        entries[id] = Entry(source: source)
        let stream = SPDYStream(
            id: id, headers: syn.headers, replyHeaders: nil, inbound: inbound, eventLoop: eventLoop,
            multiplexer: loopBoundSelf)
        let delivered: Bool
        switch inboundStreams?.yield(stream) {
        case .enqueued: delivered = true
        case .dropped, .terminated, .none: delivered = false
        @unknown default: delivered = false
        }
        if !delivered {
            // Nobody takes new streams any more: refuse it rather than leave the peer waiting.
            context.writeAndFlush(
                wrapOutboundOut(.rstStream(SPDYRstStreamFrame(streamID: id, status: .refusedStream))), promise: nil)
            removeEntry(id, finishing: nil)
        }
    }

    private func receivedReply(_ reply: SPDYSynReplyFrame) {
        guard var entry = entries[reply.streamID], let opening = entry.opening else { return }
        entry.opening = nil
        entries[reply.streamID] = entry
        opening.timeout?.cancel()
        let stream = SPDYStream(
            id: reply.streamID, headers: opening.headers, replyHeaders: reply.headers, inbound: opening.inbound,
            eventLoop: eventLoop, multiplexer: loopBoundSelf)
        opening.promise.succeed(stream)
        if reply.isFin { deliver(reply.streamID, ByteBuffer(), isFin: true) }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        handOverAllHeld()
        context.fireChannelReadComplete()
    }

    private func handOverAllHeld() {
        for id in Array(held.keys) { handOverHeld(id) }
    }

    private func deliver(_ id: SPDYStreamID, _ data: ByteBuffer, isFin: Bool) {
        guard let entry = entries[id] else { return }
        if entry.source != nil, data.readableBytes > 0, !entry.consumerGone {
            if held[id] == nil {
                held[id] = data
                if !handOverQueued {
                    handOverQueued = true
                    let multiplexer = loopBoundSelf
                    eventLoop.execute {
                        multiplexer.value.handOverQueued = false
                        multiplexer.value.handOverAllHeld()
                    }
                }
            } else {
                var data = data
                held[id]!.writeBuffer(&data)
            }
            if held[id]!.readableBytes >= Self.maxCoalescedBytes { handOverHeld(id) }
        }
        if isFin { handOverHeld(id) }
        guard var entry = entries[id] else { return }
        if isFin {
            entry.source?.finish()
            entry.source = nil
            unblock(&entry)
        }
        entries[id] = entry
        removeIfFinished(id)
    }

    /// Yields the stream's held DATA; reading stops while its consumer is full.
    private func handOverHeld(_ id: SPDYStreamID) {
        guard let data = held.removeValue(forKey: id), var entry = entries[id], let source = entry.source,
            !entry.consumerGone
        else { return }
        switch source.yield(data) {
        case .produceMore:
            break
        case .stopProducing:
            if !entry.blocked {
                entry.blocked = true
                blockedStreams += 1
            }
        case .dropped:
            entry.consumerGone = true
        }
        entries[id] = entry
    }

    private func receivedReset(_ rst: SPDYRstStreamFrame) {
        let error = SPDYError(
            .streamReset, "the peer reset the stream", streamID: rst.streamID, resetStatus: rst.status)
        removeEntry(rst.streamID, finishing: error)
    }

    private func makeInbound(_ id: SPDYStreamID) -> (InboundByteStream, InboundByteStream.Source) {
        let eventLoop = self.eventLoop
        let multiplexer = loopBoundSelf
        return InboundByteStream.makeStream(
            highWatermark: configuration.limits.maxBufferedFramesPerStream,
            onDemand: { eventLoop.execute { multiplexer.value.consumerWantsMore(id) } },
            onTermination: { eventLoop.execute { multiplexer.value.consumerTerminated(id) } })
    }

    private func consumerWantsMore(_ id: SPDYStreamID) {
        guard var entry = entries[id] else { return }
        unblock(&entry)
        entries[id] = entry
    }

    /// See ``SPDYStream/discardInbound()``.
    func discardInbound(_ id: SPDYStreamID) {
        consumerTerminated(id)
    }

    private func consumerTerminated(_ id: SPDYStreamID) {
        held[id] = nil
        guard var entry = entries[id] else { return }
        entry.consumerGone = true
        unblock(&entry)
        entries[id] = entry
    }

    private func unblock(_ entry: inout Entry) {
        guard entry.blocked else { return }
        entry.blocked = false
        blockedStreams -= 1
        if blockedStreams == 0, readPending, let context {
            readPending = false
            context.read()
        }
    }

    private func removeIfFinished(_ id: SPDYStreamID) {
        guard let entry = entries[id], entry.source == nil, entry.localFinished, entry.opening == nil else { return }
        entries[id] = nil
    }

    private func removeEntry(_ id: SPDYStreamID, finishing error: SPDYError?) {
        handOverHeld(id)
        guard var entry = entries.removeValue(forKey: id) else { return }
        if let error {
            entry.source?.finish(error)
        } else {
            entry.source?.finish()
        }
        entry.source = nil
        unblock(&entry)
        if let opening = entry.opening {
            opening.timeout?.cancel()
            opening.promise.fail(error ?? SPDYError(.streamClosed, "the stream was reset", streamID: id))
        }
    }

    // MARK: Outbound (from read gating and from tasks)

    func read(context: ChannelHandlerContext) {
        if blockedStreams > 0 {
            readPending = true
        } else {
            context.read()
        }
    }

    func openStream(headers: SPDYHeaders, isFin: Bool) -> EventLoopFuture<SPDYStream> {
        guard let context, !closed else { return eventLoop.makeFailedFuture(sessionClosedError()) }
        guard !goAwayReceived else {
            return eventLoop.makeFailedFuture(SPDYError(.goAwayReceived, "the peer sent GOAWAY"))
        }
        guard nextStreamID <= SPDYStreamID.maximum.rawValue else {
            return eventLoop.makeFailedFuture(SPDYError(.streamIDsExhausted, "no stream ids left"))
        }
        let id = SPDYStreamID(nextStreamID)
        nextStreamID += 2
        let promise = eventLoop.makePromise(of: SPDYStream.self)
        let (inbound, source) = makeInbound(id)
        let multiplexer = loopBoundSelf
        let timeout = eventLoop.scheduleTask(in: configuration.limits.replyTimeout) {
            multiplexer.value.replyTimedOut(id)
        }
        entries[id] = Entry(
            source: source,
            opening: Opening(headers: headers, inbound: inbound, promise: promise, timeout: timeout),
            localFinished: isFin)
        let written = eventLoop.makePromise(of: Void.self)
        written.futureResult.whenFailure { error in multiplexer.value.openFailed(id, error) }
        context.writeAndFlush(
            wrapOutboundOut(.synStream(SPDYSynStreamFrame(streamID: id, headers: headers, isFin: isFin))),
            promise: written)
        return promise.futureResult
    }

    private func openFailed(_ id: SPDYStreamID, _ error: any Error) {
        guard var entry = entries.removeValue(forKey: id) else { return }
        entry.source?.finish(error)
        entry.source = nil
        unblock(&entry)
        entry.opening?.timeout?.cancel()
        entry.opening?.promise.fail(error)
    }

    private func replyTimedOut(_ id: SPDYStreamID) {
        guard let entry = entries[id], entry.opening != nil else { return }
        let error = SPDYError(.replyTimeout, "no SYN_REPLY within \(configuration.limits.replyTimeout)", streamID: id)
        if case .resetStream(let streamID, let status) = error.wireAction {
            context?.writeAndFlush(
                wrapOutboundOut(.rstStream(SPDYRstStreamFrame(streamID: streamID, status: status))), promise: nil)
        }
        removeEntry(id, finishing: error)
    }

    func reply(id: SPDYStreamID, headers: SPDYHeaders) -> EventLoopFuture<Void> {
        guard let context, !closed else { return eventLoop.makeFailedFuture(sessionClosedError()) }
        let promise = eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(
            wrapOutboundOut(.synReply(SPDYSynReplyFrame(streamID: id, headers: headers))), promise: promise)
        return promise.futureResult
    }

    func write(id: SPDYStreamID, data: ByteBuffer, isFin: Bool) -> EventLoopFuture<Void> {
        guard let context, !closed else { return eventLoop.makeFailedFuture(sessionClosedError()) }
        var remaining = data
        let frameSize = max(1, configuration.outboundDataFrameSize)
        let last = eventLoop.makePromise(of: Void.self)
        // The connection handler fails a write it refuses synchronously, inside context.write.
        var refused: (any Error)?
        last.futureResult.assumeIsolated().whenFailure { refused = $0 }
        repeat {
            let chunk = remaining.readSlice(length: min(frameSize, remaining.readableBytes))!
            let isLast = remaining.readableBytes == 0
            let frame = SPDYDataFrame(streamID: id, data: chunk, isFin: isFin && isLast)
            context.write(wrapOutboundOut(.data(frame)), promise: isLast ? last : nil)
        } while remaining.readableBytes > 0
        context.flush()
        if isFin, var entry = entries[id] {
            entry.localFinished = true
            entries[id] = entry
            removeIfFinished(id)
        }
        // A write the session refused fails at once; otherwise wait only while the channel is full.
        if let refused { return eventLoop.makeFailedFuture(refused) }
        if context.channel.isWritable { return eventLoop.makeSucceededVoidFuture() }
        let waiter = eventLoop.makePromise(of: Void.self)
        writabilityWaiters.append(waiter)
        return waiter.futureResult
    }

    func reset(id: SPDYStreamID, status: SPDYStreamStatus) -> EventLoopFuture<Void> {
        guard let context, !closed, entries[id] != nil else { return eventLoop.makeSucceededVoidFuture() }
        removeEntry(id, finishing: SPDYError(.streamClosed, "we reset the stream", streamID: id))
        let promise = eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(
            wrapOutboundOut(.rstStream(SPDYRstStreamFrame(streamID: id, status: status))), promise: promise)
        return promise.futureResult
    }

    private func sessionClosedError() -> SPDYError {
        SPDYError(.sessionClosed, closeReason.map { "the SPDY session ended: \($0)" } ?? "the SPDY session ended")
    }
}
