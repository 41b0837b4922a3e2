import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import SPDY
import Sandbox
import Synchronization
import TestSupport
import Testing

/// This module's clients through the real kube-apiserver 1.20 of the test cluster to the node agent,
/// which serves exec and port-forward with Kubernetes' own kubelet streaming code (protocols.md §2–§5).
///
/// The 1.20 apiserver passes every upgrade through to the kubelet: SPDY offers of v5..v1 get v4, the
/// legacy WebSocket protocols (v4 exec, `?ports=` port-forward) are served by the kubelet itself, and
/// WebSocket v5 and the port-forward tunnel, which only a newer apiserver serves, are refused with a
/// typed rejection, so callers fall back to SPDY.
@Suite(
    "This module's clients against the real apiserver and kubelet streaming server", .serialized,
    .timeLimit(.minutes(5)))
struct RealServerInteropTests {
    @Test("SPDY exec negotiates v4, keeps stdout and stderr apart and reports exit code 3")
    func spdyExec() async throws {
        let api = try await RealAPIServer.shared()
        let (exec, version) = try await api.execSPDY(
            ["sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 3"], RemoteCommandOptions())
        #expect(version == "v4.channel.k8s.io")
        let (stdout, stderr, status) = try await Self.outcome(exec)
        #expect(stdout == "to-stdout\n")
        #expect(stderr == "to-stderr\n")
        #expect(status == .exitCode(3, message: "command terminated with non-zero exit code: exit status 3"))
        await exec.close()
    }

    @Test("SPDY exec pipes 1 MiB of stdin to wc -c and its close ends the command")
    func spdyStdin() async throws {
        let api = try await RealAPIServer.shared()
        let (exec, _) = try await api.execSPDY(["wc", "-c"], RemoteCommandOptions(stdin: true))
        let input = ByteBuffer(bytes: pseudoRandomData(count: 1 << 20, seed: 11))
        async let outcome = Self.outcome(exec)
        try await exec.writeStdin(input)
        try await exec.closeStdin()
        let (stdout, stderr, status) = try await outcome
        #expect(stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "1048576", "\(stderr)")
        #expect(status == .success)
        await exec.close()
    }

    @Test("SPDY exec with a terminal gets the size sent and follows a resize")
    func spdyTerminal() async throws {
        let api = try await RealAPIServer.shared()
        let (exec, _) = try await api.execSPDY(["sh"], RemoteCommandOptions(stdin: true, stdout: true, tty: true))
        try await Self.driveTerminal(exec)
    }

    @Test("SPDY port-forward carries an HTTP exchange and 16 MiB byte for byte on two concurrent connections")
    func spdyPortForward() async throws {
        let api = try await RealAPIServer.shared()
        let small = try LoopbackServer(.http(body: Data("hello from the pod\n".utf8)))
        let body = pseudoRandomData(count: 16 << 20, seed: 23)
        let large = try LoopbackServer(.http(body: body))
        let (ports, version) = try await api.portForwardSPDY()
        #expect(version == PortForwardProtocol.version)
        async let smallAnswer = Self.httpGet(ports, port: small.port)
        async let largeAnswer = Self.httpGet(ports, port: large.port)
        #expect(try await smallAnswer == Data("hello from the pod\n".utf8))
        #expect(try await largeAnswer == body)
        await ports.close()
    }

    @Test("SPDY port-forward to a closed port yields the kubelet's error text")
    func spdyPortForwardClosedPort() async throws {
        let api = try await RealAPIServer.shared()
        let port = try await Self.closedPort()
        let (ports, _) = try await api.portForwardSPDY()
        let connection = try await ports.connect(port: UInt16(port))
        let message = try #require(try await connection.errorMessage())
        #expect(message.hasPrefix("error forwarding port \(port) to pod dev/web"), "\(message)")
        #expect(message.contains("connection refused"), "\(message)")
        await ports.close()
    }
}

extension RealServerInteropTests {
    @Test("WebSocket v5 exec is refused with 403 and an empty body, and the SPDY fallback runs it")
    func webSocketV5Fallback() async throws {
        let api = try await RealAPIServer.shared()
        let command = ["sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 3"]
        let rejection = await #expect(throws: WebSocketUpgradeRejection.self) {
            _ = try await api.execWebSocket(command, RemoteCommandOptions())
        }
        #expect(rejection?.reason == .status)
        #expect(rejection?.status == .forbidden, "\(String(describing: rejection))")
        #expect(rejection?.body.readableBytes == 0)
        let (exec, transport) = try await api.execWithFallback(command, RemoteCommandOptions())
        #expect(transport == "SPDY v4.channel.k8s.io")
        let (stdout, stderr, status) = try await Self.outcome(exec)
        #expect(stdout == "to-stdout\n" && stderr == "to-stderr\n")
        #expect(status == .exited(3))
        await exec.close()
    }

    @Test("WebSocket v4 exec, served by the kubelet itself: offered after v5 it is chosen, exit code 3")
    func webSocketV4Exec() async throws {
        let api = try await RealAPIServer.shared()
        let exec = try await api.execWebSocket(
            ["sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 3"], RemoteCommandOptions(),
            protocols: ["v5.channel.k8s.io", "v4.channel.k8s.io"])
        #expect(exec.protocolVersion == .v4)
        let (stdout, stderr, status) = try await Self.outcome(exec)
        #expect(stdout == "to-stdout\n")
        #expect(stderr == "to-stderr\n")
        #expect(status == .exited(3))
        await exec.close()
    }

    @Test("WebSocket v4 exec takes stdin and keeps a 200 ms heartbeat alive on the kubelet's pongs")
    func webSocketV4Stdin() async throws {
        let api = try await RealAPIServer.shared()
        // A pong timeout of 1 s against a 2 s command: only the server's pongs keep the connection.
        let heartbeat = WebSocketClientConfiguration(pingInterval: .milliseconds(200), pongTimeout: .seconds(1))
        let exec = try await api.execWebSocket(
            ["sh", "-c", "read line; sleep 2; echo \"got $line\"; echo to-stderr >&2; exit 3"],
            RemoteCommandOptions(stdin: true), protocols: ["v4.channel.k8s.io"], configuration: heartbeat)
        #expect(exec.protocolVersion == .v4)
        // v4 cannot close stdin (§4.3): the command reads one line instead of waiting for EOF.
        try await exec.writeStdin(ByteBuffer(string: "hello kubelet\n"))
        let (stdout, stderr, status) = try await Self.outcome(exec)
        #expect(stdout == "got hello kubelet\n")
        #expect(stderr == "to-stderr\n")
        #expect(status == .exited(3))
        await exec.close()
    }

    @Test("WebSocket v4 exec with a terminal follows a resize on channel 4")
    func webSocketV4Terminal() async throws {
        let api = try await RealAPIServer.shared()
        let exec = try await api.execWebSocket(
            ["sh"], RemoteCommandOptions(stdin: true, stdout: true, tty: true), protocols: ["v4.channel.k8s.io"])
        try await Self.driveTerminal(exec)
    }

    @Test("the port-forward tunnel is refused with the kubelet's 400, and the SPDY fallback forwards")
    func tunnelFallback() async throws {
        let api = try await RealAPIServer.shared()
        let pod = try LoopbackServer(.http(body: Data("tunnel fallback\n".utf8)))
        let rejection = await #expect(throws: WebSocketUpgradeRejection.self) {
            _ = try await PortForwardTunnelClient.connect(
                channel: try await api.connect(), uri: api.portForwardURI, headers: api.headers)
        }
        // The kubelet takes any WebSocket port-forward for the legacy protocol, which needs `?ports=`.
        #expect(rejection?.reason == .status)
        #expect(rejection?.status == .badRequest, "\(String(describing: rejection))")
        #expect(rejection?.message == "query parameter \"port\" is required\n")
        let (ports, _) = try await api.portForwardSPDY()
        #expect(try await Self.httpGet(ports, port: pod.port) == Data("tunnel fallback\n".utf8))
        await ports.close()
    }
}

extension RealServerInteropTests {
    @Test("legacy WebSocket port-forward, served by the kubelet: an HTTP exchange and 4 MiB byte for byte")
    func webSocketPortForward() async throws {
        let api = try await RealAPIServer.shared()
        let small = try LoopbackServer(.http(body: Data("hello over websocket\n".utf8)))
        let body = pseudoRandomData(count: 4 << 20, seed: 29)
        let large = try LoopbackServer(.http(body: body))
        let ports = try await WebSocketPortForwardClient.connect(
            channel: try await api.connect(), uri: api.portForwardURI, headers: api.headers,
            ports: [UInt16(small.port), UInt16(large.port)])
        #expect(ports.protocolName == "v4.channel.k8s.io")
        #expect(ports.connections.map(\.port) == [UInt16(small.port), UInt16(large.port)])
        async let smallAnswer = Self.httpGet(ports.connections[0])
        async let largeAnswer = Self.httpGet(ports.connections[1])
        #expect(try await smallAnswer == Data("hello over websocket\n".utf8))
        #expect(try await largeAnswer == body)
        await ports.close()
    }

    @Test("legacy WebSocket port-forward to a closed port yields the kubelet's error text on the odd channel")
    func webSocketPortForwardClosedPort() async throws {
        let api = try await RealAPIServer.shared()
        let port = try await Self.closedPort()
        let ports = try await WebSocketPortForwardClient.connect(
            channel: try await api.connect(), uri: api.portForwardURI, headers: api.headers, ports: [UInt16(port)])
        let message = try #require(try await ports.connections[0].errorMessage())
        #expect(message.hasPrefix("error forwarding port \(port) to pod dev/web"), "\(message)")
        #expect(message.contains("connection refused"), "\(message)")
        #expect(try await ports.connections[0].inbound.collect(upTo: 100).readableBytes == 0)
        await ports.close()
    }
}

extension RealServerInteropTests {
    /// Reads stdout and stderr to their ends, then the status.
    static func outcome(
        _ exec: RemoteCommandClientSession
    ) async throws -> (stdout: String, stderr: String, status: RemoteCommandStatus) {
        async let stdout = exec.stdout?.collect(upTo: 1 << 20)
        async let stderr = exec.stderr?.collect(upTo: 1 << 20)
        let out = try await stdout.map { String(buffer: $0) } ?? ""
        let err = try await stderr.map { String(buffer: $0) } ?? ""
        return (out, err, try await exec.status())
    }

    /// Sends a size, checks `stty size` sees it, resizes, checks again, and exits with 5.
    static func driveTerminal(_ exec: RemoteCommandClientSession) async throws {
        let transcript = Transcript()
        let reader = Task {
            for try await chunk in exec.stdout! { transcript.append(String(buffer: chunk)) }
        }
        for (size, expected) in [
            (TerminalSize(width: 80, height: 24), "24 80"), (TerminalSize(width: 111, height: 33), "33 111"),
        ] {
            try await exec.resize(to: size)
            // The resize and stdin streams are served by different goroutines: ask until the size shows.
            var seen = false
            for _ in 0..<20 where !seen {
                try await exec.writeStdin(ByteBuffer(string: "stty size\n"))
                seen = try await transcript.waitFor(expected, timeout: .milliseconds(500))
            }
            #expect(seen, "\(transcript.text)")
        }
        try await exec.writeStdin(ByteBuffer(string: "exit 5\n"))
        try await reader.value
        #expect(try await exec.status() == .exited(5), "\(transcript.text)")
        await exec.close()
    }

    /// Sends a GET on a new forwarded connection and returns the response body.
    static func httpGet(_ ports: PortForwardClientSession, port: Int) async throws -> Data {
        try await httpGet(try await ports.connect(port: UInt16(port)))
    }

    /// Sends a GET on a forwarded connection and returns the response body; the server closes after it.
    static func httpGet(_ connection: PortForwardClientConnection) async throws -> Data {
        async let response = connection.inbound.collect(upTo: 64 << 20)
        try await connection.write(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: pod\r\n\r\n"))
        let bytes = Data(try await response.readableBytesView)
        #expect(try await connection.errorMessage() == nil)
        let separator = try #require(bytes.range(of: Data("\r\n\r\n".utf8)))
        #expect(bytes[..<separator.lowerBound].starts(with: Data("HTTP/1.1 200 OK".utf8)))
        return Data(bytes[separator.upperBound...])
    }

    /// A loopback port nothing listens on, below Linux's ephemeral range (32768–60999): a port
    /// from `bind(0)` could be handed to a concurrent test's server, or become an outgoing
    /// connection's source port, before the kubelet dials it.
    static func closedPort() async throws -> Int {
        for _ in 0..<100 {
            let port = Int.random(in: 20000..<32000)
            guard
                let listener = try? await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                    .bind(host: "127.0.0.1", port: port).get()
            else { continue }
            try await listener.close()
            return port
        }
        throw TestSupportError("no free loopback port below the ephemeral range")
    }
}

/// The test cluster's apiserver, reached over TLS (trusting the cluster CA) with the admin token.
struct RealAPIServer {
    let cluster: ClusterDescription
    let tls: NIOSSLContext

    static func shared() async throws -> RealAPIServer {
        let cluster = try await TestCluster.shared()
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .file(cluster.caFile.path)
        // Every upgrade is HTTP/1.1 (§7.4 item 15).
        configuration.applicationProtocols = ["http/1.1"]
        return RealAPIServer(cluster: cluster, tls: try NIOSSLContext(configuration: configuration))
    }

    var headers: HTTPHeaders {
        ["Host": "127.0.0.1:\(cluster.apiserverPort)", "Authorization": "Bearer \(cluster.token(for: .admin))"]
    }

    let portForwardURI = "/api/v1/namespaces/dev/pods/web/portforward"

    /// A new TLS connection; the certificate is checked against the CA and the address 127.0.0.1.
    func connect() async throws -> any Channel {
        let tls = self.tls
        return try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        NIOSSLClientHandler(context: tls, serverHostname: nil))
                }
            }
            .connect(host: "127.0.0.1", port: cluster.apiserverPort).get()
    }

    /// `…/pods/web/exec` in namespace `dev`, container `app`, with the canonical flags (§6).
    static func execURI(_ command: [String], _ options: RemoteCommandOptions) -> String {
        let allowed = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
        let flags = options.canonicalQueryItems.map { ($0.name, $0.value) }
        let items = command.map { ("command", $0) } + [("container", "app")] + flags
        return "/api/v1/namespaces/dev/pods/web/exec?"
            + items.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed)!)" }
            .joined(separator: "&")
    }

    func spdy(_ uri: String, versions: [String]) async throws -> (SPDYSession, String?) {
        switch try await SPDYClientHandshake.upgrade(
            channel: try await connect(), uri: uri, headers: headers, protocolVersions: versions)
        {
        case .upgraded(let session, let version):
            return (session, version)
        case .rejected(let head, let body):
            throw SPDYError(.upgradeRejected, "\(head.status): \(String(buffer: body))")
        }
    }

    /// Exec over SPDY offering v5..v1, as kubectl ≥ 1.29 does.
    func execSPDY(
        _ command: [String], _ options: RemoteCommandOptions
    ) async throws -> (RemoteCommandClientSession, String?) {
        let (session, version) = try await spdy(
            Self.execURI(command, options), versions: RemoteCommandProtocol.all.map(\.rawValue))
        return (
            try await RemoteCommandSPDYClient.start(session: session, protocolVersion: version, options: options),
            version
        )
    }

    func execWebSocket(
        _ command: [String], _ options: RemoteCommandOptions,
        protocols: [String] = RemoteCommandWebSocketClient.defaultProtocols,
        configuration: WebSocketClientConfiguration = WebSocketClientConfiguration()
    ) async throws -> RemoteCommandClientSession {
        try await RemoteCommandWebSocketClient.start(
            channel: try await connect(), uri: Self.execURI(command, options), headers: headers, options: options,
            protocols: protocols, configuration: configuration)
    }

    /// What client-go's fallback executor does: WebSocket v5 first, SPDY on a new connection after an
    /// upgrade failure (§4.6). Returns the session and which transport carried it.
    func execWithFallback(
        _ command: [String], _ options: RemoteCommandOptions
    ) async throws -> (RemoteCommandClientSession, String) {
        do {
            return (try await execWebSocket(command, options), "WebSocket v5.channel.k8s.io")
        } catch is WebSocketUpgradeRejection {
            let (session, version) = try await execSPDY(command, options)
            return (session, "SPDY \(version ?? "none")")
        }
    }

    func portForwardSPDY() async throws -> (PortForwardClientSession, String?) {
        let (session, version) = try await spdy(portForwardURI, versions: [PortForwardProtocol.version])
        return (PortForwardClientSession(session: session), version)
    }
}

/// Terminal output collected from any task.
final class Transcript: Sendable {
    private let storage = Mutex("")

    func append(_ text: String) { storage.withLock { $0 += text } }
    var text: String { storage.withLock { $0 } }

    /// Whether `needle` shows up within `timeout`.
    func waitFor(_ needle: String, timeout: Duration) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if text.contains(needle) { return true }
            try await Task.sleep(for: .milliseconds(20))
        }
        return text.contains(needle)
    }
}
