import NIOCore
import NIOEmbedded
import Testing

@testable import SPDY

/// Counts the read requests that reach the head of the pipeline.
final class ReadCounter: ChannelOutboundHandler, @unchecked Sendable {
    typealias OutboundIn = Any
    private(set) var reads = 0

    func read(context: ChannelHandlerContext) {
        reads += 1
        context.read()
    }
}

@Suite("Stream backpressure")
struct BackpressureTests {
    @Test("an unread stream stops the connection's reads at maxBufferedFramesPerStream, and reading it resumes them")
    func readGating() async throws {
        let counter = ReadCounter()
        let (channel, opener, stream) = try await Self.openStream(
            limits: SPDYLimits(maxBufferedFramesPerStream: 8), head: counter)
        var peer = opener

        func readsAfterRequest() async throws -> Int {
            try await channel.eventLoop.submit { channel.read() }.get()
            return try await channel.eventLoop.submit { counter.reads }.get()
        }
        var reads = try await readsAfterRequest()
        for index in 0..<7 {
            let frame = SPDYDataFrame(streamID: SPDYStreamID(1), data: ByteBuffer(string: "chunk \(index)"))
            try await channel.writeInbound(try peer.bytes(.data(frame)))
        }
        // Seven unread frames, one below the limit: reads still go through.
        #expect(try await readsAfterRequest() == reads + 1)
        reads += 1
        let eighth = SPDYDataFrame(streamID: SPDYStreamID(1), data: ByteBuffer(string: "chunk 7"))
        try await channel.writeInbound(try peer.bytes(.data(eighth)))
        // Eight, the limit: the stream is full, so the read request is held back.
        #expect(try await readsAfterRequest() == reads)
        var iterator = stream.inbound.makeAsyncIterator()
        for index in 0..<8 {
            #expect(try await iterator.next().map { String(buffer: $0) } == "chunk \(index)")
        }
        // Drained below the low watermark: the held read goes out.
        try await Task.sleep(for: .milliseconds(50))
        #expect(try await channel.eventLoop.submit { counter.reads }.get() == reads + 1)
        _ = try? await channel.finish()
    }

    @Test("a stream whose inbound side is discarded never holds the connection's reads back")
    func discardedStream() async throws {
        let counter = ReadCounter()
        let (channel, opener, stream) = try await Self.openStream(
            limits: SPDYLimits(maxBufferedFramesPerStream: 8), head: counter)
        var peer = opener
        stream.discardInbound()
        for index in 0..<50 {
            let frame = SPDYDataFrame(streamID: SPDYStreamID(1), data: ByteBuffer(string: "chunk \(index)"))
            try await channel.writeInbound(try peer.bytes(.data(frame)))
        }
        // Fifty unread frames, far past the limit of eight: read requests still go through.
        let reads = try await channel.eventLoop.submit { counter.reads }.get()
        try await channel.eventLoop.submit { channel.read() }.get()
        #expect(try await channel.eventLoop.submit { counter.reads }.get() == reads + 1)
        _ = try? await channel.finish()
    }

    /// A server session with one open data stream from the peer; `head`, if any, goes first in
    /// the pipeline.
    static func openStream(
        limits: SPDYLimits = .default, head: (any ChannelHandler & Sendable)? = nil
    ) async throws -> (NIOAsyncTestingChannel, TestPeer, SPDYStream) {
        let channel = NIOAsyncTestingChannel()
        let box = SPDYSessionBox()
        try await channel.eventLoop.submit {
            if let head { try channel.pipeline.syncOperations.addHandler(head) }
            box.session = try channel.pipeline.syncOperations.addSPDYSessionHandlers(
                configuration: SPDYSessionConfiguration(role: .server, limits: limits))
        }.get()
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1))
        let session = try #require(box.session)
        var peer = TestPeer()
        try await channel.writeInbound(
            try peer.bytes(.synStream(SPDYSynStreamFrame(streamID: SPDYStreamID(1), headers: ["streamtype": "data"]))))
        var streams = session.inboundStreams.makeAsyncIterator()
        let stream = try #require(await streams.next())
        try await stream.reply()
        return (channel, peer, stream)
    }

    @Test("DATA frames read in one burst reach the stream as one chunk, before the FIN that followed them")
    func burstCoalesced() async throws {
        let (channel, opener, stream) = try await Self.openStream()
        var peer = opener
        var burst = ByteBuffer()
        for text in ["first ", "second ", "third"] {
            var frame = try peer.bytes(.data(SPDYDataFrame(streamID: SPDYStreamID(1), data: ByteBuffer(string: text))))
            burst.writeBuffer(&frame)
        }
        var fin = try peer.bytes(.data(SPDYDataFrame(streamID: SPDYStreamID(1), data: ByteBuffer(), isFin: true)))
        burst.writeBuffer(&fin)
        try await channel.writeInbound(burst)
        var chunks: [String] = []
        for try await chunk in stream.inbound { chunks.append(String(buffer: chunk)) }
        #expect(chunks == ["first second third"])
        _ = try? await channel.finish()
    }

    @Test("a burst larger than maxCoalescedBytes is handed over in pieces of about that size, in order")
    func largeBurstSplit() async throws {
        let (channel, opener, stream) = try await Self.openStream()
        var peer = opener
        let frameSize = 40 << 10
        var burst = ByteBuffer()
        var expected: [UInt8] = []
        for index in 0..<10 {
            let payload = [UInt8](repeating: UInt8(index), count: frameSize)
            expected += payload
            var frame = try peer.bytes(
                .data(SPDYDataFrame(streamID: SPDYStreamID(1), data: ByteBuffer(bytes: payload))))
            burst.writeBuffer(&frame)
        }
        try await channel.writeInbound(burst)
        try await channel.writeInbound(
            try peer.bytes(.data(SPDYDataFrame(streamID: SPDYStreamID(1), data: ByteBuffer(), isFin: true))))
        var sizes: [Int] = []
        var received: [UInt8] = []
        for try await chunk in stream.inbound {
            sizes.append(chunk.readableBytes)
            received += chunk.readableBytesView
        }
        #expect(received == expected)
        // 40 KiB frames: handed over at 160 KiB (the first size at or over 128 KiB), twice, then the rest.
        #expect(sizes == [4 * frameSize, 4 * frameSize, 2 * frameSize])
        #expect(sizes.allSatisfy { $0 < SPDYStreamMultiplexer.maxCoalescedBytes + frameSize })
        _ = try? await channel.finish()
    }

    @Test(
        "DATA fired without a channelReadComplete (as an upgrade handler re-fires bytes) still arrives",
        .timeLimit(.minutes(1)))
    func withoutReadComplete() async throws {
        let (channel, opener, stream) = try await Self.openStream()
        var peer = opener
        let frame = try peer.bytes(.data(SPDYDataFrame(streamID: SPDYStreamID(1), data: ByteBuffer(string: "resize"))))
        try await channel.eventLoop.submit { channel.pipeline.syncOperations.fireChannelRead(NIOAny(frame)) }.get()
        await channel.testingEventLoop.run()
        var iterator = stream.inbound.makeAsyncIterator()
        #expect(try await iterator.next().map { String(buffer: $0) } == "resize")
        _ = try? await channel.finish()
    }
}
