import NIOCore
import NIOHTTP1

/// Refuses a request whose declared `content-length` is over the limit with 413 and a message
/// saying so, before reading any of its body, then closes the connection.
///
/// Closing is deliberate: the client has committed to sending the whole body, and reading
/// megabytes only to throw them away is what the limit is there to prevent. Bodies without a
/// declared length (chunked) are cut off by the aggregator behind this handler, which answers 413
/// as soon as the bytes read pass the limit.
final class RequestSizeLimitHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let maximumBodyBytes: Int
    private let metrics: WebhookMetrics
    /// Set once a request was refused: the rest of its parts are dropped until the channel closes.
    private var refused = false

    init(maximumBodyBytes: Int, metrics: WebhookMetrics) {
        self.maximumBodyBytes = maximumBodyBytes
        self.metrics = metrics
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refused else { return }
        guard case .head(let head) = unwrapInboundIn(data),
            let declared = head.headers.first(name: "content-length").flatMap(Int.init),
            declared > maximumBodyBytes
        else {
            context.fireChannelRead(data)
            return
        }
        refused = true
        let error = WebhookError(
            .bodyTooLarge, "the request declares \(declared) bytes; the limit is \(maximumBodyBytes)")
        metrics.recordRefusal(status: error.httpStatus)
        let body = ByteBuffer(string: error.message + "\n")
        let headers = HTTPHeaders([
            ("content-type", "text/plain"), ("content-length", String(body.readableBytes)), ("connection", "close"),
        ])
        context.write(
            wrapOutboundOut(
                .head(HTTPResponseHead(version: head.version, status: .payloadTooLarge, headers: headers))),
            promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        let context = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.value.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            context.value.close(promise: nil)
        }
    }
}
