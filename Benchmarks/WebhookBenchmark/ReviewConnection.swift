import NIOCore
import NIOHTTP1

/// One review POST, ready to write.
struct PreparedReview: Sendable {
    var head: HTTPRequestHead
    var body: ByteBuffer
}

/// Drives one keep-alive HTTP/1.1 connection: one review in flight at a time (the apiserver does
/// not pipeline either), each answer timed on the event loop where it arrives.
///
/// Closed loop: the next review goes out as soon as an answer arrives, until the deadline.
/// Paced (open loop): reviews are queued at the times they were due; an answer's latency counts
/// from that due time, so a slow answer also charges the reviews that waited behind it (no
/// coordinated omission).
final class ReviewConnection: ChannelInboundHandler {
    typealias InboundIn = NIOHTTPClientResponseFull
    typealias OutboundOut = HTTPClientRequestPart

    private let reviews: [PreparedReview]
    private var nextReview: Int
    private var context: ChannelHandlerContext?
    /// When the review in flight was due, if one is.
    private var inFlight: ContinuousClock.Instant?
    private var due: [ContinuousClock.Instant] = []
    private var closedLoopDeadline: ContinuousClock.Instant?
    private var drained: EventLoopPromise<Void>?

    private(set) var latencies: [Duration] = []
    private(set) var failures = 0

    /// `firstReview` staggers the round-robin so that connections do not all send the same review.
    init(reviews: [PreparedReview], firstReview: Int) {
        self.reviews = reviews
        self.nextReview = firstReview % reviews.count
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    /// Forgets what was measured (after a warm-up).
    func reset() {
        latencies.removeAll(keepingCapacity: true)
        failures = 0
    }

    /// Sends reviews back to back until `deadline`; the future completes when the last answer is in.
    func runClosedLoop(until deadline: ContinuousClock.Instant) -> EventLoopFuture<Void> {
        let promise = context!.eventLoop.makePromise(of: Void.self)
        closedLoopDeadline = deadline
        drained = promise
        send(due: .now)
        return promise.futureResult
    }

    /// Queues one review that was due at `time`.
    func enqueue(due time: ContinuousClock.Instant) {
        if inFlight == nil { send(due: time) } else { due.append(time) }
    }

    /// Completes once every queued review has been answered.
    func drain() -> EventLoopFuture<Void> {
        guard inFlight != nil else { return context!.eventLoop.makeSucceededVoidFuture() }
        let promise = context!.eventLoop.makePromise(of: Void.self)
        drained = promise
        return promise.futureResult
    }

    private func send(due time: ContinuousClock.Instant) {
        guard let context else { return }
        let review = reviews[nextReview]
        nextReview = (nextReview + 1) % reviews.count
        inFlight = time
        context.write(wrapOutboundOut(.head(review.head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(review.body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let response = unwrapInboundIn(data)
        let now = ContinuousClock.now
        if let started = inFlight { latencies.append(now - started) }
        if response.head.status != .ok { failures += 1 }
        inFlight = nil
        if let deadline = closedLoopDeadline {
            if now < deadline { return send(due: now) }
            closedLoopDeadline = nil
        } else if !due.isEmpty {
            return send(due: due.removeFirst())
        }
        drained?.succeed()
        drained = nil
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        drained?.fail(error)
        drained = nil
        context.close(promise: nil)
    }
}
