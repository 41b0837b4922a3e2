import NIOCore

/// Copies small decrypted reads into buffers of their own size.
///
/// NIOSSL decrypts every read into one 32 KiB buffer and hands it on. If a later handler keeps any
/// slice of it (a parser's leftover, a payload waiting in a stream), the next read must allocate
/// a new 32 KiB buffer, and an idle connection ends up pinning two. Small reads are what idle
/// sessions and ordinary requests see, and a copy of a few hundred bytes is cheaper than the
/// memory; large reads (bulk transfers) go on untouched.
final class SmallReadCopyHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// Reads up to this size are copied.
    static let copyLimit = 4096

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        guard buffer.readableBytes <= Self.copyLimit else {
            context.fireChannelRead(data)
            return
        }
        var copy = context.channel.allocator.buffer(capacity: buffer.readableBytes)
        copy.writeImmutableBuffer(buffer)
        context.fireChannelRead(wrapInboundOut(copy))
    }
}
