import NIOCore
import NIOEmbedded
import Testing

@testable import SPDY

/// Inputs from scripts/fuzz-spdy.sh runs, kept for ever (design.md, style rule 11).
///
/// libFuzzer found no crash in the SPDY code. Its one finding was in the harness: an input whose first
/// frame is a session error closed the EmbeddedChannel, whose `finish()` then left queued tasks holding
/// the pipeline, which ASan reported as a leak. The input is replayed here through the same server
/// pipeline, which must release every handler.
@Suite("Fuzzer findings")
struct FuzzRegressionTests {
    /// The harness's structured mode turned `b5 00 02 3e` into this 8-byte frame header: a control
    /// frame of version 0x7fff.
    static let sessionErrorFirst: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00]

    @Test("a session error as the very first frame: GOAWAY(PROTOCOL_ERROR), close, and nothing retained")
    func sessionErrorFirstFrame() throws {
        weak var weakHandler: SPDYConnectionHandler?
        do {
            let channel = EmbeddedChannel()
            let handler = SPDYConnectionHandler(role: .server)
            weakHandler = handler
            try channel.pipeline.syncOperations.addHandlers([
                ByteToMessageHandler(SPDYFrameDecoderHandler()), MessageToByteHandler(SPDYFrameEncoderHandler()),
                handler,
            ])
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            _ = try? channel.writeInbound(ByteBuffer(bytes: Self.sessionErrorFirst))
            var peer = TestPeer()
            #expect(
                try peer.received(from: channel)
                    == [.goAway(SPDYGoAwayFrame(lastGoodStreamID: .none, status: .protocolError))])
            _ = try? channel.finish()
            channel.embeddedEventLoop.run()
        }
        #expect(weakHandler == nil)
    }
}
