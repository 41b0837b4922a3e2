import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import SPDY

@Suite("The upgrade answer, read without NIO's HTTP pipeline")
struct HTTPUpgradeResponseDecoderTests {
    @Test("a 101 head split across reads, with the new protocol's bytes right behind it")
    func switching() throws {
        var decoder = HTTPUpgradeResponseDecoder(maxBodyLength: 100)
        decoder.receive(
            ByteBuffer(string: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Pro"))
        #expect(try decoder.nextHead() == nil)
        decoder.receive(ByteBuffer(string: "tocol:  v4.channel.k8s.io \r\n\r\n\u{82}\u{01}\u{01}"))
        let head = try #require(try decoder.nextHead())
        #expect(head.status == .switchingProtocols && head.version == .http1_1)
        #expect(head.headers["Sec-WebSocket-Protocol"] == ["v4.channel.k8s.io"])
        #expect(Array(decoder.remainingBytes().readableBytesView) == [0xC2, 0x82, 0x01, 0x01])
        #expect(decoder.remainingBytes().readableBytes == 0)
        // One head per response: the protocol's bytes are never read as another.
        decoder.receive(ByteBuffer(string: "HTTP/1.1 200 OK\r\n\r\n"))
        let again = #expect(throws: SPDYError.self) { try decoder.nextHead() }
        #expect(again?.kind == .invalidState)
    }

    @Test("a refusal's body by Content-Length, by chunks split anywhere, or up to the close")
    func bodies() throws {
        var sized = HTTPUpgradeResponseDecoder(maxBodyLength: 100)
        sized.receive(ByteBuffer(string: "HTTP/1.1 400 Bad Request\r\nContent-Length: 5\r\n\r\nhel"))
        #expect(try sized.nextHead()?.status == .badRequest)
        #expect(sized.nextBody(atEndOfInput: false) == nil)
        sized.receive(ByteBuffer(string: "loEXTRA"))
        #expect(sized.nextBody(atEndOfInput: false) == ByteBuffer(string: "hello"))

        var chunked = HTTPUpgradeResponseDecoder(maxBodyLength: 100)
        chunked.receive(ByteBuffer(string: "HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n"))
        #expect(try chunked.nextHead()?.status == .forbidden)
        for piece in ["4\r\nfo", "rb\r", "\n7;x=y\r\nidden: \r\n0", "\r\n", "\r\n"] {
            #expect(chunked.nextBody(atEndOfInput: false) == nil)
            chunked.receive(ByteBuffer(string: piece))
        }
        #expect(chunked.nextBody(atEndOfInput: false) == ByteBuffer(string: "forbidden: "))

        var unsized = HTTPUpgradeResponseDecoder(maxBodyLength: 100)
        unsized.receive(ByteBuffer(string: "HTTP/1.1 403 Forbidden\r\n\r\n"))
        #expect(try unsized.nextHead()?.status == .forbidden)
        #expect(unsized.nextBody(atEndOfInput: false) == nil)
        #expect(unsized.nextBody(atEndOfInput: true) == ByteBuffer())
    }

    @Test("limits: a body is cut at its maximum, a head longer than 16 KiB or not HTTP/1.x is refused")
    func limits() throws {
        var long = HTTPUpgradeResponseDecoder(maxBodyLength: 4)
        long.receive(ByteBuffer(string: "HTTP/1.0 500 Oops\r\n\r\n0123456789"))
        #expect(try long.nextHead()?.version == .http1_0)
        #expect(long.nextBody(atEndOfInput: false) == ByteBuffer(string: "0123"))

        var endless = HTTPUpgradeResponseDecoder(maxBodyLength: 4)
        endless.receive(
            ByteBuffer(
                string: "HTTP/1.1 200 OK\r\nX: "
                    + String(repeating: "y", count: HTTPUpgradeResponseDecoder.maxHeadLength)))
        #expect(throws: SPDYError.self) { try endless.nextHead() }
        var fits = HTTPUpgradeResponseDecoder(maxBodyLength: 4)
        fits.receive(ByteBuffer(string: "HTTP/1.1 200 OK\r\nX: " + String(repeating: "y", count: 16_000)))
        #expect(try fits.nextHead() == nil)

        for garbage in ["SSH-2.0-OpenSSH\r\n\r\n", "HTTP/2 101 x\r\n\r\n", "HTTP/1.1 101\r\nno colon\r\n\r\n"] {
            var decoder = HTTPUpgradeResponseDecoder(maxBodyLength: 4)
            decoder.receive(ByteBuffer(string: garbage))
            #expect(throws: SPDYError.self, "\(garbage)") { try decoder.nextHead() }
        }
    }

    @Test("frames and the close that arrive in the same read as the 101 all reach the session")
    func framesWithTheSwitch() async throws {
        let channel = NIOAsyncTestingChannel()
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1))
        // RFC 6455 §1.3's example key and its accept value.
        let request = WebSocketClientRequest(
            uri: "/exec?stdout=true", headers: ["Host": "x"], protocols: ["v4.channel.k8s.io"],
            key: "dGhlIHNhbXBsZSBub25jZQ==")
        let box = ClientSessionBox()
        let options = RemoteCommandOptions(stdout: true, stderr: false)
        try await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.addHandler(
                WebSocketUpgradeResponseHandler(
                    request: request, maxFrameSize: 1 << 20,
                    onUpgrade: { channel, chosen in
                        box.session = try RemoteCommandWebSocketClient.configure(
                            channel: channel, protocolName: chosen, options: options,
                            configuration: WebSocketClientConfiguration(pingInterval: nil))
                    },
                    onFailure: { box.error = $0 }))
        }.get()
        var answer = ByteBuffer(
            string: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: v4.channel.k8s.io\r\n\r\n"
        )
        answer.writeBytes([0x82, 0x01, 0x01, 0x82, 0x03, 0x01, 0x68, 0x69])  // the marker, then "hi" on stdout
        let status = Array(RemoteCommandStatus.success.json.utf8)
        answer.writeBytes([0x82, UInt8(status.count + 1), 0x03] + status)
        answer.writeBytes([0x88, 0x02, 0x03, 0xE8])
        // Everything in one read, and the connection ends right after it (the Close also closes it).
        try await channel.writeInbound(answer)
        try? await channel.close()
        let session = try #require(box.session, "\(String(describing: box.error))")
        #expect(String(buffer: try await session.stdout!.collect(upTo: 100)) == "hi")
        #expect(try await session.status() == .success)
        _ = try? await channel.finish()
    }
}

final class ClientSessionBox: @unchecked Sendable {
    var session: RemoteCommandClientSession?
    var error: (any Error)?
}
