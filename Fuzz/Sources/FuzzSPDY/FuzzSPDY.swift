// libFuzzer callback (handed to the driver in main.swift): arbitrary bytes into the SPDY frame decoder and header decompression, and
// what is built on them (state machine, header and resize validation). Any crash, hang or sanitizer
// report is a bug; a failed round-trip check traps on purpose.
import NIOCore
import NIOEmbedded
import SPDY

/// The first input byte picks how the rest is used:
/// - even: raw wire bytes, appended in pieces whose sizes come from the input itself;
/// - odd: a list of frames whose header blocks are fuzzer-chosen plain bytes, compressed by a real
///   deflater first, so the fuzzer reaches the block parser past zlib.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSPDY(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let mode = bytes.first else { return 0 }
    let body = Array(bytes.dropFirst())
    let limits = SPDYLimits(
        maxDataFramePayload: 64 << 10, maxControlFramePayload: 16 << 10, maxCompressedHeaderBlock: 8 << 10,
        maxDecompressedHeaderBlock: 32 << 10, maxConcurrentStreams: 8, maxBufferedBytesBeforeReply: 4096)
    let wire = mode & 1 == 0 ? ByteBuffer(bytes: body) : FuzzInput.framesWithCompressedBlocks(body)
    FuzzInput.decode(wire, pieces: Int(mode >> 1), limits: limits)
    FuzzInput.serve(wire, limits: limits)
    return 0
}

enum FuzzInput {
    static func decode(_ wire: ByteBuffer, pieces: Int, limits: SPDYLimits) {
        var decoder = SPDYFrameDecoder(limits: limits)
        var resize = TerminalSizeDecoder()
        var remaining = wire
        let pieceSize = max(1, pieces * 7 + 1)
        while remaining.readableBytes > 0 {
            decoder.append(remaining.readSlice(length: min(pieceSize, remaining.readableBytes))!)
            while true {
                let frame: SPDYFrame?
                do {
                    frame = try decoder.nextFrame()
                } catch {
                    return
                }
                guard let frame else { break }
                checkRoundTrip(frame, limits: limits)
                if case .data(let data) = frame { _ = try? resize.append(data.data) }
                if case .synStream(let syn) = frame {
                    _ = try? PortForwardStreamHeaders(syn.headers)
                    _ = try? syn.headers.singleValue(forName: "streamtype")
                }
            }
        }
    }

    /// Frames that decoded must survive encode → decode unchanged, whenever the strict encoder accepts them.
    static func checkRoundTrip(_ frame: SPDYFrame, limits: SPDYLimits) {
        var encoder = SPDYFrameEncoder()
        var buffer = ByteBuffer()
        guard (try? encoder.encode(frame, into: &buffer)) != nil else { return }
        var decoder = SPDYFrameDecoder(limits: SPDYLimits())
        decoder.append(buffer)
        guard let again = try? decoder.nextFrame(), again == frame else {
            fatalError("round trip changed \(frame)")
        }
    }

    /// Builds frames from `body`: each record is [type][flags][length][bytes…]; header-bearing types
    /// get their bytes compressed as a header block with one deflate context, in order.
    static func framesWithCompressedBlocks(_ body: [UInt8]) -> ByteBuffer {
        let deflater = SPDYHeaderDeflater()
        var wire = ByteBuffer()
        var index = 0
        var streamID: UInt32 = 1
        while index + 3 <= body.count {
            let type = body[index] % 10
            let flags = body[index + 1]
            let length = min(Int(body[index + 2]) * 4, body.count - index - 3)
            let chunk = Array(body[(index + 3)..<(index + 3 + length)])
            index += 3 + length
            var payload = ByteBuffer()
            switch type {
            case 1, 2, 8:
                payload.writeInteger(streamID)
                if type == 1 { payload.writeMultipleIntegers(UInt32(0), UInt16(0)) }
                if (try? deflater.compress(ByteBuffer(bytes: chunk), into: &payload)) == nil { return wire }
                streamID += 2
            case 0:
                wire.writeMultipleIntegers(streamID &- 2, UInt32(flags & 1) << 24 | UInt32(chunk.count))
                wire.writeBytes(chunk)
                continue
            default:
                payload.writeBytes(chunk)
            }
            wire.writeMultipleIntegers(
                UInt16(0x8003), UInt16(type), UInt32(flags) << 24 | UInt32(payload.readableBytes))
            wire.writeBuffer(&payload)
        }
        return wire
    }
}

extension FuzzInput {
    /// The same bytes through the server pipeline: decoder, encoder and connection handler (state machine,
    /// PING echo, resets, GOAWAY), with a consumer that replies to every stream and echoes its data.
    static func serve(_ wire: ByteBuffer, limits: SPDYLimits) {
        let channel = EmbeddedChannel()
        let sync = channel.pipeline.syncOperations
        guard
            (try? sync.addHandlers([
                ByteToMessageHandler(SPDYFrameDecoderHandler(limits: limits)),
                MessageToByteHandler(SPDYFrameEncoderHandler()),
                SPDYConnectionHandler(role: .server, limits: limits),
                EchoingConsumer(),
            ])) != nil
        else { return }
        _ = try? channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        _ = try? channel.writeInbound(wire)
        while (try? channel.readOutbound(as: ByteBuffer.self)) != nil {}
        _ = try? channel.finish()
        // finish() gives up on a channel a session error already closed; run what it left queued.
        channel.embeddedEventLoop.run()
    }
}

/// Replies to every new stream and writes back what arrives on it, then half-closes after a FIN.
final class EchoingConsumer: ChannelInboundHandler {
    typealias InboundIn = SPDYFrame
    typealias OutboundOut = SPDYFrame

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .synStream(let syn):
            context.writeAndFlush(wrapOutboundOut(.synReply(SPDYSynReplyFrame(streamID: syn.streamID))), promise: nil)
        case .data(let frame):
            context.writeAndFlush(wrapOutboundOut(.data(frame)), promise: nil)
        default:
            break
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {}
}
