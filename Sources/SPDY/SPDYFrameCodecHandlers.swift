import NIOCore

/// The NIO decoder: bytes in, ``SPDYFrame``s out, through one ``SPDYFrameDecoder`` (protocols.md §1).
///
/// Use it as `ByteToMessageHandler(SPDYFrameDecoderHandler(limits:))`. Every error it throws is a
/// session error; ``SPDYConnectionHandler`` turns it into GOAWAY and closes.
public struct SPDYFrameDecoderHandler: ByteToMessageDecoder {
    public typealias InboundOut = SPDYFrame

    private var decoder: SPDYFrameDecoder

    public init(limits: SPDYLimits = .default) {
        decoder = SPDYFrameDecoder(limits: limits)
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let frame = try decoder.decodeFrame(from: &buffer) else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(frame))
        return .continue
    }

    public mutating func decodeLast(
        context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool
    )
        throws -> DecodingState
    {
        // A frame cut short by the end of the connection is dropped: its stream ends with the connection.
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}

/// The NIO encoder: ``SPDYFrame``s in, bytes out, through one ``SPDYFrameEncoder`` (protocols.md §1).
///
/// Use it as `MessageToByteHandler(SPDYFrameEncoderHandler(compression:))`. Frames are compressed in
/// write order, which is wire order, so the peer's inflate context stays in step (§1.4).
public final class SPDYFrameEncoderHandler: MessageToByteEncoder {
    public typealias OutboundIn = SPDYFrame

    private var encoder: SPDYFrameEncoder

    public init(compression: SPDYHeaderCompressionParameters = .compact) {
        encoder = SPDYFrameEncoder(compression: compression)
    }

    public func encode(data: SPDYFrame, out: inout ByteBuffer) throws {
        try encoder.encode(data, into: &out)
    }
}
