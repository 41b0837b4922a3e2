import NIOCore

/// Remembers when the connection last received bytes, TLS records included.
///
/// The idle timeouts count from the last byte. ``ProxyConnectionHandler`` sees only whole request
/// parts, so without this a request head arriving in pieces (or after a slow TLS handshake) would
/// count from the last part it saw, or from the accept, and be closed before it had been quiet
/// for the limit.
final class LastReadRecorder: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private(set) var lastRead = NIODeadline.now()

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        lastRead = .now()
        context.fireChannelRead(data)
    }
}
