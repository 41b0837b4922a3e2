import Foundation
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOWebSocket
import Testing

@testable import SPDY

@Suite("Remote command and port-forward clients over WebSocket, against this module's servers", .timeLimit(.minutes(1)))
struct WebSocketClientLoopbackTests {
    static let v5 = "v5.channel.k8s.io"
    static let v4 = "v4.channel.k8s.io"

    @Test("v5 exec: stdin through and closed with [0xFF 0x00], stdout and stderr apart, exit code 3")
    func v5Exec() async throws {
        let server = try await LoopbackWebSocketServer(supported: [Self.v5, Self.v4])
        let options = RemoteCommandOptions(stdin: true, stdout: true, stderr: true)
        let client = try await server.exec(options)
        let command = try await server.nextRemoteCommand()
        #expect(client.protocolVersion == .v5 && command.protocolVersion == .v5)
        let runner = Task {
            let input = try await command.stdin!.collect(upTo: 1000)
            try await command.writeStdout(ByteBuffer(string: String(buffer: input).uppercased()))
            try await command.writeStderr(ByteBuffer(string: "warning\n"))
            await command.finish(status: .exited(3))
        }
        try await client.writeStdin(ByteBuffer(string: "hello "))
        try await client.writeStdin(ByteBuffer(string: "world\n"))
        try await client.closeStdin()
        async let stdout = client.stdout!.collect(upTo: 1000)
        async let stderr = client.stderr!.collect(upTo: 1000)
        // The server's empty "connected" marker on stdout is not output.
        #expect(String(buffer: try await stdout) == "HELLO WORLD\n")
        #expect(String(buffer: try await stderr) == "warning\n")
        #expect(try await client.status() == .exited(3))
        try await runner.value
        try await server.shutdown()
    }

    @Test("v4 exec with a terminal: resizes on channel 4, no stderr, and stdin cannot be closed")
    func v4Terminal() async throws {
        let server = try await LoopbackWebSocketServer(supported: [Self.v4])
        let options = RemoteCommandOptions(stdin: true, stdout: true, stderr: false, tty: true)
        let client = try await server.exec(options, protocols: [Self.v4])
        let command = try await server.nextRemoteCommand()
        #expect(client.protocolVersion == .v4 && client.stderr == nil)
        try await client.resize(to: TerminalSize(width: 80, height: 24))
        try await client.resize(to: TerminalSize(width: 132, height: 43))
        var sizes = command.resizes.makeAsyncIterator()
        #expect(try await sizes.next() == TerminalSize(width: 80, height: 24))
        #expect(try await sizes.next() == TerminalSize(width: 132, height: 43))
        let refused = await #expect(throws: KubernetesStreamError.self) { try await client.closeStdin() }
        #expect(refused?.kind == .unsupportedProtocol)
        try await client.writeStdin(ByteBuffer(string: "exit\r"))
        var stdin = command.stdin!.makeAsyncIterator()
        #expect(try await stdin.next().map { String(buffer: $0) } == "exit\r")
        try await command.writeStdout(ByteBuffer(string: "$ exit\r\n"))
        await command.finish(status: .success)
        #expect(String(buffer: try await client.stdout!.collect(upTo: 100)) == "$ exit\r\n")
        #expect(try await client.status() == .success)
        try await server.shutdown()
    }

    @Test("1 MiB each way crosses in frames far above NIO's 16 KiB default, byte for byte")
    func largeFrames() async throws {
        let server = try await LoopbackWebSocketServer(supported: [Self.v5])
        let client = try await server.exec(RemoteCommandOptions(stdin: true, stdout: true, stderr: false))
        let command = try await server.nextRemoteCommand()
        let payload = ByteBuffer(bytes: (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 9) })
        let echo = Task {
            let input = try await command.stdin!.collect(upTo: 2 << 20)
            try await command.writeStdout(input)
            await command.finish(status: .success)
        }
        try await client.writeStdin(payload)
        try await client.closeStdin()
        #expect(try await client.stdout!.collect(upTo: 2 << 20) == payload)
        #expect(try await client.status() == .success)
        try await echo.value
        try await server.shutdown()
    }

    /// `kubectl cp` from a pod on a loaded machine: the session finishes while the end of its output still
    /// waits in NIO's and the kernel's buffers, and the client's pings wait unread because the event loop
    /// was busy. Closing the socket right away drops what NIO has not written and, with input unread,
    /// resets the connection, which discards what the kernel still holds: client-go then sees its stream
    /// cut mid-message ("read message", protocols.md §4.4) instead of reading the status.
    @Test("a slow reader gets all of stdout, then the status, though the loop was busy and pings wait unread")
    func slowReader() async throws {
        let server = try await LoopbackWebSocketServer(supported: [Self.v5])
        // A 64 KiB window, so the output backs up on the server.
        let client = try await server.exec(
            RemoteCommandOptions(stdout: true, stderr: false),
            configuration: WebSocketClientConfiguration(pingInterval: .milliseconds(5)), receiveBuffer: 64 << 10)
        let command = try await server.nextRemoteCommand()
        let payload = ByteBuffer(bytes: (0..<(2 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 11) })
        let loop = server.group.next()
        let runner = Task {
            try await command.writeStdout(payload)
            // Busy for 50 ms right before finish runs: about ten pings arrive meanwhile.
            loop.execute { Thread.sleep(forTimeInterval: 0.05) }
            await command.finish(status: .success)
        }
        var received = ByteBuffer()
        for try await chunk in client.stdout! {
            received.writeImmutableBuffer(chunk)
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(received == payload)
        #expect(try await client.status() == .success)
        try await runner.value
        try await server.shutdown()
    }

    @Test("a frame above the client's maxFrameSize closes the connection, and the lost status is an error")
    func maxFrameSize() async throws {
        let server = try await LoopbackWebSocketServer(supported: [Self.v5])
        let client = try await server.exec(
            RemoteCommandOptions(stdout: true, stderr: false),
            configuration: WebSocketClientConfiguration(maxFrameSize: 1024))
        let command = try await server.nextRemoteCommand()
        try? await command.writeStdout(ByteBuffer(repeating: 0x41, count: 4096))
        #expect(try await client.stdout!.collect(upTo: 10_000).readableBytes == 0)
        let error = await #expect(throws: KubernetesStreamError.self) { _ = try await client.status() }
        #expect(error?.kind == .connectionClosed)
        await command.finish(status: .success)
        try await server.shutdown()
    }

    @Test("a non-101 answer is a typed rejection carrying the status and the Status body")
    func rejection() async throws {
        let body =
            #"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Upgrade request required","reason":"BadRequest","code":400}"#
        let server = try await LoopbackWebSocketServer(supported: [], refusal: (.badRequest, body))
        let rejection = await #expect(throws: WebSocketUpgradeRejection.self) {
            _ = try await server.exec(RemoteCommandOptions())
        }
        #expect(rejection?.reason == .status)
        #expect(rejection?.status == .badRequest)
        #expect(rejection?.message == "Upgrade request required")
        #expect(rejection.map { String(buffer: $0.body) } == body)
        try await server.shutdown()
    }

    @Test("a server without v5 refuses it with 403, and one offering v5 then v4 gets v4")
    func subprotocolNegotiation() async throws {
        let server = try await LoopbackWebSocketServer(supported: [Self.v4])
        let rejection = await #expect(throws: WebSocketUpgradeRejection.self) {
            _ = try await server.exec(RemoteCommandOptions())
        }
        #expect(rejection?.status == .forbidden && rejection?.body.readableBytes == 0)
        let client = try await server.exec(RemoteCommandOptions(), protocols: [Self.v5, Self.v4])
        #expect(client.protocolVersion == .v4)
        await client.close()
        try await server.shutdown()
    }

    @Test("a 101 naming a subprotocol not offered, a wrong accept key or another protocol is a rejection")
    func invalidSwitch() async throws {
        let cases: [(String, WebSocketUpgradeRejection.Reason)] = [
            ("Upgrade: websocket\r\nSec-WebSocket-Protocol: v9.channel.k8s.io\r\n", .subprotocolMismatch),
            ("Upgrade: websocket\r\n", .subprotocolMismatch),
            ("Upgrade: websocket\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n", .invalidAccept),
            ("Upgrade: h2c\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n", .notWebSocket),
        ]
        for (headers, reason) in cases {
            let server = try await CannedHTTPServer(
                response: "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n" + headers
                    + "Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n")
            let channel = try await server.connect()
            let rejection = await #expect(throws: WebSocketUpgradeRejection.self) {
                _ = try await RemoteCommandWebSocketClient.start(
                    channel: channel, uri: "/exec?command=sh&stdout=true", headers: ["Host": "127.0.0.1"],
                    options: RemoteCommandOptions(stdout: true, stderr: false))
            }
            #expect(rejection?.reason == reason, "\(headers)")
            #expect(rejection?.status == .switchingProtocols)
            try await channel.closeFuture.get()
            try await server.shutdown()
        }
    }

    @Test("a connection that ends before any answer is not a rejection")
    func closedBeforeAnswer() async throws {
        let server = try await CannedHTTPServer(response: "")
        let channel = try await server.connect()
        let error = await #expect(throws: KubernetesStreamError.self) {
            _ = try await RemoteCommandWebSocketClient.start(
                channel: channel, uri: "/exec?stdout=true", headers: ["Host": "127.0.0.1"],
                options: RemoteCommandOptions(stdout: true, stderr: false))
        }
        #expect(error?.kind == .connectionClosed)
        try await server.shutdown()
    }

    @Test("options and protocols are checked before anything is sent")
    func invalidArguments() async throws {
        let server = try await LoopbackWebSocketServer(supported: [Self.v5])
        let noStreams = await #expect(throws: KubernetesStreamError.self) {
            _ = try await server.exec(RemoteCommandOptions(stdin: false, stdout: false, stderr: false))
        }
        #expect(noStreams?.kind == .invalidOptions)
        let unknown = await #expect(throws: KubernetesStreamError.self) {
            _ = try await server.exec(RemoteCommandOptions(), protocols: ["v6.channel.k8s.io"])
        }
        #expect(unknown?.kind == .unsupportedProtocol)
        try await server.shutdown()
    }

    @Test("port-forward through the tunnel: half-closes, 4 MiB byte for byte, two connections at once, errors")
    func tunnel() async throws {
        let server = try await LoopbackWebSocketServer(supported: [KubernetesWebSocket.portForwardTunnelProtocol])
        let ports = try await PortForwardTunnelClient.connect(
            channel: try await server.connect(), uri: "/api/v1/namespaces/ns/pods/p/portforward",
            headers: ["Host": "127.0.0.1"])
        guard case .portForward(let forwarding) = try await server.sessions.next() else {
            Issue.record("expected a port-forward session")
            return
        }
        // The "pod": port 80 echoes until the client half-closes; port 81 refuses.
        let pod = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for await connection in forwarding.connections {
                    group.addTask {
                        guard connection.port == 80 else {
                            await connection.fail(message: "error forwarding port 81: connection refused")
                            return
                        }
                        for try await chunk in connection.inbound { try await connection.write(chunk) }
                        await connection.finish()
                    }
                }
                try await group.waitForAll()
            }
        }
        let payload = ByteBuffer(bytes: (0..<(4 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 11) })
        let first = try await ports.connect(port: 80)
        let second = try await ports.connect(port: 80)
        #expect(first.requestID == "0" && second.requestID == "1")
        async let firstEcho = Self.roundTrip(first, payload)
        async let secondEcho = Self.roundTrip(second, ByteBuffer(string: "GET / HTTP/1.0\r\n\r\n"))
        #expect(try await firstEcho == payload)
        #expect(String(buffer: try await secondEcho) == "GET / HTTP/1.0\r\n\r\n")
        #expect(try await first.errorMessage() == nil)
        let refused = try await ports.connect(port: 81)
        #expect(try await refused.errorMessage() == "error forwarding port 81: connection refused")
        await ports.close()
        try await pod.value
        try await server.shutdown()
    }

    @Test("a server that does not tunnel refuses the port-forward upgrade with a typed rejection")
    func tunnelRejection() async throws {
        let server = try await LoopbackWebSocketServer(supported: [Self.v4])
        let rejection = await #expect(throws: WebSocketUpgradeRejection.self) {
            _ = try await PortForwardTunnelClient.connect(
                channel: try await server.connect(), uri: "/api/v1/namespaces/ns/pods/p/portforward",
                headers: ["Host": "127.0.0.1"])
        }
        #expect(rejection?.status == .forbidden)
        try await server.shutdown()
    }

    /// Writes `bytes`, half-closes, and reads the answer to its end.
    static func roundTrip(_ connection: PortForwardClientConnection, _ bytes: ByteBuffer) async throws -> ByteBuffer {
        async let answer = connection.inbound.collect(upTo: 8 << 20)
        try await connection.write(bytes)
        try await connection.closeWrite()
        return try await answer
    }
}

@Suite(
    "The WebSocket client on the wire: masking, pings, close codes (RFC 6455, protocols.md §4.3–§4.5)",
    .timeLimit(.minutes(1)))
struct WebSocketClientWireTests {
    /// A client-side channel after the upgrade, as ``RemoteCommandWebSocketClient`` sets it up.
    static func client(
        _ options: RemoteCommandOptions, protocolName: String = "v5.channel.k8s.io",
        configuration: WebSocketClientConfiguration = WebSocketClientConfiguration(pingInterval: nil)
    ) async throws -> (NIOAsyncTestingChannel, RemoteCommandClientSession) {
        let channel = NIOAsyncTestingChannel()
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1))
        let session = try await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.addHandlers([
                WebSocketFrameEncoder(), ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: 1 << 20)),
            ])
            return try RemoteCommandWebSocketClient.configure(
                channel: channel, protocolName: protocolName, options: options, configuration: configuration)
        }.get()
        return (channel, session)
    }

    /// The frames the client wrote, unmasked; each must have been masked.
    static func sentFrames(_ channel: NIOAsyncTestingChannel) async throws -> [(opcode: UInt8, payload: [UInt8])] {
        var bytes = ByteBuffer()
        while var next = try await channel.readOutbound(as: ByteBuffer.self) { bytes.writeBuffer(&next) }
        var frames: [(UInt8, [UInt8])] = []
        while let first = bytes.readInteger(as: UInt8.self), let second = bytes.readInteger(as: UInt8.self) {
            #expect(second & 0x80 != 0, "an unmasked client frame")
            var length = Int(second & 0x7F)
            if length == 126 { length = Int(bytes.readInteger(as: UInt16.self)!) }
            if length == 127 { length = Int(bytes.readInteger(as: UInt64.self)!) }
            let mask = bytes.readBytes(length: 4)!
            let payload = bytes.readBytes(length: length)!.enumerated().map { $0.element ^ mask[$0.offset % 4] }
            frames.append((first & 0x0F, payload))
        }
        return frames
    }

    /// A server frame: unmasked, FIN set.
    static func serverFrame(opcode: UInt8, _ payload: [UInt8]) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(0x80 | opcode)
        if payload.count < 126 {
            buffer.writeInteger(UInt8(payload.count))
        } else {
            buffer.writeInteger(UInt8(126))
            buffer.writeInteger(UInt16(payload.count))
        }
        buffer.writeBytes(payload)
        return buffer
    }

    @Test("stdin, its v5 CLOSE [0xFF 0x00], resizes and pongs leave masked; the marker is not output")
    func masking() async throws {
        let (channel, session) = try await Self.client(RemoteCommandOptions(stdin: true, stdout: true, tty: true))
        try await channel.writeInbound(Self.serverFrame(opcode: 2, [0x01]))  // the "connected" marker
        try await channel.writeInbound(Self.serverFrame(opcode: 2, [0x01] + Array("$ ".utf8)))
        try await session.writeStdin(ByteBuffer(string: "ls\n"))
        try await session.closeStdin()
        try await session.resize(to: TerminalSize(width: 80, height: 24))
        try await channel.writeInbound(Self.serverFrame(opcode: 9, Array("abc".utf8)))
        let frames = try await Self.sentFrames(channel)
        #expect(frames.map(\.opcode) == [2, 2, 2, 10])
        #expect(frames[0].payload == [0x00] + Array("ls\n".utf8))
        #expect(frames[1].payload == [0xFF, 0x00])
        #expect(frames[2].payload == [0x04] + Array(#"{"Width":80,"Height":24}"#.utf8) + [0x0A])
        #expect(frames[3].payload == Array("abc".utf8))
        var stdout = session.stdout!.makeAsyncIterator()
        #expect(try await stdout.next().map { String(buffer: $0) } == "$ ")
        _ = try? await channel.finish()
    }

    @Test("the status on channel 3 followed by Close 1000 is a clean end; the Close is echoed, masked")
    func cleanClose() async throws {
        let (channel, session) = try await Self.client(RemoteCommandOptions(stdout: true, stderr: true))
        try await channel.writeInbound(Self.serverFrame(opcode: 2, [0x01] + Array("out".utf8)))
        try await channel.writeInbound(
            Self.serverFrame(opcode: 2, [0x03] + Array(RemoteCommandStatus.exited(7).json.utf8)))
        try await channel.writeInbound(Self.serverFrame(opcode: 8, [0x03, 0xE8]))
        #expect(String(buffer: try await session.stdout!.collect(upTo: 100)) == "out")
        #expect(try await session.stderr!.collect(upTo: 100).readableBytes == 0)
        #expect(try await session.status() == .exited(7))
        let frames = try await Self.sentFrames(channel)
        #expect(frames.map(\.opcode) == [8])
        #expect(frames.first?.payload == [0x03, 0xE8])
        #expect(!channel.isActive)
        _ = try? await channel.finish()
    }

    @Test("a Close other than 1000 before any status is an error, not the silent success of an empty stream")
    func abnormalClose() async throws {
        let (channel, session) = try await Self.client(RemoteCommandOptions(stdout: true, stderr: false))
        try await channel.writeInbound(Self.serverFrame(opcode: 8, [0x03, 0xF3]))  // 1011
        #expect(try await session.stdout!.collect(upTo: 100).readableBytes == 0)
        let error = await #expect(throws: KubernetesStreamError.self) { _ = try await session.status() }
        #expect(error?.kind == .connectionClosed)
        _ = try? await channel.finish()
    }

    @Test("the client pings every interval and gives up once no pong came within the timeout")
    func heartbeat() async throws {
        let configuration = WebSocketClientConfiguration(pingInterval: .seconds(5), pongTimeout: .seconds(11))
        let (channel, session) = try await Self.client(
            RemoteCommandOptions(stdout: true, stderr: false), configuration: configuration)
        await channel.testingEventLoop.advanceTime(by: .seconds(5))
        #expect(try await Self.sentFrames(channel).map(\.opcode) == [9])
        try await channel.writeInbound(Self.serverFrame(opcode: 10, []))  // pong at 5 s
        await channel.testingEventLoop.advanceTime(by: .seconds(10))
        #expect(try await Self.sentFrames(channel).map(\.opcode) == [9, 9])
        #expect(channel.isActive)
        // 16 s since the last pong at 5 s... at 20 s it is 15 s: more than 11, so it gives up.
        await channel.testingEventLoop.advanceTime(by: .seconds(5))
        #expect(!channel.isActive)
        let error = await #expect(throws: KubernetesStreamError.self) { _ = try await session.status() }
        #expect(error?.kind == .connectionClosed)
        _ = try? await channel.finish()
    }

    @Test("the heartbeat pings within the timeout and gives up after it, counting from the last pong")
    func heartbeatStates() {
        let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
        var silent = WebSocketHeartbeat(interval: .seconds(5), timeout: .seconds(61), now: start)
        #expect(silent.tick(at: start + .seconds(60)) == .sendPing)
        #expect(silent.tick(at: start + .seconds(61)) == .sendPing)
        #expect(silent.tick(at: start + .seconds(62)) == .giveUp)
        // Given up is final: a late pong does not revive it, and later ticks do nothing.
        silent.pongReceived(at: start + .seconds(63))
        #expect(silent.tick(at: start + .seconds(64)) == .nothing)

        var answered = WebSocketHeartbeat(interval: .seconds(5), timeout: .seconds(61), now: start)
        answered.pongReceived(at: start + .seconds(30))
        #expect(answered.tick(at: start + .seconds(62)) == .sendPing)
        #expect(answered.tick(at: start + .seconds(91)) == .sendPing)
        #expect(answered.tick(at: start + .seconds(92)) == .giveUp)
        #expect(WebSocketClientConfiguration().pingInterval == .seconds(5))
        #expect(WebSocketClientConfiguration().pongTimeout == .seconds(61))
        #expect(WebSocketClientConfiguration().maxFrameSize == KubernetesWebSocket.defaultMaxFrameSize)
    }
}
