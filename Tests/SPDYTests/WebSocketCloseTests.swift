import NIOCore
import NIOEmbedded
import Testing

@testable import SPDY

/// Holds every write, as a socket whose peer reads nothing does, until ``release()``; closing the channel
/// fails what it holds, as NIO's socket channels do with writes the kernel has not taken.
final class StallingWriter: ChannelOutboundHandler, @unchecked Sendable {
    typealias OutboundIn = ByteBuffer
    private var held: [(NIOAny, EventLoopPromise<Void>?)] = []
    private var context: ChannelHandlerContext?
    private(set) var heldBytes = ByteBuffer()
    private(set) var droppedWrites = 0

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        heldBytes.writeImmutableBuffer(unwrapOutboundIn(data))
        held.append((data, promise))
    }

    func flush(context: ChannelHandlerContext) {}

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        droppedWrites += held.count
        let error = ChannelError.ioOnClosedChannel
        for (_, promise) in held { promise?.fail(error) }
        held.removeAll()
        context.close(mode: mode, promise: promise)
    }

    /// Lets everything held through: the reader caught up.
    func release() {
        guard let context else { return }
        let writes = held
        held.removeAll()
        for (data, promise) in writes { context.write(data, promise: promise) }
        context.flush()
    }
}

/// The end of a WebSocket session from the server (protocols.md §4.4, RFC 6455 §7.1.1): all output, the
/// status and Close 1000 go out in that order even when the client reads slowly, and the connection
/// closes only after the client's Close, so client-go reads the status before the connection ends.
@Suite("WebSocket closing handshake")
struct WebSocketCloseTests {
    static let status = "03" + ByteBuffer(string: #"{"metadata":{},"status":"Success"}"#).hex
    static let close1000 = "880203e8"

    /// A v5 session with stdout only, as `kubectl cp` from a pod runs `tar cf -`, behind a stalled socket.
    static func stalledSession() async throws -> (NIOAsyncTestingChannel, RemoteCommandSession, StallingWriter) {
        let box = SessionBox()
        let stall = StallingWriter()
        let channel = try await WebSocketTests.channel { channel in
            try channel.pipeline.syncOperations.addHandler(stall, position: .first)
            box.session = try WebSocketRemoteCommandServer.start(
                channel: channel, protocolName: "v5.channel.k8s.io",
                options: RemoteCommandOptions(stdout: true, stderr: false))
        }
        return (channel, try #require(box.session), stall)
    }

    /// Waits until the stalled socket holds bytes ending with `suffix` (hex).
    static func waitUntilHeld(
        _ stall: StallingWriter, on channel: NIOAsyncTestingChannel, endingWith suffix: String
    )
        async throws -> String
    {
        for _ in 0..<2000 {
            let held = try await channel.eventLoop.submit { stall.heldBytes.hex }.get()
            if held.hasSuffix(suffix) { return held }
            try await Task.sleep(for: .milliseconds(1))
        }
        Issue.record("never wrote …\(suffix)")
        return ""
    }

    @Test(
        "finish behind a stalled socket: nothing is dropped, stdout, status, Close go out in order, then the client's Close ends it"
    )
    func stalledFinish() async throws {
        let (channel, session, stall) = try await Self.stalledSession()
        try await session.writeStdout(ByteBuffer(string: "tar"))
        let finished = Task { await session.finish(status: .success) }
        let expected = "820101" + "820401746172" + "8223" + Self.status + Self.close1000
        #expect(try await Self.waitUntilHeld(stall, on: channel, endingWith: Self.close1000) == expected)
        // Closing now would fail the held writes, as NIO does: the client would see the tar stream cut off.
        #expect(channel.isActive)
        #expect(try await channel.eventLoop.submit { stall.droppedWrites }.get() == 0)
        try await channel.eventLoop.submit { stall.release() }.get()
        #expect(try await WebSocketTests.outbound(channel) == expected)
        // All out; the connection stays up until the client answers (client-go reads the status first).
        try await Task.sleep(for: .milliseconds(20))
        #expect(channel.isActive)
        try await channel.writeInbound(maskedFrame(opcode: 8, [0x03, 0xE8]))
        await channel.testingEventLoop.run()  // the close completes in a task the test loop runs now
        await finished.value
        #expect(!channel.isActive)
        #expect(try await WebSocketTests.outbound(channel) == "")  // no second Close
        _ = try? await channel.finish()
    }

    @Test("a client that never answers the Close is dropped closeTimeout after the Close went out, not before")
    func closeTimeout() async throws {
        let (channel, session, stall) = try await Self.stalledSession()
        let finished = Task { await session.finish(status: .success) }
        _ = try await Self.waitUntilHeld(stall, on: channel, endingWith: Self.close1000)
        let timeout = WebSocketChannelHandler.defaultCloseTimeout
        // The timeout runs from when the Close is written, not from finish: a slow reader gets its time.
        await channel.testingEventLoop.advanceTime(by: timeout + timeout)
        #expect(channel.isActive)
        try await channel.eventLoop.submit { stall.release() }.get()
        await channel.testingEventLoop.advanceTime(by: timeout - .milliseconds(1))
        #expect(channel.isActive)
        await channel.testingEventLoop.advanceTime(by: .milliseconds(1))
        await finished.value
        #expect(!channel.isActive)
        _ = try? await channel.finish()
    }

    @Test("while closing, reads held back for a full stdin resume and further data is dropped")
    func readsResumeWhileClosing() async throws {
        let box = SessionBox()
        let counter = ReadCounter()
        let channel = try await WebSocketTests.channel { channel in
            try channel.pipeline.syncOperations.addHandler(counter, position: .first)
            box.session = try WebSocketRemoteCommandServer.start(
                channel: channel, protocolName: "v5.channel.k8s.io",
                options: RemoteCommandOptions(stdin: true, stdout: true, stderr: false))
        }
        let session = try #require(box.session)
        _ = try await WebSocketTests.outbound(channel)
        func readsAfterRequest() async throws -> Int {
            try await channel.eventLoop.submit { channel.read() }.get()
            return try await channel.eventLoop.submit { counter.reads }.get()
        }
        // Nobody reads stdin: at the high watermark (16 messages) reads stop.
        for _ in 0..<16 { try await channel.writeInbound(maskedFrame(opcode: 2, [0x00, 0x61])) }
        let reads = try await readsAfterRequest()
        #expect(try await readsAfterRequest() == reads)
        let finished = Task { await session.finish(status: .success) }
        _ = try await WebSocketTests.outbound(channel, endingWith: Self.close1000)
        // The held read went out, so the client's Close can arrive; stdin takes no more.
        #expect(try await channel.eventLoop.submit { counter.reads }.get() > reads)
        try await channel.writeInbound(maskedFrame(opcode: 2, [0x00, 0x62]))
        try await channel.writeInbound(maskedFrame(opcode: 8, [0x03, 0xE8]))
        await channel.testingEventLoop.run()  // the close completes in a task the test loop runs now
        await finished.value
        #expect(String(buffer: try await session.stdin!.collect(upTo: 100)) == String(repeating: "a", count: 16))
        _ = try? await channel.finish()
    }
}
