import NIOCore
import Testing

@testable import SPDY

@Suite("Port-forward over SPDY, both ends from this module")
struct PortForwardTests {
    static let versions = PortForwardSPDYServer.protocolVersions

    static func connect() async throws -> (LoopbackSPDYServer, SPDYSession, SPDYSession) {
        let server = try await LoopbackSPDYServer(protocolVersions: versions)
        let client = try #require(try await server.connect(protocolVersions: versions).session)
        let (serverSession, chosen) = try await server.sessions.next()
        #expect(chosen == "portforward.k8s.io")
        return (server, client, serverSession)
    }

    @Test("stream headers are validated as §7.4 item 12 asks")
    func headerValidation() throws {
        let valid: SPDYHeaders = ["streamtype": "data", "port": "8080", "requestid": "0"]
        #expect(
            try PortForwardStreamHeaders(valid)
                == PortForwardStreamHeaders(streamType: .data, port: 8080, requestID: "0"))
        let invalid: [SPDYHeaders] = [
            ["streamtype": "data", "port": "0", "requestid": "0"],
            ["streamtype": "data", "port": "65536", "requestid": "0"],
            ["streamtype": "data", "port": "+80", "requestid": "0"],
            ["streamtype": "data", "port": "80\u{0}22", "requestid": "0"],
            ["streamtype": "data", "port": "80", "port": "22", "requestid": "0"], ["streamtype": "data", "port": "80"],
            ["streamtype": "stdin", "port": "80", "requestid": "0"], ["port": "80", "requestid": "0"],
        ]
        for headers in invalid {
            #expect(throws: KubernetesStreamError.self, "\(headers)") { try PortForwardStreamHeaders(headers) }
        }
    }

    @Test("a pair carries bytes both ways with half-closes, and request ids count from 0")
    func pair() async throws {
        let (server, client, serverSession) = try await Self.connect()
        let forwarding = PortForwardSPDYServer.accept(session: serverSession)
        let ports = PortForwardClientSession(session: client)
        async let accepted = forwarding.connections.next()
        let outbound = try await ports.connect(port: 8080)
        let inbound = try await accepted
        #expect(outbound.requestID == "0")
        #expect(inbound.requestID == "0" && inbound.port == 8080)
        try await outbound.write(ByteBuffer(string: "GET / HTTP/1.0\r\n\r\n"))
        try await outbound.closeWrite()
        #expect(String(buffer: try await inbound.inbound.collect(upTo: 100)) == "GET / HTTP/1.0\r\n\r\n")
        try await inbound.write(ByteBuffer(string: "HTTP/1.0 200 OK\r\n\r\nbody"))
        await inbound.finish()
        #expect(String(buffer: try await outbound.inbound.collect(upTo: 100)) == "HTTP/1.0 200 OK\r\n\r\nbody")
        #expect(try await outbound.errorMessage() == nil)
        let second = try await ports.connect(port: 9090)
        #expect(second.requestID == "1")
        await ports.close()
        try await server.shutdown()
    }

    @Test("a failure reaches the client as error text")
    func failure() async throws {
        let (server, client, serverSession) = try await Self.connect()
        let forwarding = PortForwardSPDYServer.accept(session: serverSession)
        let ports = PortForwardClientSession(session: client)
        async let accepted = forwarding.connections.next()
        let outbound = try await ports.connect(port: 5432)
        await (try await accepted).fail(message: "error forwarding port 5432: connection refused")
        #expect(try await outbound.errorMessage() == "error forwarding port 5432: connection refused")
        await ports.close()
        try await server.shutdown()
    }

    @Test("invalid streams are reset; a lone half times out with the kubelet's message")
    func refusalsAndTimeout() async throws {
        let (server, client, serverSession) = try await Self.connect()
        _ = PortForwardSPDYServer.accept(session: serverSession, pairTimeout: .milliseconds(200))
        let invalid = await #expect(throws: SPDYError.self) {
            _ = try await client.openStream(headers: ["streamtype": "data", "port": "0", "requestid": "0"])
        }
        #expect(invalid?.resetStatus == .cancel)
        let lone = try await client.openStream(headers: ["streamtype": "error", "port": "80", "requestid": "7"])
        try await lone.closeWrite()
        let text = try await lone.inbound.endingAtReset().collect(upTo: 100)
        #expect(String(buffer: text) == "timed out waiting for streams")
        await client.close()
        try await server.shutdown()
    }

    @Test("a second data stream for a request id whose pair is complete is refused")
    func duplicate() async throws {
        let (server, client, serverSession) = try await Self.connect()
        _ = PortForwardSPDYServer.accept(session: serverSession, pairTimeout: .seconds(5))
        let error = try await client.openStream(headers: ["streamtype": "error", "port": "80", "requestid": "3"])
        try await error.closeWrite()
        _ = try await client.openStream(headers: ["streamtype": "data", "port": "80", "requestid": "3"])
        let again = await #expect(throws: SPDYError.self) {
            _ = try await client.openStream(headers: ["streamtype": "data", "port": "80", "requestid": "3"])
        }
        #expect(again?.kind == .streamReset)

        // While a pair is incomplete, a second error stream is refused and reported on the first one.
        let first = try await client.openStream(headers: ["streamtype": "error", "port": "80", "requestid": "4"])
        try await first.closeWrite()
        await #expect(throws: SPDYError.self) {
            _ = try await client.openStream(headers: ["streamtype": "error", "port": "80", "requestid": "4"])
        }
        var report = first.inbound.makeAsyncIterator()
        #expect(try await report.next().map { String(buffer: $0) } == "error stream already assigned for request 4")
        await client.close()
        try await server.shutdown()
    }
}
