import NIOCore
import NIOHTTP1

/// Drops the parse error for a request the connection's end cut off.
///
/// When a connection closes with part of a request head read, the HTTP decoder reports the
/// leftover as an error, and `HTTPServerProtocolErrorHandler` answers it with a 400 that nobody can
/// read. If the close came from quiescing (the proxy shutting down), `HTTPServerPipelineHandler`
/// has already finished and treats that write as a broken invariant (a crash in debug builds).
/// Errors while the connection is still open go on as before.
final class CutOffRequestErrorFilter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard context.channel.isActive else { return }
        context.fireErrorCaught(error)
    }
}
