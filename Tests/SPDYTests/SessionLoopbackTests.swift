import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

@testable import SPDY

@Suite("SPDY sessions over loopback TCP")
struct SessionLoopbackTests {
    @Test("the upgrade picks the client's first supported protocol and answers 101 with it")
    func negotiation() async throws {
        let server = try await LoopbackSPDYServer()
        let result = try await server.connect(protocolVersions: [
            "v5.channel.k8s.io", "v3.channel.k8s.io", "v4.channel.k8s.io",
        ])
        guard case .upgraded(let session, let version) = result else {
            Issue.record("not upgraded: \(result)")
            return
        }
        #expect(version == "v3.channel.k8s.io")
        let (_, serverVersion) = try await server.sessions.next()
        #expect(serverVersion == "v3.channel.k8s.io")
        await session.close()
        try await server.shutdown()
    }

    @Test("no common protocol gets 403 with the supported list; no protocol header gets 400")
    func refusals() async throws {
        let server = try await LoopbackSPDYServer()
        guard case .rejected(let head, let body) = try await server.connect(protocolVersions: ["v9.channel.k8s.io"])
        else {
            Issue.record("expected a refusal")
            return
        }
        #expect(head.status == .forbidden)
        #expect(head.headers[SPDYHandshake.acceptedProtocolVersionsHeader] == ["v4.channel.k8s.io, v3.channel.k8s.io"])
        #expect(String(buffer: body) == "refused")
        guard case .rejected(let missing, _) = try await server.connect(protocolVersions: []) else {
            Issue.record("expected a refusal")
            return
        }
        #expect(missing.status == .badRequest)
        try await server.shutdown()
    }

    @Test("negotiation reads comma-separated and repeated headers in client order")
    func negotiationParsing() throws {
        let headers: HTTPHeaders = [
            "Connection": "Upgrade", "Upgrade": "SPDY/3.1",
            "X-Stream-Protocol-Version": "v5.channel.k8s.io, v2.channel.k8s.io",
            "x-stream-protocol-version": "v4.channel.k8s.io",
        ]
        #expect(
            try SPDYHandshake.negotiate(headers, supported: ["v4.channel.k8s.io", "v2.channel.k8s.io"])
                == "v2.channel.k8s.io")
        let notUpgrade: HTTPHeaders = [
            "Connection": "keep-alive", "Upgrade": "SPDY/3.1", "X-Stream-Protocol-Version": "a",
        ]
        #expect(
            expectSPDYError { _ = try SPDYHandshake.negotiate(notUpgrade, supported: ["a"]) }?.kind
                == .notAnUpgradeRequest)
    }

    @Test("a stream carries data both ways, half-closes each way, and a big transfer survives a slow reader")
    func streams() async throws {
        let server = try await LoopbackSPDYServer()
        let client = try #require(try await server.connect().session)
        let (serverSession, _) = try await server.sessions.next()

        async let accepted: SPDYStream = {
            let stream = try await serverSession.inboundStreams.next()
            try await stream.reply()
            return stream
        }()
        let stream = try await client.openStream(headers: ["streamtype": "data", "port": "80"])
        let peer = try await accepted
        #expect(peer.headers.first(name: "port") == "80")
        #expect(stream.id == SPDYStreamID(1))
        #expect(stream.replyHeaders == SPDYHeaders())

        // 8 MiB from the client; the server reads slowly at first so backpressure engages.
        let payload = ByteBuffer(bytes: (0..<(8 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        async let received: ByteBuffer = {
            var collected = ByteBuffer()
            var count = 0
            for try await var chunk in peer.inbound {
                count += 1
                if count < 20 { try await Task.sleep(for: .milliseconds(5)) }
                collected.writeBuffer(&chunk)
            }
            return collected
        }()
        try await stream.write(payload)
        try await stream.closeWrite()
        #expect(try await received == payload)

        // The other direction still works after the client's half-close.
        try await peer.write(ByteBuffer(string: "reply"))
        try await peer.closeWrite()
        #expect(String(buffer: try await stream.inbound.collect(upTo: 100)) == "reply")
        await client.close()
        try await serverSession.closeFuture.get()
        try await server.shutdown()
    }

    @Test("a reset reaches the peer's reader as streamReset, and a closed session ends everything")
    func resetsAndClose() async throws {
        let server = try await LoopbackSPDYServer()
        let client = try #require(try await server.connect().session)
        let (serverSession, _) = try await server.sessions.next()
        async let accepted: [SPDYStream] = {
            var streams: [SPDYStream] = []
            for await stream in serverSession.inboundStreams {
                try await stream.reply()
                streams.append(stream)
                if streams.count == 2 { break }
            }
            return streams
        }()
        let first = try await client.openStream(headers: ["streamtype": "error"])
        let second = try await client.openStream(headers: ["streamtype": "stdout"])
        let peers = try await accepted
        #expect(second.id == SPDYStreamID(3))

        await first.reset()
        let error = await #expect(throws: SPDYError.self) { _ = try await peers[0].inbound.collect(upTo: 10) }
        #expect(error?.kind == .streamReset)
        #expect(error?.resetStatus == .cancel)

        // The server closes: the client's open stream ends with sessionClosed or a reset (RST CANCEL then GOAWAY).
        await serverSession.close()
        await #expect(throws: SPDYError.self) { _ = try await second.inbound.collect(upTo: 10) }
        try await client.closeFuture.get()
        let afterClose = await #expect(throws: SPDYError.self) { _ = try await client.openStream(headers: ["a": "b"]) }
        #expect(afterClose?.kind == .sessionClosed)
        try await server.shutdown()
    }

    @Test("an unanswered SYN_STREAM times out after replyTimeout and is reset")
    func replyTimeout() async throws {
        let server = try await LoopbackSPDYServer()
        let configuration = SPDYSessionConfiguration(
            role: .client, limits: SPDYLimits(replyTimeout: .milliseconds(200)))
        let client = try #require(try await server.connect(configuration: configuration).session)
        let (serverSession, _) = try await server.sessions.next()
        let error = await #expect(throws: SPDYError.self) { _ = try await client.openStream(headers: ["a": "b"]) }
        #expect(error?.kind == .replyTimeout)
        let ignored = try await serverSession.inboundStreams.next()
        let reset = await #expect(throws: SPDYError.self) { _ = try await ignored.inbound.collect(upTo: 10) }
        #expect(reset?.resetStatus == .cancel)
        await client.close()
        try await server.shutdown()
    }
}
