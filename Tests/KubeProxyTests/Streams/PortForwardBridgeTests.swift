import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Policy
import SPDY
import Synchronization
import Testing

@testable import KubeProxy

/// The port-forward bridge between two real SPDY sessions on loopback TCP: the SPDY module's
/// port-forward client plays kubectl, its server plays the kubelet, and the proxy's side is the
/// same server and client that ``PortForwardInterception`` uses.
@Suite("PortForwardBridge over real SPDY sessions", .timeLimit(.minutes(1)))
struct PortForwardBridgeTests {
    /// kubectl's end, the kubelet's end, and the proxy's connections as the bridge gets them.
    struct Wiring {
        let kubectl: PortForwardClientSession
        let kubelet: PortForwardSession
        let proxyClients: PortForwardSession
        let proxyUpstream: PortForwardClientSession
        /// The proxy's connection to the "apiserver".
        let upstreamSession: SPDYSession
    }

    static func withWiring(_ body: (Wiring) async throws -> Void) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let downstream = try await Self.sessionPair(group)
        let upstream = try await Self.sessionPair(group)
        let wiring = Wiring(
            kubectl: PortForwardClientSession(session: downstream.client),
            kubelet: PortForwardSPDYServer.accept(session: upstream.server),
            proxyClients: PortForwardSPDYServer.accept(session: downstream.server),
            proxyUpstream: PortForwardClientSession(session: upstream.client), upstreamSession: upstream.client)
        try await body(wiring)
        await downstream.client.close()
        await upstream.client.close()
        try await group.shutdownGracefully()
    }

    /// A client and a server SPDY session joined by a loopback TCP connection.
    static func sessionPair(
        _ group: MultiThreadedEventLoopGroup
    ) async throws -> (
        client: SPDYSession, server: SPDYSession
    ) {
        let (sessions, continuation) = AsyncStream<SPDYSession>.makeStream()
        let listener = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    continuation.yield(
                        try channel.pipeline.syncOperations.addSPDYSessionHandlers(
                            configuration: SPDYSessionConfiguration(role: .server)))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(listener.localAddress?.port)
        let channel = try await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: port).get()
        let client = try await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.addSPDYSessionHandlers(
                configuration: SPDYSessionConfiguration(role: .client))
        }.get()
        var iterator = sessions.makeAsyncIterator()
        let server = try #require(await iterator.next())
        try await listener.close()
        return (client, server)
    }

    /// The proxy's part for one connection: the upstream pair with the same port and request id,
    /// then the bridge.
    static func bridgeNext(
        _ wiring: Wiring, inspector: any PortForwardInspector = PassThroughInspector(),
        errorWait: Duration = .seconds(5)
    ) async throws -> PortForwardSummary {
        var connections = wiring.proxyClients.connections.makeAsyncIterator()
        let connection = try #require(await connections.next())
        let upstream = try await wiring.proxyUpstream.connect(port: connection.port, requestID: connection.requestID)
        let channel = wiring.upstreamSession.channel
        return await PortForwardBridge(
            downstream: connection, upstream: upstream, inspector: inspector, errorWait: errorWait,
            upstreamAlive: { channel.isActive }
        ).run()
    }

    static func collect(_ stream: InboundByteStream) async throws -> [UInt8] {
        var bytes: [UInt8] = []
        for try await chunk in stream { bytes += chunk.readableBytesView }
        return bytes
    }

    @Test("bytes cross both ways, each half-close is carried, and the same port and request id reach upstream")
    func echoWithHalfClose() async throws {
        try await Self.withWiring { wiring in
            let kubelet = Task { () -> (UInt16, String, [UInt8]) in
                var connections = wiring.kubelet.connections.makeAsyncIterator()
                guard let connection = await connections.next() else { throw CancellationError() }
                // Reads to the client's half-close, then answers: only a carried FIN gets here.
                let received = try await Self.collect(connection.inbound)
                try await connection.write(ByteBuffer(bytes: Array("echo:".utf8) + received))
                await connection.finish()
                return (connection.port, connection.requestID, received)
            }
            async let summary = Self.bridgeNext(wiring)
            let forwarded = try await wiring.kubectl.connect(port: 5432, requestID: "7")
            var payload = [UInt8](repeating: 0, count: 1 << 20)
            for index in payload.indices { payload[index] = UInt8(truncatingIfNeeded: index &* 31 &+ 7) }
            try await forwarded.write(ByteBuffer(bytes: payload))
            try await forwarded.closeWrite()
            let answer = try await Self.collect(forwarded.inbound)
            #expect(answer == Array("echo:".utf8) + payload)
            await forwarded.reset()  // what client-go does once the pod side is done
            #expect(try await forwarded.errorMessage() == nil)

            let (port, requestID, received) = try await kubelet.value
            #expect(port == 5432)
            #expect(requestID == "7")
            #expect(received == payload)
            let result = try await summary
            #expect(result.bytesFromClient == payload.count)
            #expect(result.bytesToClient == payload.count + 5)
            #expect(result.closeReason == .completed)
        }
    }

    @Test("when the pod side is done the connection ends, even for a client that never half-closes")
    func podSideEndsConnection() async throws {
        try await Self.withWiring { wiring in
            let kubelet = Task {
                var connections = wiring.kubelet.connections.makeAsyncIterator()
                guard let connection = await connections.next() else { return }
                // As the kubelet does once the pod closes: answer, then end the pair.
                var iterator = connection.inbound.makeAsyncIterator()
                _ = try await iterator.next()
                try await connection.write(ByteBuffer(string: "HTTP/1.1 200 OK\r\n\r\nbye"))
                await connection.finish()
            }
            async let summary = Self.bridgeNext(wiring)
            let forwarded = try await wiring.kubectl.connect(port: 8080)
            try await forwarded.write(ByteBuffer(string: "GET / HTTP/1.1\r\n\r\n"))
            #expect(String(decoding: try await Self.collect(forwarded.inbound), as: UTF8.self).hasSuffix("bye"))
            // No half-close, no reset: the error stream's end is what tells this client it is over.
            #expect(try await forwarded.errorMessage() == nil)
            try await kubelet.value
            let result = try await summary
            #expect(result.closeReason == .completed)
            #expect(result.bytesFromClient == 18)
        }
    }

    @Test("20 concurrent connections on one session each get their own bytes back, none mixed")
    func concurrentConnections() async throws {
        try await Self.withWiring { wiring in
            let count = 20
            // The kubelet echoes each connection, prefixed with its request id.
            let kubelet = Task {
                await withTaskGroup(of: Void.self) { group in
                    var served = 0
                    for await connection in wiring.kubelet.connections {
                        group.addTask {
                            let received = (try? await Self.collect(connection.inbound)) ?? []
                            try? await connection.write(ByteBuffer(bytes: Array(connection.requestID.utf8) + received))
                            await connection.finish()
                        }
                        served += 1
                        if served == count { break }
                    }
                }
            }
            let proxy = Task {
                await withTaskGroup(of: PortForwardSummary.self) { group in
                    var bridged = 0
                    for await connection in wiring.proxyClients.connections {
                        group.addTask {
                            guard
                                let upstream = try? await wiring.proxyUpstream.connect(
                                    port: connection.port, requestID: connection.requestID)
                            else {
                                return PortForwardSummary(
                                    bytesFromClient: 0, bytesToClient: 0, closeReason: .upstreamUnavailable("test"))
                            }
                            return await PortForwardBridge(downstream: connection, upstream: upstream).run()
                        }
                        bridged += 1
                        if bridged == count { break }
                    }
                    var summaries: [PortForwardSummary] = []
                    for await summary in group { summaries.append(summary) }
                    return summaries
                }
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<count {
                    group.addTask {
                        let requestID = "r\(index)"
                        let payload = (0..<(64 << 10)).map { UInt8(truncatingIfNeeded: $0 &* (index + 3)) }
                        let forwarded = try await wiring.kubectl.connect(
                            port: UInt16(1000 + index), requestID: requestID)
                        try await forwarded.write(ByteBuffer(bytes: payload))
                        try await forwarded.closeWrite()
                        let answer = try await Self.collect(forwarded.inbound)
                        #expect(answer == Array(requestID.utf8) + payload, "connection \(index)")
                        await forwarded.reset()
                        #expect(try await forwarded.errorMessage() == nil)
                    }
                }
                try await group.waitForAll()
            }
            await kubelet.value
            let summaries = await proxy.value
            #expect(summaries.count == count)
            #expect(summaries.allSatisfy { $0.closeReason == .completed && $0.bytesFromClient == 64 << 10 })
        }
    }

    @Test("a pod side that stopped writing but still reads keeps the client's direction open")
    func podStillReads() async throws {
        try await Self.withWiring { wiring in
            let upload = [UInt8](repeating: 0x5A, count: 256 << 10)
            let kubelet = Task { () -> Int in
                var connections = wiring.kubelet.connections.makeAsyncIterator()
                guard let connection = await connections.next() else { return -1 }
                try await connection.write(ByteBuffer(string: "ready"))
                try await connection.closeWrite()
                let received = try await Self.collect(connection.inbound)
                await connection.finish()
                return received.count
            }
            async let summary = Self.bridgeNext(wiring, errorWait: .milliseconds(100))
            let forwarded = try await wiring.kubectl.connect(port: 9000)
            #expect(try await Self.collect(forwarded.inbound) == Array("ready".utf8))
            // Well past the error stream's grace: the pair is still open upstream, so it waits.
            try await Task.sleep(for: .milliseconds(500))
            try await forwarded.write(ByteBuffer(bytes: upload))
            try await forwarded.closeWrite()
            #expect(try await forwarded.errorMessage() == nil)
            #expect(try await kubelet.value == upload.count)
            let result = try await summary
            #expect(result.closeReason == .completed)
            #expect(result.bytesFromClient == upload.count)
        }
    }

    @Test("an apiserver connection that dies mid-transfer is a failure on the client's error stream, not an end")
    func upstreamLost() async throws {
        try await Self.withWiring { wiring in
            let kubelet = Task {
                var connections = wiring.kubelet.connections.makeAsyncIterator()
                guard let connection = await connections.next() else { return }
                try await connection.write(ByteBuffer(string: "partial"))
                // Then the apiserver connection goes away, mid-transfer.
                try await Task.sleep(for: .milliseconds(100))
                await wiring.upstreamSession.close()
            }
            async let summary = Self.bridgeNext(wiring)
            let forwarded = try await wiring.kubectl.connect(port: 5432)
            try await forwarded.write(ByteBuffer(string: "query"))
            #expect(try await Self.collect(forwarded.inbound) == Array("partial".utf8))
            #expect(
                try await forwarded.errorMessage()
                    == PortForwardBridge<PortForwardConnection, PortForwardClientConnection>.lostMessage)
            try await kubelet.value
            let result = try await summary
            #expect(result.closeReason.description == "upstream-lost")
            #expect(result.bytesToClient == 7)
        }
    }

    @Test("the kubelet's error text reaches the client's error stream")
    func upstreamError() async throws {
        try await Self.withWiring { wiring in
            let text = "error forwarding port 9 to pod web, uid 1: dial tcp 127.0.0.1:9: connection refused"
            let kubelet = Task {
                var connections = wiring.kubelet.connections.makeAsyncIterator()
                await connections.next()?.fail(message: text)
            }
            async let summary = Self.bridgeNext(wiring)
            let forwarded = try await wiring.kubectl.connect(port: 9)
            _ = try await Self.collect(forwarded.inbound)
            await forwarded.reset()
            #expect(try await forwarded.errorMessage() == text)
            await kubelet.value
            let result = try await summary
            #expect(result.closeReason == .upstreamError(text))
        }
    }

    @Test("an inspector's refusal ends the connection with its message, and the pod side is reset")
    func inspectorRefuses() async throws {
        try await Self.withWiring { wiring in
            let kubelet = Task { () -> [UInt8] in
                var connections = wiring.kubelet.connections.makeAsyncIterator()
                guard let connection = await connections.next() else { return [] }
                return (try? await Self.collect(connection.inbound)) ?? Array("reset".utf8)
            }
            async let summary = Self.bridgeNext(wiring, inspector: RefuseAfter(bytes: 4))
            let forwarded = try await wiring.kubectl.connect(port: 5432)
            try await forwarded.write(ByteBuffer(string: "okay"))
            try await Task.sleep(for: .milliseconds(100))
            try await forwarded.write(ByteBuffer(string: "DROP TABLE"))
            _ = try await Self.collect(forwarded.inbound)
            #expect(try await forwarded.errorMessage() == "statement refused")
            let result = try await summary
            #expect(result.closeReason == .refusedByInspector("statement refused"))
            #expect(result.bytesFromClient == 4)
            // The pod saw what was allowed, then the reset: never the refused bytes.
            let seen = await kubelet.value
            #expect(!String(decoding: seen, as: UTF8.self).contains("DROP"))
        }
    }

    @Test("a client that resets while the pod is still sending is recorded as an abort, and the pod side is reset")
    func clientAborts() async throws {
        try await Self.withWiring { wiring in
            let kubeletDone = Task { () -> Bool in
                var connections = wiring.kubelet.connections.makeAsyncIterator()
                guard let connection = await connections.next() else { return false }
                defer { Task { await connection.finish() } }
                do {
                    for try await _ in connection.inbound {}
                    return false
                } catch {
                    return true  // the reset arrived
                }
            }
            async let summary = Self.bridgeNext(wiring)
            let forwarded = try await wiring.kubectl.connect(port: 80)
            try await forwarded.write(ByteBuffer(string: "GET /"))
            try await Task.sleep(for: .milliseconds(100))
            await forwarded.reset()
            #expect(await kubeletDone.value)
            let result = try await summary
            #expect(result.closeReason == .clientAborted)
            #expect(result.bytesFromClient == 5)
        }
    }
}

/// Forwards the first `bytes` client bytes, then refuses.
private final class RefuseAfter: PortForwardInspector {
    let limit: Int
    private let seen = Mutex(0)

    init(bytes: Int) { limit = bytes }

    var name: String { "test" }

    func inspect(_ bytes: ByteBuffer, direction: PortForwardDirection) async -> PortForwardInspection {
        guard direction == .clientToPod else { return .forward(bytes) }
        let total = seen.withLock { total in
            total += bytes.readableBytes
            return total
        }
        return total <= limit ? .forward(bytes) : .refuse(message: "statement refused")
    }
}

@Suite("PortForwardInterception: transports and the port policy")
struct PortForwardInterceptionTests {
    @Test("SPDY, the WebSocket tunnel and legacy channels are told apart; a legacy request needs ports")
    func transports() throws {
        let spdy = HTTPHeaders([("Upgrade", "SPDY/3.1"), ("X-Stream-Protocol-Version", "portforward.k8s.io")])
        #expect(try PortForwardInterception.clientTransport(spdy, uri: "/p").get() == .spdy)
        let tunnel = HTTPHeaders([
            ("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13"), ("Sec-WebSocket-Key", "k"),
            ("Sec-WebSocket-Protocol", "SPDY/3.1+portforward.k8s.io"),
        ])
        #expect(try PortForwardInterception.clientTransport(tunnel, uri: "/p").get() == .tunnel(key: "k"))
        let legacy = HTTPHeaders([
            ("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13"), ("Sec-WebSocket-Key", "k"),
            ("Sec-WebSocket-Protocol", "v4.channel.k8s.io"),
        ])
        #expect(
            try PortForwardInterception.clientTransport(legacy, uri: "/p?ports=80,5432&ports=9").get()
                == .webSocket(key: "k", protocolName: "v4.channel.k8s.io", ports: [80, 5432, 9]))
        #expect(throws: KubernetesStatusError.self) {
            try PortForwardInterception.clientTransport(legacy, uri: "/p").get()
        }
        #expect(throws: KubernetesStatusError.self) {
            try PortForwardInterception.clientTransport(legacy, uri: "/p?ports=0").get()
        }
        #expect(throws: KubernetesStatusError.self) {
            try PortForwardInterception.clientTransport(legacy, uri: "/p?ports=80&ports=80").get()
        }
        let exec = HTTPHeaders([("Upgrade", "SPDY/3.1"), ("X-Stream-Protocol-Version", "v4.channel.k8s.io")])
        #expect(throws: KubernetesStatusError.self) {
            try PortForwardInterception.clientTransport(exec, uri: "/p").get()
        }
    }

    @Test("each connection's audit line and metrics carry its port, bytes, close reason and decision")
    func connectionRecord() throws {
        var session = AuditRecord(
            request: ProxyRequest(
                head: HTTPRequestHead(
                    version: .http1_1, method: .POST, uri: "/api/v1/namespaces/dev/pods/web/portforward"),
                body: ByteBuffer(), clientCertificates: [], remoteAddress: "127.0.0.1", receivedAt: Date()))
        session.annotations["portcullis.dev/transport"] = "spdy/portforward.k8s.io"
        let denied = PortForwardConnectionRecord(
            port: 22, requestID: "3",
            decision: Decision(outcome: .deny, decidedBy: .init(policy: "ports", rule: "no-ssh"), message: "no"),
            inspector: "tcp",
            summary: .init(bytesFromClient: 0, bytesToClient: 0, closeReason: .denied("Forbidden: no")),
            duration: .milliseconds(1500))
        let line = denied.auditRecord(session: session)
        #expect(line.auditID == session.auditID)
        #expect(line.responseCode == 403)
        let annotations = line.allAnnotations
        #expect(annotations["portcullis.dev/port"] == "22")
        #expect(annotations["portcullis.dev/port-forward-connection"] == "3")
        #expect(annotations["portcullis.dev/close-reason"] == "denied")
        #expect(annotations["portcullis.dev/connection-error"] == "Forbidden: no")
        #expect(annotations["portcullis.dev/duration-seconds"] == "1.500")
        #expect(annotations["portcullis.dev/decision"] == "Deny")
        #expect(annotations["portcullis.dev/rule"] == "no-ssh")
        #expect(annotations["portcullis.dev/session"] == session.auditID)
        #expect(annotations["portcullis.dev/transport"] == "spdy/portforward.k8s.io")

        let allowed = PortForwardConnectionRecord(
            port: 80, requestID: "4", decision: Decision(outcome: .allow), inspector: "tcp",
            summary: .init(bytesFromClient: 10, bytesToClient: 2000, closeReason: .completed), duration: .seconds(1))
        var totals = PortForwardSessionTotals()
        totals.add(denied)
        totals.add(allowed)
        #expect(totals == PortForwardSessionTotals(connections: 2, denied: 1, bytesIn: 10, bytesOut: 2000))

        let metrics = ProxyMetrics()
        metrics.recordPortForwardConnection(denied)
        metrics.recordPortForwardConnection(allowed)
        let text = metrics.render()
        #expect(text.contains(#"portcullis_proxy_portforward_connections_total{close_reason="denied"} 1"#), "\(text)")
        #expect(text.contains(#"portcullis_proxy_portforward_bytes_total{direction="pod-to-client"} 2000"#), "\(text)")
    }

    @Test("each connection is judged with its port; a denied port gets the policy's message")
    func portPolicy() throws {
        let engine = PolicyEngine(
            policies: try PolicyCompiler.compile(
                try PolicyLoader.parse(
                    """
                    apiVersion: portcullis.dev/v1alpha1
                    kind: AccessPolicy
                    metadata: {name: ports}
                    spec:
                      match: {resources: [pods/portforward]}
                      rules:
                      - {name: no-ssh, action: Deny, expression: "portForward != null && portForward.port == 22", message: ssh is not forwarded}
                      - {name: db, action: Review, expression: "portForward != null && portForward.port == 5432", message: databases need review, review: {approvers: {groups: [sre]}}}
                    """, file: "p.yaml")))
        var audit = AuditRecord(
            request: ProxyRequest(
                head: HTTPRequestHead(
                    version: .http1_1, method: .POST, uri: "/api/v1/namespaces/dev/pods/web/portforward"),
                body: ByteBuffer(), clientCertificates: [], remoteAddress: "127.0.0.1", receivedAt: Date()))
        audit.user = .init(name: "alice", groups: ["developers"])
        audit.info = try RequestInfo(method: "POST", target: audit.requestURI)
        func decide(_ port: UInt16) -> PortForwardInterception.ConnectionDecision {
            PortForwardInterception.connectionDecision(
                engine: engine, audit: audit, uri: audit.requestURI, port: port, protocolName: "tcp", now: Date())
        }
        #expect(decide(22).outcome == .deny)
        #expect(PortForwardInterception.refusal(decide(22), port: 22) == "Forbidden: ssh is not forwarded")
        #expect(decide(5432).outcome == .review)
        #expect(PortForwardInterception.refusal(decide(5432), port: 5432)?.contains("databases need review") == true)
        #expect(decide(5432).attributes?.portForward?.port == 5432)
        #expect(decide(8080).outcome == .allow)
        #expect(PortForwardInterception.refusal(decide(8080), port: 8080) == nil)
        // The gate's request-level check knows no port yet: `portForward` is null there.
        let user = try #require(audit.user)
        let requestLevel = try #require(audit.info).attributes(user: user, query: [:])
        #expect(requestLevel.portForward == nil)
        #expect(engine.evaluate(requestLevel).outcome == .allow)
        audit.user = nil
        #expect(decide(8080).outcome == .deny, "no identity: refused")
    }

    @Test(
        "a port held by Review files one AccessRequest, is refused until approved, then goes through; an approval covers one port"
    )
    func portReview() async throws {
        let engine = PolicyEngine(
            policies: try PolicyCompiler.compile(
                try PolicyLoader.parse(
                    """
                    apiVersion: portcullis.dev/v1alpha1
                    kind: AccessPolicy
                    metadata: {name: databases}
                    spec:
                      match: {resources: [pods/portforward]}
                      rules:
                      - {name: db, action: Review, expression: "portForward != null && portForward.port >= 5432", message: databases need review, review: {approvers: {groups: [sre]}, grantFor: 10m}}
                    """, file: "p.yaml")))
        var audit = AuditRecord(
            request: ProxyRequest(
                head: HTTPRequestHead(
                    version: .http1_1, method: .POST, uri: "/api/v1/namespaces/dev/pods/db/portforward"),
                body: ByteBuffer(), clientCertificates: [], remoteAddress: "127.0.0.1", receivedAt: Date()))
        audit.user = .init(name: "alice", groups: ["developers"])
        let info = try RequestInfo(method: "POST", target: audit.requestURI)
        audit.info = info
        let approvals = LocalApprovals(namespace: "portcullis-system")
        func connect(_ port: UInt16) async throws -> PortForwardInterception.ReviewOutcome {
            let decision = PortForwardInterception.connectionDecision(
                engine: engine, audit: audit, uri: audit.requestURI, port: port, protocolName: "tcp", now: Date())
            #expect(decision.outcome == .review)
            return await PortForwardInterception.review(
                decision.decision, attributes: try #require(decision.attributes), info: info, approvals: approvals,
                now: Date())
        }
        guard case .refused(let first) = try await connect(5432) else {
            Issue.record("an unapproved port went through")
            return
        }
        let name = try #require(first.firstMatch(of: /approval requested as AccessRequest (ar-[a-z0-9]+)/)?.1)
            .description
        #expect(first.hasPrefix("Forbidden: databases need review"))
        #expect(
            first.contains("kubectl portcullis approve -n portcullis-system \(name); then forward again"), "\(first)")
        #expect(
            try await connect(5432)
                == .refused(
                    first.replacingOccurrences(
                        of: "approval requested as AccessRequest", with: "waiting for approval of AccessRequest")))
        let filed = try await approvals.accessRequest(named: name, now: Date())
        #expect(filed.spec.request.command == "port 5432")

        _ = try await approvals.decide(name, .approved, by: "bob", groups: ["sre"], now: Date())
        #expect(try await connect(5432) == .approved("portcullis-system/\(name) by bob"))
        guard case .refused(let other) = try await connect(5433) else {
            Issue.record("an approval for port 5432 let port 5433 through")
            return
        }
        #expect(!other.contains(name))
    }
}
