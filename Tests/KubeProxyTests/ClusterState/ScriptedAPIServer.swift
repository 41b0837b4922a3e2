import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

@testable import KubeProxy

/// A TLS HTTP/1.1 server that answers each request as a script says: for the failures a real
/// apiserver cannot be made to produce on demand (an expired watch, a connection dropped
/// mid-stream, a watch that goes silent).
final class ScriptedAPIServer: Sendable {
    enum Reply: Sendable {
        case json(status: Int, body: String)
        /// A chunked 200 carrying one watch event per line, then the given ending.
        case stream(lines: [String], then: Ending)
    }

    enum Ending: Sendable {
        case finish
        /// Ends the response normally after a while, as the apiserver does at `timeoutSeconds`.
        case finishAfter(TimeAmount)
        case drop
        case hang
    }

    /// Every request's URI, in arrival order; shared with the connections' handlers.
    final class RequestLog: Sendable {
        let uris = Mutex<[String]>([])
    }

    /// One request as the script sees it: a list or a watch, and how many of that kind came before
    /// (so a script does not depend on how the two interleave under load).
    struct Request: Sendable {
        var uri: String
        var isWatch: Bool
        var index: Int
    }

    let port: Int
    let upstream: UpstreamConfiguration
    private let log: RequestLog
    private let channel: any Channel

    private init(port: Int, channel: any Channel, upstream: UpstreamConfiguration, log: RequestLog) {
        self.port = port
        self.channel = channel
        self.upstream = upstream
        self.log = log
    }

    /// Starts the server; `script` answers each request.
    static func start(script: @escaping @Sendable (Request) -> Reply) async throws -> ScriptedAPIServer {
        let authority = try TestCertificateAuthority()
        let (certificatePEM, keyPEM) = try authority.issueServerCertificate()
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMBytes(Array(certificatePEM.utf8)).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(keyPEM.utf8), format: .pem)))
        tls.applicationProtocols = ["http/1.1"]
        let context = try NIOSSLContext(configuration: tls)
        let log = RequestLog()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(NIOSSLServerHandler(context: context))
                    try sync.addHandler(ByteToMessageHandler(HTTPRequestDecoder()))
                    try sync.addHandler(HTTPResponseEncoder())
                    try sync.addHandler(Responder(script: script, log: log))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress?.port ?? 0
        let upstream = UpstreamConfiguration(
            host: "127.0.0.1", port: port, serverName: "localhost",
            trustRoots: [try NIOSSLCertificate(bytes: Array(try authority.certificatePEM.utf8), format: .pem)],
            credential: .token("watcher-credential"))
        return ScriptedAPIServer(port: port, channel: channel, upstream: upstream, log: log)
    }

    /// The URIs requested so far.
    var requests: [String] { log.uris.withLock { $0 } }

    func close() async throws { try await channel.close() }

    private final class Responder: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let script: @Sendable (Request) -> Reply
        let log: RequestLog
        private var uri = ""

        init(script: @escaping @Sendable (Request) -> Reply, log: RequestLog) {
            self.script = script
            self.log = log
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                uri = head.uri
            case .body:
                break
            case .end:
                let isWatch = uri.contains("watch=1")
                let index = log.uris.withLock {
                    let earlier = $0.filter { $0.contains("watch=1") == isWatch }.count
                    $0.append(uri)
                    return earlier
                }
                reply(script(Request(uri: uri, isWatch: isWatch, index: index)), context: context)
            }
        }

        private func reply(_ reply: Reply, context: ChannelHandlerContext) {
            switch reply {
            case .json(let status, let text):
                let body = ByteBuffer(string: text)
                let head = HTTPResponseHead(
                    version: .http1_1, status: .init(statusCode: status),
                    headers: HTTPHeaders([
                        ("Content-Type", "application/json"), ("Content-Length", String(body.readableBytes)),
                    ]))
                context.write(wrapOutboundOut(.head(head)), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            case .stream(let lines, let ending):
                let head = HTTPResponseHead(
                    version: .http1_1, status: .ok,
                    headers: HTTPHeaders([("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")]))
                context.write(wrapOutboundOut(.head(head)), promise: nil)
                for line in lines {
                    context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: line + "\n")))), promise: nil)
                }
                context.flush()
                switch ending {
                case .finish: context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
                case .finishAfter(let delay):
                    context.eventLoop.assumeIsolated().scheduleTask(in: delay) {
                        context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
                    }
                case .drop: context.close(promise: nil)
                case .hang: break
                }
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}
