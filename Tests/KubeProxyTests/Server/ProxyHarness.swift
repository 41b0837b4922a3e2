import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Policy
import Synchronization

@testable import KubeProxy

/// The proxy in-process in front of a recording upstream, both on loopback with TLS, and a client
/// that speaks raw bytes: for what real clients never send.
final class ProxyHarness: Sendable {
    let proxyPort: Int
    let upstream: RecordingUpstream
    let caCertificate: NIOSSLCertificate
    /// The upstream as the proxy reaches it.
    let upstreamConfiguration: UpstreamConfiguration
    private let server: ProxyServer

    /// Tokens the proxy accepts, and who they are.
    static let users: [String: RequestAttributes.UserInfo] = [
        "alice-token": .init(name: "alice", groups: ["developers"]),
        "bob-token": .init(name: "bob", groups: ["sre"]),
    ]

    init(
        policies: String, approvals: (any ApprovalStore)? = nil, idleTimeout: Duration = .seconds(90),
        keepAliveTimeout: Duration = .seconds(15)
    ) async throws {
        let authority = try TestCertificateAuthority()
        let (certificatePEM, keyPEM) = try authority.issueServerCertificate()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "portcullis-harness-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let certificateFile = directory.appendingPathComponent("tls.crt")
        let keyFile = directory.appendingPathComponent("tls.key")
        try certificatePEM.write(to: certificateFile, atomically: true, encoding: .utf8)
        try keyPEM.write(to: keyFile, atomically: true, encoding: .utf8)
        caCertificate = try NIOSSLCertificate(bytes: Array(try authority.certificatePEM.utf8), format: .pem)

        var upstreamTLS = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(certificateFile.path).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: keyFile.path, format: .pem)))
        upstreamTLS.applicationProtocols = ["http/1.1"]
        upstream = try await RecordingUpstream.start(tls: try NIOSSLContext(configuration: upstreamTLS))

        let engine = PolicyEngine(
            policies: try PolicyCompiler.compile(try PolicyLoader.parse(policies, file: "harness.yaml")))
        let users = Self.users
        upstreamConfiguration = UpstreamConfiguration(
            host: "127.0.0.1", port: upstream.port, serverName: "localhost", trustRoots: [caCertificate],
            credential: .token("proxy-credential"))
        server = try ProxyServer(
            configuration: .init(
                host: "127.0.0.1", port: 0, certificateChainFile: certificateFile.path,
                privateKeyFile: keyFile.path, idleTimeout: idleTimeout, keepAliveTimeout: keepAliveTimeout),
            upstream: upstreamConfiguration,
            policies: PolicyStore(engine),
            authenticate: CallerAuthenticator { token, _ in
                guard let token else { return .anonymous }
                guard let user = users[token] else { return .rejected(detail: "unknown token") }
                return .authenticated(user, method: "test")
            },
            approvals: approvals, audit: try AuditLog(path: nil))
        proxyPort = try await server.start()
    }

    func shutdown() async throws {
        try await server.shutdown()
        try await upstream.close()
    }

    /// What a raw exchange produced.
    struct Exchange: Sendable {
        var response: String
        /// Whether the proxy closed the connection (rather than the client timing out).
        var closedByProxy: Bool
        /// From the request's write to the proxy's close (or to the end of the wait).
        var elapsed: Duration
        /// The longest time between two pieces' writes (zero for one piece): more than asked for
        /// when the test's tasks were kept waiting.
        var longestPause: Duration = .zero

        /// The status codes of the responses, in order.
        var codes: [Int] {
            response.matches(of: #/HTTP\/1\.1 (\d{3}) /#).compactMap { Int($0.1) }
        }
    }

    /// Sends `bytes` over TLS and reads until the proxy closes the connection or `wait` passes.
    func send(_ bytes: String, wait: Duration = .seconds(2)) async throws -> Exchange {
        try await send(pieces: [bytes], pause: .zero, wait: wait)
    }

    /// Sends `pieces` on one connection, `pause` apart; `elapsed` counts from the last.
    func send(pieces: [String], pause: Duration, wait: Duration = .seconds(2)) async throws -> Exchange {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates([caCertificate])
        tls.applicationProtocols = ["http/1.1"]
        let context = try NIOSSLContext(configuration: tls)
        let collector = Collector()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        try NIOSSLClientHandler(context: context, serverHostname: "localhost"))
                    try channel.pipeline.syncOperations.addHandler(collector)
                }
            }
            .connect(host: "127.0.0.1", port: proxyPort).get()
        var start = ContinuousClock.now
        var longestPause = Duration.zero
        do {
            for (index, piece) in pieces.enumerated() {
                if index > 0 { try await Task.sleep(for: pause) }
                if index > 0 { longestPause = max(longestPause, start.duration(to: .now)) }
                start = .now
                try await channel.writeAndFlush(ByteBuffer(string: piece))
            }
        } catch  where collector.closed.withLock({ $0 }) {
            // The proxy closed the connection first (an idle timeout during a slow handshake):
            // nothing was sent, which the exchange shows.
        }
        let deadline = ContinuousClock.now.advanced(by: wait)
        while !collector.closed.withLock({ $0 }), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        let closed = collector.closed.withLock { $0 }
        let elapsed = start.duration(to: .now)
        if !closed { try? await channel.close() }
        return Exchange(
            response: collector.received.withLock { String(decoding: $0, as: UTF8.self) }, closedByProxy: closed,
            elapsed: elapsed, longestPause: longestPause)
    }

    private final class Collector: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let received = Mutex<[UInt8]>([])
        let closed = Mutex(false)

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            received.withLock { $0.append(contentsOf: buffer.readableBytesView) }
        }

        func channelInactive(context: ChannelHandlerContext) {
            closed.withLock { $0 = true }
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)  // e.g. the TLS close_notify missing: the connection is over either way
        }
    }
}

/// A TLS HTTP/1.1 server standing in for an apiserver without Portcullis's CRDs: answers 404 under
/// `/apis/portcullis.dev` and 200 to everything else, and records what it parsed and the raw
/// bytes it received.
final class RecordingUpstream: Sendable {
    struct Request: Sendable {
        var method: String
        var uri: String
        var headers: [(String, String)]
        var body: String
    }

    let port: Int
    let requests = Mutex<[Request]>([])
    let raw = Mutex<[UInt8]>([])
    private let channel: any Channel

    private init(port: Int, channel: any Channel) {
        self.port = port
        self.channel = channel
    }

    static func start(tls: NIOSSLContext) async throws -> RecordingUpstream {
        let box = Mutex<RecordingUpstream?>(nil)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard let recorder = box.withLock({ $0 }) else { throw ChannelError.ioOnClosedChannel }
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(NIOSSLServerHandler(context: tls))
                    try sync.addHandler(RawTap(upstream: recorder))
                    try sync.addHandler(ByteToMessageHandler(HTTPRequestDecoder()))
                    try sync.addHandler(HTTPResponseEncoder())
                    try sync.addHandler(Responder(upstream: recorder))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let upstream = RecordingUpstream(port: channel.localAddress?.port ?? 0, channel: channel)
        box.withLock { $0 = upstream }
        return upstream
    }

    func close() async throws { try await channel.close() }

    /// The raw bytes received, as text.
    var rawText: String { raw.withLock { String(decoding: $0, as: UTF8.self) } }

    private final class RawTap: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        typealias InboundOut = ByteBuffer
        let upstream: RecordingUpstream
        init(upstream: RecordingUpstream) { self.upstream = upstream }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            upstream.raw.withLock { $0.append(contentsOf: buffer.readableBytesView) }
            context.fireChannelRead(data)
        }
    }

    private final class Responder: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let upstream: RecordingUpstream
        private var current: Request?
        private var answered = 0
        init(upstream: RecordingUpstream) { self.upstream = upstream }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                current = Request(
                    method: head.method.rawValue, uri: head.uri, headers: head.headers.map { ($0.name, $0.value) },
                    body: "")
            case .body(let buffer):
                current?.body += String(buffer: buffer)
            case .end:
                if let current { upstream.requests.withLock { $0.append(current) } }
                // An exec on a connection that has served before is dropped unanswered, as by an
                // apiserver closing an idle connection just as the request came; on a new one it is
                // refused (403), an answer the proxy passes on.
                if current?.uri.contains("/exec?") == true {
                    current = nil
                    if answered > 0 {
                        context.close(promise: nil)
                    } else {
                        respond(
                            context, status: .forbidden, body: #"{"kind":"Status","code":403,"reason":"Forbidden"}"#)
                    }
                    return
                }
                // `?slow` answers after 10 s: a response the proxy must wait for, past its idle timeout.
                if current?.uri.contains("?slow") == true {
                    current = nil
                    context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(10)) {
                        self.respond(context, missing: false)
                    }
                    return
                }
                // Like an apiserver without Portcullis's CRDs installed.
                respond(context, missing: current?.uri.hasPrefix("/apis/portcullis.dev") ?? false)
                current = nil
            }
        }

        private func respond(_ context: ChannelHandlerContext, missing: Bool) {
            respond(
                context, status: missing ? .notFound : .ok,
                body: missing
                    ? #"{"kind":"Status","apiVersion":"v1","status":"Failure","code":404}"#
                    : #"{"kind":"Status","apiVersion":"v1","status":"Success"}"#)
        }

        private func respond(_ context: ChannelHandlerContext, status: HTTPResponseStatus, body text: String) {
            answered += 1
            let body = ByteBuffer(string: text)
            let head = HTTPResponseHead(
                version: .http1_1, status: status,
                headers: HTTPHeaders([
                    ("Content-Type", "application/json"), ("Content-Length", String(body.readableBytes)),
                ]))
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}
