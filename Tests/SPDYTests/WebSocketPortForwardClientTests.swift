import NIOCore
import NIOEmbedded
import NIOWebSocket
import Testing

@testable import SPDY

@Suite("Legacy WebSocket port-forward, client end (protocols.md §5.2)", .timeLimit(.minutes(1)))
struct WebSocketPortForwardClientTests {
    @Test("the port prefix is 2 little-endian bytes, stripped however the messages split it, checked against the port")
    func portPrefix() {
        #expect(Array(WebSocketPortPrefix.encode(8080).readableBytesView) == [0x90, 0x1F])
        #expect(Array(WebSocketPortPrefix.encode(9090).readableBytesView) == [0x82, 0x23])

        var whole = WebSocketPortPrefix(expectedPort: 8080)
        #expect(whole.receive(ByteBuffer(bytes: [0x90, 0x1F])) == .deliver(ByteBuffer()))
        #expect(whole.receive(ByteBuffer(bytes: [0x90, 0x1F])) == .deliver(ByteBuffer(bytes: [0x90, 0x1F])))

        var split = WebSocketPortPrefix(expectedPort: 9090)
        #expect(split.receive(ByteBuffer(bytes: [0x82])) == .wait)
        #expect(split.receive(ByteBuffer(bytes: [0x23, 0x41, 0x42])) == .deliver(ByteBuffer(string: "AB")))

        var wrong = WebSocketPortPrefix(expectedPort: 8080)
        #expect(wrong.receive(ByteBuffer(bytes: [0x1F, 0x90, 0x41])) == .mismatch(received: 0x901F))
        #expect(wrong.receive(ByteBuffer(string: "more")) == .mismatch(received: 0x901F))
    }

    @Test("on the wire: prefixes stripped per channel, a wrong one fails that channel, writes masked, no half-close")
    func wire() async throws {
        let channel = NIOAsyncTestingChannel()
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1))
        let session = try await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.addHandlers([
                WebSocketFrameEncoder(), ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: 1 << 20)),
            ])
            return try WebSocketPortForwardClient.configure(
                channel: channel, protocolName: "v4.channel.k8s.io", ports: [8080, 9090],
                configuration: WebSocketClientConfiguration(pingInterval: nil))
        }.get()
        // Data 8080: prefix alone, then data. Error 8080: prefix and text in one message. Data 9090: the
        // prefix split over two messages. Error 9090: the prefix of another port.
        for message: [UInt8] in [
            [0x00, 0x90, 0x1F], [0x00] + Array("hi".utf8), [0x01, 0x90, 0x1F] + Array("err".utf8),
            [0x02, 0x82], [0x02, 0x23] + Array("x".utf8), [0x03, 0x90, 0x1F] + Array("?".utf8),
        ] {
            try await channel.writeInbound(WebSocketClientWireTests.serverFrame(opcode: 2, message))
        }
        let (first, second) = (session.connections[0], session.connections[1])
        #expect(first.port == 8080 && first.requestID == "8080" && second.port == 9090)
        try await first.write(ByteBuffer(string: "ping"))
        let refused = await #expect(throws: KubernetesStreamError.self) { try await first.closeWrite() }
        #expect(refused?.kind == .unsupportedProtocol)
        let sent = try await WebSocketClientWireTests.sentFrames(channel)
        #expect(sent.map(\.opcode) == [2])
        #expect(sent.first?.payload == [0x00] + Array("ping".utf8))

        try await channel.writeInbound(WebSocketClientWireTests.serverFrame(opcode: 8, [0x03, 0xE8]))
        #expect(String(buffer: try await first.inbound.collect(upTo: 100)) == "hi")
        #expect(try await first.errorMessage() == "err")
        #expect(String(buffer: try await second.inbound.collect(upTo: 100)) == "x")
        let mismatch = await #expect(throws: KubernetesStreamError.self) { _ = try await second.errorMessage() }
        #expect(mismatch?.kind == .invalidPort)
        _ = try? await channel.finish()
    }

    @Test("against this module's server: an exchange on one port, the error text of another, then Close 1000")
    func loopback() async throws {
        let server = try await LoopbackWebSocketServer(supported: WebSocketPortForwardServer.protocolVersions)
        let ports = try await WebSocketPortForwardClient.connect(
            channel: try await server.connect(), uri: "/api/v1/namespaces/ns/pods/p/portforward",
            headers: ["Host": "127.0.0.1"], ports: [80, 81])
        #expect(ports.protocolName == "v4.channel.k8s.io")
        let forwarding = try await server.nextPortForward()
        let pod = Task {
            for await connection in forwarding.connections {
                guard connection.port == 80 else {
                    await connection.fail(message: "error forwarding port 81: connection refused")
                    continue
                }
                // No half-close exists here: the request's end is its blank line.
                var request = ""
                for try await chunk in connection.inbound {
                    request += String(buffer: chunk)
                    if request.hasSuffix("\r\n\r\n") { break }
                }
                try await connection.write(ByteBuffer(string: "HTTP/1.0 200 OK\r\n\r\nyou asked " + request))
                await connection.finish()
            }
        }
        let (web, refused) = (ports.connections[0], ports.connections[1])
        async let answer = web.inbound.collect(upTo: 1000)
        try await web.write(ByteBuffer(string: "GET / HTTP/1.0\r\n\r\n"))
        #expect(String(buffer: try await answer) == "HTTP/1.0 200 OK\r\n\r\nyou asked GET / HTTP/1.0\r\n\r\n")
        #expect(try await web.errorMessage() == nil)
        #expect(try await refused.errorMessage() == "error forwarding port 81: connection refused")
        #expect(try await refused.inbound.collect(upTo: 100).readableBytes == 0)
        try await pod.value
        try await server.shutdown()
    }

    @Test("base64 framing carries 1 MiB from the pod byte for byte, in text frames far above 16 KiB")
    func base64Transfer() async throws {
        let server = try await LoopbackWebSocketServer(supported: WebSocketPortForwardServer.protocolVersions)
        let ports = try await WebSocketPortForwardClient.connect(
            channel: try await server.connect(), uri: "/portforward?x=1", headers: ["Host": "127.0.0.1"],
            ports: [5432], protocols: ["v4.base64.channel.k8s.io"])
        #expect(ports.protocolName == "v4.base64.channel.k8s.io")
        let payload = ByteBuffer(bytes: (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ $0 >> 10) })
        let forwarding = try await server.nextPortForward()
        let pod = Task {
            for await connection in forwarding.connections {
                try await connection.write(payload)
                await connection.finish()
            }
        }
        #expect(try await ports.connections[0].inbound.collect(upTo: 2 << 20) == payload)
        try await pod.value
        try await server.shutdown()
    }

    @Test("ports and protocols are checked before anything is sent")
    func invalidArguments() async throws {
        let server = try await LoopbackWebSocketServer(supported: WebSocketPortForwardServer.protocolVersions)
        let cases: [(ports: [UInt16], protocols: [String])] = [
            ([], ["v4.channel.k8s.io"]), ([0], ["v4.channel.k8s.io"]), ([80], ["v5.channel.k8s.io"]),
        ]
        for (ports, protocols) in cases {
            let error = await #expect(throws: KubernetesStreamError.self) {
                _ = try await WebSocketPortForwardClient.connect(
                    channel: try await server.connect(), uri: "/portforward", headers: ["Host": "127.0.0.1"],
                    ports: ports, protocols: protocols)
            }
            #expect(error?.kind == (protocols == ["v5.channel.k8s.io"] ? .unsupportedProtocol : .invalidPort))
        }
        try await server.shutdown()
    }
}
