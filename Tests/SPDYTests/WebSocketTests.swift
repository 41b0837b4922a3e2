import NIOCore
import NIOEmbedded
import NIOWebSocket
import Testing

@testable import SPDY

/// A client frame as RFC 6455 puts it on the wire: masked, FIN set.
func maskedFrame(opcode: UInt8, _ payload: [UInt8], mask: [UInt8] = [1, 2, 3, 4]) -> ByteBuffer {
    var buffer = ByteBuffer()
    buffer.writeInteger(0x80 | opcode)
    if payload.count < 126 {
        buffer.writeInteger(0x80 | UInt8(payload.count))
    } else {
        buffer.writeInteger(UInt8(0x80 | 126))
        buffer.writeInteger(UInt16(payload.count))
    }
    buffer.writeBytes(mask)
    buffer.writeBytes(payload.enumerated().map { $0.element ^ mask[$0.offset % 4] })
    return buffer
}

@Suite("WebSocket remote command and tunnel (protocols.md §4, §5.3, §9.5)")
struct WebSocketTests {
    static func channel(
        _ setUp: @escaping @Sendable (any Channel) throws -> Void
    ) async throws -> NIOAsyncTestingChannel {
        let channel = NIOAsyncTestingChannel()
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1))
        try await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.addHandlers([
                WebSocketFrameEncoder(), ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: 1 << 20)),
            ])
            try setUp(channel)
        }.get()
        return channel
    }

    static func outbound(_ channel: NIOAsyncTestingChannel) async throws -> String {
        var bytes = ByteBuffer()
        while var next = try await channel.readOutbound(as: ByteBuffer.self) { bytes.writeBuffer(&next) }
        return bytes.hex
    }

    /// Outbound bytes up to `suffix` (hex), waiting for them.
    static func outbound(_ channel: NIOAsyncTestingChannel, endingWith suffix: String) async throws -> String {
        var hex = ""
        while !hex.hasSuffix(suffix) { hex += try await channel.waitForOutboundWrite(as: ByteBuffer.self).hex }
        return hex
    }

    @Test("v5: the connected marker, stdin and its CLOSE, resize, output, status and Close 1000, byte for byte")
    func v5Session() async throws {
        let box = SessionBox()
        let channel = try await Self.channel { channel in
            box.session = try WebSocketRemoteCommandServer.start(
                channel: channel, protocolName: "v5.channel.k8s.io",
                options: RemoteCommandOptions(stdin: true, stdout: true, stderr: false, tty: true))
        }
        let session = try #require(box.session)
        #expect(try await Self.outbound(channel) == "820101")  // [0x01]: stdout is the lowest output channel
        try await channel.writeInbound(
            maskedFrame(
                opcode: 2,
                Array(ByteBuffer(hex: "047b225769647468223a38302c22486569676874223a32347d0a").readableBytesView)))
        try await channel.writeInbound(ByteBuffer(hex: "828401020304016e700e"))  // §9.5: stdin "ls\n", mask 01020304
        try await channel.writeInbound(maskedFrame(opcode: 9, Array("abc".utf8)))
        #expect(try await Self.outbound(channel) == "8a03616263")  // pong with the ping's payload
        try await channel.writeInbound(maskedFrame(opcode: 2, [0xFF, 0x00]))  // stdin EOF
        var sizes = session.resizes.makeAsyncIterator()
        #expect(try await sizes.next() == TerminalSize(width: 80, height: 24))
        #expect(String(buffer: try await session.stdin!.collect(upTo: 100)) == "ls\n")
        try await session.writeStdout(ByteBuffer(string: "hi\n"))
        #expect(try await Self.outbound(channel) == "82040168690a")  // §9.5: 82 04 01 68 69 0a
        let finished = Task { await session.finish(status: .success) }
        let status = "03" + ByteBuffer(string: #"{"metadata":{},"status":"Success"}"#).hex
        #expect(try await Self.outbound(channel, endingWith: "880203e8") == "8223" + status + "880203e8")
        // The connection closes once the client answers the Close (RFC 6455 §7.1.1).
        #expect(channel.isActive)
        try await channel.writeInbound(maskedFrame(opcode: 8, [0x03, 0xE8]))
        await channel.testingEventLoop.run()  // the close completes in a task the test loop runs now
        await finished.value
        #expect(!channel.isActive)
        _ = try? await channel.finish()
    }

    @Test("base64 framing: text messages '0'+base64 in, '1'+base64 out (§9.5)")
    func base64() async throws {
        let box = SessionBox()
        let channel = try await Self.channel { channel in
            box.session = try WebSocketRemoteCommandServer.start(
                channel: channel, protocolName: "v4.base64.channel.k8s.io",
                options: RemoteCommandOptions(stdin: true, stdout: true, stderr: true))
        }
        let session = try #require(box.session)
        #expect(try await Self.outbound(channel) == "810131")  // text "1"
        try await channel.writeInbound(maskedFrame(opcode: 1, Array("0Zm9vCg==".utf8)))
        try await channel.close()
        #expect(String(buffer: try await session.stdin!.collect(upTo: 100)) == "foo\n")
        _ = try? await channel.finish()
        let second = try await Self.channel { channel in
            box.session = try WebSocketRemoteCommandServer.start(
                channel: channel, protocolName: "v4.base64.channel.k8s.io", options: RemoteCommandOptions())
        }
        _ = try await Self.outbound(second)
        try await box.session!.writeStdout(ByteBuffer(string: "\n"))
        #expect(try await Self.outbound(second) == "8105" + ByteBuffer(string: "1Cg==").hex)
        _ = try? await second.finish()
    }

    @Test("a CLOSE message that is not exactly 2 bytes drops the connection with Close 1002")
    func malformedClose() async throws {
        let box = SessionBox()
        let channel = try await Self.channel { channel in
            box.session = try WebSocketRemoteCommandServer.start(
                channel: channel, protocolName: "v5.channel.k8s.io", options: RemoteCommandOptions(stdin: true))
        }
        _ = try await Self.outbound(channel)
        try await channel.writeInbound(maskedFrame(opcode: 2, [0xFF, 0x00, 0x00]))
        #expect(try await Self.outbound(channel) == "880203ea")
        // The connection is gone, so stdin simply ends (older protocols end stdin this way too).
        #expect(try await box.session!.stdin!.collect(upTo: 10).readableBytes == 0)
        #expect(!channel.isActive)
        _ = try? await channel.finish()
    }

    @Test("without stdout the marker is on stderr, and without either on the error channel")
    func markers() async throws {
        for (options, marker) in [
            (RemoteCommandOptions(stdin: true, stdout: false, stderr: true), "820102"),
            (RemoteCommandOptions(stdin: true, stdout: false, stderr: false), "820103"),
        ] {
            let channel = try await Self.channel { channel in
                _ = try WebSocketRemoteCommandServer.start(
                    channel: channel, protocolName: "v5.channel.k8s.io", options: options)
            }
            #expect(try await Self.outbound(channel) == marker)
            _ = try? await channel.finish()
        }
    }

    @Test("the tunnel reassembles SPDY frames cut into many messages, as client-go sends them, and refuses text")
    func tunnel() async throws {
        let box = SPDYSessionBox()
        let channel = try await Self.channel { channel in
            box.session = try SPDYWebSocketTunnel.configureServer(channel: channel)
        }
        let session = try #require(box.session)
        // §9.2's first SYN_STREAM, split like spdystream's writes: 2+2+4+4+4+1+1+block.
        let syn = ByteBuffer(hex: TestVectors.portForwardSession[0].1)
        var offset = 0
        for length in [2, 2, 4, 4, 4, 1, 1, syn.readableBytes - 18] {
            try await channel.writeInbound(
                maskedFrame(opcode: 2, Array(syn.getSlice(at: offset, length: length)!.readableBytesView)))
            offset += length
        }
        var streams = session.inboundStreams.makeAsyncIterator()
        let stream = try #require(await streams.next())
        #expect(stream.headers.first(name: "port") == "8080")
        try await stream.reply()
        // The SYN_REPLY goes out as one binary message; decode it with the client's inflate context.
        let reply = try #require(try await channel.readOutbound(as: ByteBuffer.self))
        #expect(reply.getInteger(at: 0, as: UInt8.self) == 0x82)
        try await channel.writeInbound(maskedFrame(opcode: 1, Array("text".utf8)))
        var remaining = ByteBuffer()
        while var next = try await channel.readOutbound(as: ByteBuffer.self) { remaining.writeBuffer(&next) }
        #expect(remaining.hex.contains("880203eb"))  // Close 1003
        _ = try? await channel.finish()
    }
}

final class SessionBox: @unchecked Sendable {
    var session: RemoteCommandSession?
}

final class SPDYSessionBox: @unchecked Sendable {
    var session: SPDYSession?
}
