import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// A real HTTPS server on 127.0.0.1 that plays an OpenID provider: it serves the discovery document
/// and the JWKS, and the test can change what it serves (rotate keys, lie about the issuer, fail).
final class TestOIDCServer: Sendable {
    struct State: Sendable {
        /// The `issuer` the discovery document claims; nil: the real issuer URL.
        var discoveryIssuer: String?
        var jwks: [UInt8] = TestKeys.jwks([])
        var jwksStatus = 200
        var discoveryStatus = 200
        var discoveryRequests = 0
        var jwksRequests = 0
    }

    let ca: TestCertificateAuthority
    let caPEM: String
    private let channel: any Channel
    private let state: TestLockedBox<State>

    var port: Int { channel.localAddress?.port ?? 0 }
    var issuerURL: String { "https://127.0.0.1:\(port)" }

    private init(ca: TestCertificateAuthority, caPEM: String, channel: any Channel, state: TestLockedBox<State>) {
        self.ca = ca
        self.caPEM = caPEM
        self.channel = channel
        self.state = state
    }

    static func start() async throws -> TestOIDCServer {
        let ca = try TestCertificateAuthority()
        let (certificatePEM, keyPEM) = try ca.issueServerCertificate()
        let tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: [.certificate(try NIOSSLCertificate(bytes: Array(certificatePEM.utf8), format: .pem))],
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(keyPEM.utf8), format: .pem)))
        let context = try NIOSSLContext(configuration: tls)
        let state = TestLockedBox(State())
        let portBox = TestLockedBox(0)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(
                        OIDCTestHandler(state: state, issuer: { "https://127.0.0.1:\(portBox.value)" }))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        portBox.update { $0 = channel.localAddress?.port ?? 0 }
        return TestOIDCServer(ca: ca, caPEM: try ca.certificatePEM, channel: channel, state: state)
    }

    func update(_ body: (inout State) -> Void) {
        state.update(body)
    }

    var current: State { state.value }

    func stop() async {
        try? await channel.close()
    }
}

/// Runs `body` with a fresh server, and stops it afterwards.
func withOIDCServer<T>(_ body: (TestOIDCServer) async throws -> T) async throws -> T {
    let server = try await TestOIDCServer.start()
    do {
        let result = try await body(server)
        await server.stop()
        return result
    } catch {
        await server.stop()
        throw error
    }
}

private final class OIDCTestHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let state: TestLockedBox<TestOIDCServer.State>
    private let issuer: @Sendable () -> String
    private var path = ""

    init(state: TestLockedBox<TestOIDCServer.State>, issuer: @escaping @Sendable () -> String) {
        self.state = state
        self.issuer = issuer
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): path = head.uri
        case .body: break
        case .end: respond(context: context)
        }
    }

    private func respond(context: ChannelHandlerContext) {
        let issuer = issuer()
        let (status, body): (Int, [UInt8]) = state.update { state in
            switch path {
            case "/.well-known/openid-configuration":
                state.discoveryRequests += 1
                let document: [String: Any] = [
                    "issuer": state.discoveryIssuer ?? issuer, "jwks_uri": issuer + "/keys",
                    "id_token_signing_alg_values_supported": ["RS256", "ES256"],
                ]
                return (state.discoveryStatus, TestJWT.json(document))
            case "/keys":
                state.jwksRequests += 1
                return (state.jwksStatus, state.jwks)
            default:
                return (404, Array("not found".utf8))
            }
        }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Content-Length", value: String(body.count))
        let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}
