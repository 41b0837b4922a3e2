import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import SPDY
import Sandbox
import TestSupport
import Testing

/// Port-forward through the proxy, terminated and re-originated: kubectl up to 1.30 speaks SPDY,
/// from 1.31 the WebSocket tunnel; upstream is always SPDY to the real apiserver and node agent.
/// Every connection is judged by the port policy (Tests/IntegrationTests/Fixtures/
/// proxy-portforward-policies.yaml refuses pod ports below 1024) and leaves an audit line.
extension ProxyIntegrationTests {
    /// The client transport each kubectl uses for port-forward through the proxy.
    static func expectedPortForwardTransport(_ minor: String) -> String {
        (Int(minor.split(separator: ".")[1]) ?? 0) >= 31
            ? "websocket/SPDY/3.1+portforward.k8s.io" : "spdy/portforward.k8s.io"
    }

    /// `kubectl port-forward pod/web` in `dev` through the proxy, as alice, for `ports`; returns
    /// the process and the local port of each pod port.
    static func startPortForward(
        minor: String, ports: [Int]
    ) async throws -> (BackgroundProcess, [Int: Int]) {
        let running = try await Fixture.shared.start()
        let forward = try BackgroundProcess(
            executable: try Kubectl.named(minor).path,
            arguments: [
                "--kubeconfig", try running.kubeconfig(.alice).path, "-n", "dev", "port-forward", "pod/web",
            ] + ports.map { ":\($0)" },
            environment: Kubectl.environment(home: try Paths.makeScratchDirectory("home")))
        var local: [Int: Int] = [:]
        for port in ports {
            local[port] = Int(try await forward.waitForMatch(#"Forwarding from 127\.0\.0\.1:(\d+) -> \#(port)\b"#))
        }
        return (forward, local)
    }

    /// The audit lines of the connections to pod port `port`, waiting until `count` are there.
    static func connectionAudit(
        _ running: Running, port: Int, count: Int = 1
    ) async throws -> [[String: Any]] {
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            let lines = try String(contentsOf: running.auditFile, encoding: .utf8).split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
            let matching = lines.filter {
                ($0["annotations"] as? [String: String])?["portcullis.dev/port"] == String(port)
            }
            if matching.count >= count { return matching }
            guard ContinuousClock.now < deadline else {
                throw TestSupportError("\(matching.count) of \(count) connection audit lines for port \(port)")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    @Test(
        "port-forward through the proxy: HTTP exchanges, one audit line per connection with user, port and bytes",
        .timeLimit(.minutes(2)), arguments: Kubectl.baselineMinors)
    func portForwardAudited(minor: String) async throws {
        let running = try await Fixture.shared.start()
        let body = Data((0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 13) })
        let server = try LoopbackServer(.http(body: body))
        let (forward, local) = try await Self.startPortForward(minor: minor, ports: [server.port])
        defer { forward.stop() }
        let localPort = try #require(local[server.port])
        for _ in 0..<2 {
            #expect(try await LoopbackClient.httpGet(port: localPort) == body)
        }
        #expect(forward.isRunning, "\(forward.transcript)")

        let lines = try await Self.connectionAudit(running, port: server.port, count: 2)
        #expect(lines.count == 2)
        for line in lines {
            let annotations = try #require(line["annotations"] as? [String: String])
            #expect((line["user"] as? [String: Any])?["username"] as? String == "alice")
            #expect(line["stage"] as? String == "ResponseComplete")
            #expect((line["responseStatus"] as? [String: Any])?["code"] as? Int == 101)
            #expect(annotations["portcullis.dev/decision"] == "Allow")
            #expect(annotations["portcullis.dev/close-reason"] == "completed", "\(annotations)")
            #expect(annotations["portcullis.dev/inspector"] == "tcp")
            #expect(Int(annotations["portcullis.dev/bytes-out"] ?? "") ?? 0 > body.count)
            #expect(annotations["portcullis.dev/bytes-in"] == String("GET / HTTP/1.0\r\nHost: pod\r\n\r\n".utf8.count))
            #expect(Double(annotations["portcullis.dev/duration-seconds"] ?? "") != nil)
            #expect(annotations["portcullis.dev/transport"] == Self.expectedPortForwardTransport(minor))
            #expect(annotations["portcullis.dev/session"] == line["auditID"] as? String)
        }
        // Both connections belong to one session, whose start record carries the same id.
        let session = try #require(lines.first?["auditID"] as? String)
        #expect(lines.allSatisfy { $0["auditID"] as? String == session })
        let all = try String(contentsOf: running.auditFile, encoding: .utf8)
        #expect(all.contains(#""auditID":"\#(session)","stage":"ResponseStarted""#))
    }

    @Test(
        "100 MiB through a forwarded port arrive byte for byte (sha256)", .timeLimit(.minutes(4)),
        arguments: Kubectl.baselineMinors)
    func portForwardLargeTransfer(minor: String) async throws {
        let running = try await Fixture.shared.start()
        let body = Self.pseudoRandom(count: 100 << 20, seed: UInt64(minor.utf8.reduce(0) { $0 &* 31 &+ UInt64($1) }))
        let server = try LoopbackServer(.http(body: body))
        let (forward, local) = try await Self.startPortForward(minor: minor, ports: [server.port])
        defer { forward.stop() }
        let clock = ContinuousClock()
        let start = clock.now
        let received = try await LoopbackClient.httpGet(port: try #require(local[server.port]))
        let elapsed = clock.now - start
        #expect(received.count == body.count)
        #expect(Data(SHA256.hash(data: received)) == Data(SHA256.hash(data: body)))
        print("port-forward \(minor): 100 MiB through the proxy in \(elapsed)")

        let line = try #require(try await Self.connectionAudit(running, port: server.port).first)
        let annotations = try #require(line["annotations"] as? [String: String])
        #expect(Int(annotations["portcullis.dev/bytes-out"] ?? "") ?? 0 > body.count)
        #expect(annotations["portcullis.dev/close-reason"] == "completed")
    }

    @Test(
        "a port the policy refuses gets the policy's message and never reaches the pod; an allowed port works",
        .timeLimit(.minutes(2)), arguments: ["1.27", "1.33"])
    func portForwardDeniedPort(minor: String) async throws {
        let running = try await Fixture.shared.start()
        let body = Data("allowed port\n".utf8)
        let allowed = try LoopbackServer(.http(body: body))
        let privileged = try Self.privilegedServer()
        let (forward, local) = try await Self.startPortForward(minor: minor, ports: [allowed.port, privileged.port])
        defer { forward.stop() }
        #expect(try await LoopbackClient.httpGet(port: try #require(local[allowed.port])) == body)

        // The refused connection carries nothing: it closes (or is reset) without a byte.
        let refused = try? await LoopbackClient.exchange(
            port: try #require(local[privileged.port]), request: Data("GET / HTTP/1.0\r\n\r\n".utf8))
        #expect(refused == nil || refused?.isEmpty == true)
        _ = try await forward.waitForMatch(
            #"an error occurred forwarding \#(local[privileged.port] ?? 0) -> \#(privileged.port): "#
                + "Forbidden: pod ports below 1024 are not forwarded")
        // kubectl (client-go since 1.23) ends its whole session after any error text; the proxy
        // does not (see portForwardSessionProtocols, where the same session goes on).
        _ = try await forward.waitForMatch("lost connection to pod")
        #expect(privileged.acceptedConnections == 0, "nothing may reach the refused port")

        let line = try #require(try await Self.connectionAudit(running, port: privileged.port).first)
        let annotations = try #require(line["annotations"] as? [String: String])
        #expect((line["user"] as? [String: Any])?["username"] as? String == "alice")
        #expect((line["responseStatus"] as? [String: Any])?["code"] as? Int == 403)
        #expect(annotations["portcullis.dev/decision"] == "Deny")
        #expect(annotations["portcullis.dev/rule"] == "no-privileged-ports")
        #expect(annotations["portcullis.dev/close-reason"] == "denied")
        #expect(annotations["portcullis.dev/bytes-in"] == "0")
        #expect(annotations["portcullis.dev/connection-error"]?.contains("below 1024") == true)
    }

    @Test(
        "20 concurrent connections over one kubectl session to 4 pod ports: every answer is its own server's",
        .timeLimit(.minutes(2)), arguments: ["1.27", "1.33"])
    func portForwardConcurrentConnections(minor: String) async throws {
        let running = try await Fixture.shared.start()
        let bodies = (0..<4).map { server in
            Data((0..<(200_000 + server * 1_000)).map { UInt8(truncatingIfNeeded: $0 &* (server * 2 + 3)) })
        }
        let servers = try bodies.map { try LoopbackServer(.http(body: $0)) }
        let (forward, local) = try await Self.startPortForward(minor: minor, ports: servers.map(\.port))
        defer { forward.stop() }
        let localPorts = try servers.map { try #require(local[$0.port]) }
        let answers = try await withThrowingTaskGroup(of: (Int, Data).self) { group in
            for index in 0..<20 {
                let server = index % 4
                group.addTask { (server, try await LoopbackClient.httpGet(port: localPorts[server])) }
            }
            var answers: [(Int, Data)] = []
            for try await answer in group { answers.append(answer) }
            return answers
        }
        #expect(answers.count == 20)
        for (server, body) in answers {
            #expect(body == bodies[server], "server \(server): \(body.count) bytes")
        }
        #expect(forward.isRunning, "\(forward.transcript)")
        for (server, body) in zip(servers, bodies) {
            let lines = try await Self.connectionAudit(running, port: server.port, count: 5)
            let head = "HTTP/1.1 200 OK\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
            #expect(lines.count == 5)
            #expect(
                lines.allSatisfy {
                    ($0["annotations"] as? [String: String])?["portcullis.dev/bytes-out"]
                        == String(head.utf8.count + body.count)
                })
        }
    }

    @Test(
        "one session carries a refused and an allowed connection; the tunnel and legacy channels forward too",
        .timeLimit(.minutes(1)))
    func portForwardSessionProtocols() async throws {
        let running = try await Fixture.shared.start()
        let body = Data("same session\n".utf8)
        let allowed = try LoopbackServer(.http(body: body))
        let privileged = try Self.privilegedServer()
        let proxy = try ProxyEndpoint(running)

        // SPDY: the refusal is on the connection's error stream; the session goes on.
        let spdy = try await proxy.portForwardSPDY()
        let refused = try await spdy.connect(port: UInt16(privileged.port))
        #expect(try await refused.inbound.collect(upTo: 1024).readableBytes == 0)
        #expect(try await refused.errorMessage() == "Forbidden: pod ports below 1024 are not forwarded")
        #expect(try await Self.httpGet(try await spdy.connect(port: UInt16(allowed.port))) == body)
        await spdy.close()

        let tunnel = try await PortForwardTunnelClient.connect(
            channel: try await proxy.connect(), uri: proxy.portForwardURI, headers: proxy.headers)
        #expect(try await Self.httpGet(try await tunnel.connect(port: UInt16(allowed.port))) == body)
        await tunnel.close()

        let legacy = try await WebSocketPortForwardClient.connect(
            channel: try await proxy.connect(), uri: proxy.portForwardURI, headers: proxy.headers,
            ports: [UInt16(allowed.port)])
        #expect(try await Self.httpGet(legacy.connections[0]) == body)
        await legacy.close()
        #expect(privileged.acceptedConnections == 0)
    }

    /// A pod-side server on a port below 1024 (the tests run as root), which the policy refuses.
    static func privilegedServer() throws -> LoopbackServer {
        var lastError: (any Error)?
        for port in (900..<1024).shuffled().prefix(20) {
            do {
                return try LoopbackServer(.http(body: Data("must not be reached\n".utf8)), port: port)
            } catch {
                lastError = error
            }
        }
        throw lastError ?? TestSupportError("no free port below 1024")
    }

    /// Sends a GET on a forwarded connection and returns the body; the server closes after it.
    static func httpGet(_ connection: PortForwardClientConnection) async throws -> Data {
        async let response = connection.inbound.collect(upTo: 1 << 20)
        try await connection.write(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: pod\r\n\r\n"))
        let bytes = Data(try await response.readableBytesView)
        #expect(try await connection.errorMessage() == nil)
        let separator = try #require(bytes.range(of: Data("\r\n\r\n".utf8)))
        return Data(bytes[separator.upperBound...])
    }

    /// Deterministic bytes that do not compress or repeat in any useful way.
    static func pseudoRandom(count: Int, seed: UInt64) -> Data {
        var state = seed | 1
        var data = Data(count: count)
        data.withUnsafeMutableBytes { raw in
            let words = raw.bindMemory(to: UInt64.self)
            for index in words.indices {
                // splitmix64
                state &+= 0x9E37_79B9_7F4A_7C15
                var mixed = state
                mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
                mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
                words[index] = mixed ^ (mixed >> 31)
            }
        }
        return data
    }
}

/// The proxy reached over TLS as alice, for clients built on the SPDY module.
struct ProxyEndpoint {
    let port: Int
    let token: String
    let tls: NIOSSLContext
    let portForwardURI = "/api/v1/namespaces/dev/pods/web/portforward"

    init(_ running: ProxyIntegrationTests.Running) throws {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .file(running.caFile.path)
        configuration.applicationProtocols = ["http/1.1"]
        tls = try NIOSSLContext(configuration: configuration)
        port = running.port
        token = running.cluster.token(for: .alice)
    }

    var headers: HTTPHeaders {
        ["Host": "127.0.0.1:\(port)", "Authorization": "Bearer \(token)"]
    }

    func connect() async throws -> any Channel {
        let tls = self.tls
        return try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        NIOSSLClientHandler(context: tls, serverHostname: nil))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
    }

    func portForwardSPDY() async throws -> PortForwardClientSession {
        switch try await SPDYClientHandshake.upgrade(
            channel: try await connect(), uri: portForwardURI, headers: headers,
            protocolVersions: [PortForwardProtocol.version])
        {
        case .upgraded(let session, _):
            return PortForwardClientSession(session: session)
        case .rejected(let head, let body):
            throw TestSupportError("\(head.status): \(String(buffer: body))")
        }
    }
}

extension ProxyIntegrationTests {
    /// A pod-side server on a port the fixture's `held-ports` Review rule holds (1024-1099).
    static func heldPortServer(body: Data) throws -> LoopbackServer {
        var lastError: (any Error)?
        for port in (1024..<1100).shuffled().prefix(20) {
            do {
                return try LoopbackServer(.http(body: body), port: port)
            } catch {
                lastError = error
            }
        }
        throw lastError ?? TestSupportError("no free port in 1024-1099")
    }

    @Test(
        "a port held by Review is refused with an AccessRequest; after another identity approves it, it forwards",
        .timeLimit(.minutes(2)))
    func portForwardReview() async throws {
        let running = try await Fixture.shared.start()
        let body = Data("held port\n".utf8)
        let server = try Self.heldPortServer(body: body)

        let (first, firstLocal) = try await Self.startPortForward(minor: "1.33", ports: [server.port])
        defer { first.stop() }
        _ = try? await LoopbackClient.httpGet(port: try #require(firstLocal[server.port]))
        // kubectl ends its session at a refused connection (since 1.23), after printing why.
        #expect(try await first.waitForExit(timeout: .seconds(30)) != 0)
        let name = try #require(
            first.transcript.firstMatch(of: /approval requested as AccessRequest (ar-[a-z0-9]+)/)?.1,
            "\(first.transcript)"
        ).description
        #expect(first.transcript.contains("ports 1024-1099 need an approval"), "\(first.transcript)")
        #expect(first.transcript.contains("kubectl portcullis approve -n \(running.approvalsNamespace) \(name)"))
        #expect(server.acceptedConnections == 0, "nothing reached the pod before the approval")
        first.stop()

        let approved = try await Self.portcullis([
            "approve", "-n", running.approvalsNamespace, name, "--kubeconfig", try running.kubeconfig(.bob).path,
        ])
        #expect(approved.exitCode == 0, "\(approved.standardError)")

        let (second, secondLocal) = try await Self.startPortForward(minor: "1.33", ports: [server.port])
        defer { second.stop() }
        #expect(try await LoopbackClient.httpGet(port: try #require(secondLocal[server.port])) == body)
        let lines = try await Self.connectionAudit(running, port: server.port, count: 2)
        let annotations = lines.compactMap { $0["annotations"] as? [String: String] }
        #expect(annotations.first?["portcullis.dev/close-reason"] == "denied")
        #expect(annotations.last?["portcullis.dev/decision"] == "Review")
        #expect(annotations.last?["portcullis.dev/close-reason"] == "completed")
        #expect(annotations.last?["portcullis.dev/approved"] == "\(running.approvalsNamespace)/\(name) by bob")
    }
}
