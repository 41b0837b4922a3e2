import NIOCore
import NIOEmbedded
import NIOTestUtils
import Testing

@testable import SPDY

/// The far end of a connection under test: its own encoder and decoder (one zlib context each way).
struct TestPeer {
    var encoder: SPDYFrameEncoder
    var decoder: SPDYFrameDecoder

    init() {
        encoder = SPDYFrameEncoder()
        decoder = SPDYFrameDecoder()
    }

    mutating func bytes(_ frames: SPDYFrame...) throws -> ByteBuffer {
        var buffer = ByteBuffer()
        for frame in frames { try encoder.encode(frame, into: &buffer) }
        return buffer
    }

    /// Every frame the channel has written so far.
    mutating func received(from channel: EmbeddedChannel) throws -> [SPDYFrame] {
        var frames: [SPDYFrame] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) {
            frames += try decoder.decodeAll(buffer)
        }
        return frames
    }
}

/// Collects what the connection handler passes up.
final class FrameCollector: ChannelInboundHandler {
    typealias InboundIn = SPDYFrame
    var frames: [SPDYFrame] = []
    var errors: [any Error] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        frames.append(unwrapInboundIn(data))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        errors.append(error)
    }
}

@Suite("SPDY handlers on an EmbeddedChannel")
struct HandlerTests {
    static func serverChannel(limits: SPDYLimits = .default) throws -> (EmbeddedChannel, FrameCollector) {
        let channel = EmbeddedChannel()
        let collector = FrameCollector()
        try channel.pipeline.syncOperations.addHandlers([
            ByteToMessageHandler(SPDYFrameDecoderHandler(limits: limits)),
            MessageToByteHandler(SPDYFrameEncoderHandler()),
            SPDYConnectionHandler(role: .server, limits: limits),
            collector,
        ])
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return (channel, collector)
    }

    static func syn(_ id: UInt32, _ type: String = "stdin") -> SPDYFrame {
        .synStream(SPDYSynStreamFrame(streamID: SPDYStreamID(id), headers: ["streamtype": type]))
    }

    @Test("the decoder handler survives any split of its input (ByteToMessageDecoderVerifier)")
    func decoderVerifier() throws {
        // The verifier replays each input many times into one decoder, so only frames without header
        // blocks qualify: a header block can only be inflated once per zlib context. The §9.1 stream as a
        // whole is drip-fed separately in FrameDecoderVectorTests.
        let hexFrames = [
            "00000007000000197b225769647468223a38302c22486569676874223a32347d0a", "00000003000000076578697420330d",
            "800300060000000400000001", "0000000101000000", "80030003000000080000000100000005",
            "80030009000000080000000300010000", "800300040000000c000000010000000700010000",
            "80030007000000080000000700000000",
        ]
        var reference = SPDYFrameDecoder()
        let pairs = try hexFrames.map { hex in
            let input = ByteBuffer(hex: hex)
            return (input, try reference.decodeAll(input))
        }
        try ByteToMessageDecoderVerifier.verifyDecoder(
            inputOutputPairs: pairs, decoderFactory: { SPDYFrameDecoderHandler() })
    }

    @Test("a peer PING is echoed with the identical 12 bytes; our own-parity PING is not")
    func pingEcho() throws {
        let (channel, collector) = try Self.serverChannel()
        try channel.writeInbound(ByteBuffer(hex: "800300060000000400000001"))
        #expect(try channel.readOutbound(as: ByteBuffer.self)?.hex == "800300060000000400000001")
        try channel.writeInbound(ByteBuffer(hex: "800300060000000400000002"))
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)
        #expect(collector.frames.isEmpty)
        _ = try? channel.finish()
    }

    @Test("the §9.1 client frames go through, and a replayed SYN_STREAM id is reset with PROTOCOL_ERROR")
    func regressingStreamID() throws {
        let (channel, collector) = try Self.serverChannel()
        var peer = TestPeer()
        try channel.writeInbound(try peer.bytes(Self.syn(1, "error"), Self.syn(3)))
        #expect(collector.frames.count == 2)
        try channel.writeInbound(try peer.bytes(Self.syn(3, "stdout")))
        #expect(
            try peer.received(from: channel) == [
                .rstStream(SPDYRstStreamFrame(streamID: SPDYStreamID(3), status: .protocolError))
            ])
        // Stream 3 died with the reset: the layer above hears of it.
        #expect(
            collector.frames.last == .rstStream(SPDYRstStreamFrame(streamID: SPDYStreamID(3), status: .protocolError)))
        // The session lives on.
        try channel.writeInbound(try peer.bytes(Self.syn(5, "stdout")))
        #expect(collector.frames.count == 4)
        _ = try? channel.finish()
    }

    @Test("a zlib bomb in a SYN_STREAM ends the session with GOAWAY(PROTOCOL_ERROR) and a close")
    func bombGoAway() throws {
        let (channel, collector) = try Self.serverChannel()
        var peer = TestPeer()
        try channel.writeInbound(try peer.bytes(.ping(SPDYPingFrame(id: 1))))
        _ = try peer.received(from: channel)
        let bomb = try synStreamFrame(
            id: 1, plain: rawHeaderBlock([("x", String(repeating: "a", count: 1 << 20))]),
            deflater: SPDYHeaderDeflater())
        _ = try? channel.writeInbound(bomb)
        #expect(
            try peer.received(from: channel)
                == [.goAway(SPDYGoAwayFrame(lastGoodStreamID: .none, status: .protocolError))])
        #expect(!channel.isActive)
        #expect((collector.errors.first as? SPDYError)?.kind == .decompressedHeaderBlockTooLarge)
    }

    @Test("maxConcurrentStreams at the handler: the limit is accepted, one more is refused with REFUSED_STREAM")
    func concurrencyLimit() throws {
        let (channel, collector) = try Self.serverChannel(limits: SPDYLimits(maxConcurrentStreams: 2))
        var peer = TestPeer()
        try channel.writeInbound(try peer.bytes(Self.syn(1), Self.syn(3), Self.syn(5)))
        #expect(collector.frames.count == 2)
        #expect(
            try peer.received(from: channel)
                == [.rstStream(SPDYRstStreamFrame(streamID: SPDYStreamID(5), status: .refusedStream))])
        _ = try? channel.finish()
    }

    @Test("DATA before our SYN_REPLY waits for it and then goes up; DATA on a never-opened stream gets INVALID_STREAM")
    func dataOrdering() throws {
        let (channel, collector) = try Self.serverChannel()
        var peer = TestPeer()
        let data = SPDYFrame.data(SPDYDataFrame(streamID: SPDYStreamID(1), data: ByteBuffer(string: "early")))
        try channel.writeInbound(try peer.bytes(Self.syn(1), data))
        #expect(collector.frames.count == 1)
        try channel.writeOutbound(SPDYFrame.synReply(SPDYSynReplyFrame(streamID: SPDYStreamID(1))))
        #expect(collector.frames == [Self.syn(1), data])
        #expect(try peer.received(from: channel) == [.synReply(SPDYSynReplyFrame(streamID: SPDYStreamID(1)))])
        try channel.writeInbound(
            try peer.bytes(.data(SPDYDataFrame(streamID: SPDYStreamID(9), data: ByteBuffer(string: "x")))))
        #expect(
            try peer.received(from: channel)
                == [.rstStream(SPDYRstStreamFrame(streamID: SPDYStreamID(9), status: .invalidStream))])
        _ = try? channel.finish()
    }

    @Test("writes that break the session rules fail without reaching the wire")
    func refusedWrites() throws {
        let (channel, _) = try Self.serverChannel()
        let error = expectSPDYError {
            try channel.writeOutbound(SPDYFrame.data(SPDYDataFrame(streamID: SPDYStreamID(1), data: ByteBuffer())))
        }
        #expect(error?.kind == .streamClosed)
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)
        _ = try? channel.finish()
    }

    @Test("closing sends RST_STREAM(CANCEL) for unfinished streams, then GOAWAY as the last frame")
    func closeSequence() throws {
        let (channel, _) = try Self.serverChannel()
        var peer = TestPeer()
        try channel.writeInbound(try peer.bytes(Self.syn(1, "error"), Self.syn(3), Self.syn(5, "stdout")))
        for id in [1, 3, 5] as [UInt32] {
            try channel.writeOutbound(SPDYFrame.synReply(SPDYSynReplyFrame(streamID: SPDYStreamID(id))))
        }
        try channel.writeOutbound(
            SPDYFrame.data(SPDYDataFrame(streamID: SPDYStreamID(1), data: ByteBuffer(string: "{}"), isFin: true)))
        _ = try peer.received(from: channel)
        try channel.close().wait()
        #expect(
            try peer.received(from: channel) == [
                .rstStream(SPDYRstStreamFrame(streamID: SPDYStreamID(3), status: .cancel)),
                .rstStream(SPDYRstStreamFrame(streamID: SPDYStreamID(5), status: .cancel)),
                .goAway(SPDYGoAwayFrame(lastGoodStreamID: SPDYStreamID(5), status: .ok)),
            ])
    }

    @Test("idle timeout: nothing happens before it, GOAWAY(OK) and a close at it")
    func idleTimeout() throws {
        let (channel, collector) = try Self.serverChannel(limits: SPDYLimits(idleTimeout: .seconds(60)))
        var peer = TestPeer()
        channel.embeddedEventLoop.advanceTime(by: .seconds(30))
        try channel.writeInbound(try peer.bytes(Self.syn(1)))
        channel.embeddedEventLoop.advanceTime(by: .seconds(59))
        #expect(channel.isActive)
        #expect(try peer.received(from: channel).isEmpty)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(!channel.isActive)
        #expect(
            try peer.received(from: channel) == [
                .rstStream(SPDYRstStreamFrame(streamID: SPDYStreamID(1), status: .cancel)),
                .goAway(SPDYGoAwayFrame(lastGoodStreamID: SPDYStreamID(1), status: .ok)),
            ])
        #expect((collector.errors.first as? SPDYError)?.kind == .idleTimeout)
    }

    @Test("a client pings on its interval with odd ids, and a server never sends anything first")
    func clientPings() throws {
        let channel = try Self.pingingClientChannel()
        var peer = TestPeer()
        channel.embeddedEventLoop.advanceTime(by: .seconds(11))
        #expect(try peer.received(from: channel) == [.ping(SPDYPingFrame(id: 1)), .ping(SPDYPingFrame(id: 3))])
        _ = try? channel.finish()

        let (server, _) = try Self.serverChannel()
        server.embeddedEventLoop.advanceTime(by: .minutes(10))
        #expect(try server.readOutbound(as: ByteBuffer.self) == nil)
        _ = try? server.finish()
    }

    @Test("a client pings only after a quiet interval: frames from the peer keep a busy connection ping-free")
    func pingsOnlyWhenQuiet() throws {
        let channel = try Self.pingingClientChannel()
        var peer = TestPeer()
        // A peer PING (any frame counts) every 2 s for 20 s: our only writes are the echoes.
        for _ in 0..<10 {
            channel.embeddedEventLoop.advanceTime(by: .seconds(2))
            try channel.writeInbound(try peer.bytes(.ping(SPDYPingFrame(id: 2))))
        }
        #expect(try peer.received(from: channel) == Array(repeating: .ping(SPDYPingFrame(id: 2)), count: 10))
        // Then quiet: the keep-alive resumes on the next tick that follows 5 quiet seconds.
        channel.embeddedEventLoop.advanceTime(by: .seconds(6))
        #expect(try peer.received(from: channel) == [.ping(SPDYPingFrame(id: 1))])
        _ = try? channel.finish()
    }

    /// A connected client session that pings every 5 s.
    static func pingingClientChannel() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers([
            ByteToMessageHandler(SPDYFrameDecoderHandler()), MessageToByteHandler(SPDYFrameEncoderHandler()),
            SPDYConnectionHandler(role: .client, pingInterval: .seconds(5)),
        ])
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }
}
