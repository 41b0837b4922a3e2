import NIOCore
import NIOHTTP1

/// The client side of `Upgrade: SPDY/3.1` for NIO's `NIOHTTPClientUpgradeHandler` (protocols.md §2).
///
/// It offers ``protocolVersions`` in preference order, accepts a 101 whose `Connection` contains
/// "upgrade" (NIO checks `Upgrade`), and swaps the HTTP handlers for a client ``SPDYSession``.
/// ``SPDYClientHandshake/upgrade(channel:method:uri:headers:protocolVersions:configuration:)`` does
/// the whole exchange.
public struct SPDYClientUpgrader: NIOHTTPClientProtocolUpgrader, Sendable {
    public typealias UpgradeHandler = @Sendable (_ session: SPDYSession, _ response: HTTPResponseHead) -> Void

    public let supportedProtocol = SPDYHandshake.upgradeToken
    public let requiredUpgradeHeaders: [String] = []
    public let protocolVersions: [String]
    private let configuration: SPDYSessionConfiguration
    private let onUpgrade: UpgradeHandler

    /// - Parameters:
    ///   - protocolVersions: offered in this order, e.g. `v4.channel.k8s.io` first.
    ///   - configuration: the session's settings; its role is forced to ``SPDYRole/client``.
    ///   - onUpgrade: receives the session on the channel's event loop.
    public init(
        protocolVersions: [String],
        configuration: SPDYSessionConfiguration = SPDYSessionConfiguration(role: .client, pingInterval: .seconds(5)),
        onUpgrade: @escaping UpgradeHandler
    ) {
        self.protocolVersions = protocolVersions
        var configuration = configuration
        configuration.role = .client
        self.configuration = configuration
        self.onUpgrade = onUpgrade
    }

    public func addCustom(upgradeRequestHeaders: inout HTTPHeaders) {
        for version in protocolVersions {
            upgradeRequestHeaders.add(name: SPDYHandshake.protocolVersionHeader, value: version)
        }
    }

    public func shouldAllowUpgrade(upgradeResponse: HTTPResponseHead) -> Bool {
        upgradeResponse.status == .switchingProtocols
            && upgradeResponse.headers["Connection"].contains { $0.lowercased().contains("upgrade") }
    }

    public func upgrade(context: ChannelHandlerContext, upgradeResponse: HTTPResponseHead) -> EventLoopFuture<Void> {
        do {
            let session = try context.pipeline.syncOperations.addSPDYSessionHandlers(
                configuration: configuration, position: .after(context.handler))
            onUpgrade(session, upgradeResponse)
            return context.eventLoop.makeSucceededVoidFuture()
        } catch {
            return context.eventLoop.makeFailedFuture(error)
        }
    }
}

/// What the server answered to a SPDY upgrade request.
public enum SPDYClientUpgradeResult: Sendable {
    /// 101: the session, and the subprotocol the server chose (`nil` if it named none, which
    /// client-go treats as `channel.k8s.io`, §2).
    case upgraded(SPDYSession, protocolVersion: String?)
    /// Anything else: the response and its body (at most ``SPDYClientHandshake/maxRejectionBody`` bytes),
    /// e.g. a Kubernetes `Status` to show the user.
    case rejected(HTTPResponseHead, body: ByteBuffer)
}

/// Performs a SPDY upgrade on a connected channel (plain or with TLS already in the pipeline).
public enum SPDYClientHandshake {
    /// The most bytes of a refusal's body that are kept.
    public static let maxRejectionBody = 64 << 10

    /// Adds the HTTP/1.1 client handlers, sends the upgrade request and waits for the answer.
    ///
    /// - Parameters:
    ///   - method: Kubernetes clients use POST; the apiserver also takes GET (§2).
    ///   - uri: the request target, e.g. `/api/v1/namespaces/ns/pods/p/exec?command=sh&stdin=true`.
    ///   - headers: must include `Host`; `Connection`, `Upgrade` and the protocol versions are added.
    public static func upgrade(
        channel: any Channel,
        method: HTTPMethod = .POST,
        uri: String,
        headers: HTTPHeaders,
        protocolVersions: [String],
        configuration: SPDYSessionConfiguration = SPDYSessionConfiguration(role: .client, pingInterval: .seconds(5))
    ) async throws -> SPDYClientUpgradeResult {
        let result = channel.eventLoop.makePromise(of: SPDYClientUpgradeResult.self)
        try await channel.eventLoop.submit {
            let collector = RejectionCollector(result: result)
            let boundCollector = NIOLoopBound(collector, eventLoop: channel.eventLoop)
            let upgrader = SPDYClientUpgrader(protocolVersions: protocolVersions, configuration: configuration) {
                session, response in
                let version = response.headers[SPDYHandshake.protocolVersionHeader].first
                result.succeed(.upgraded(session, protocolVersion: version))
            }
            let pipeline = channel.pipeline.syncOperations
            try pipeline.addHTTPClientHandlers(
                leftOverBytesStrategy: .forwardBytes,
                withClientUpgrade: (
                    upgraders: [upgrader],
                    completionHandler: { context in
                        context.pipeline.syncOperations.removeHandler(boundCollector.value, promise: nil)
                    }
                ))
            try pipeline.addHandler(collector)
            var head = HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: headers)
            if method == .POST || method == .PUT { head.headers.replaceOrAdd(name: "Content-Length", value: "0") }
            channel.write(HTTPClientRequestPart.head(head), promise: nil)
            channel.writeAndFlush(HTTPClientRequestPart.end(nil)).whenFailure { result.fail($0) }
            channel.closeFuture.whenComplete { _ in
                result.fail(SPDYError(.upgradeRejected, "the connection closed before the upgrade completed"))
            }
        }.get()
        return try await result.futureResult.get()
    }

    /// Collects a refusal's head and body.
    private final class RejectionCollector: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPClientResponsePart

        private let result: EventLoopPromise<SPDYClientUpgradeResult>
        private var head: HTTPResponseHead?
        private var body = ByteBuffer()

        init(result: EventLoopPromise<SPDYClientUpgradeResult>) {
            self.result = result
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
            case .body(var chunk):
                let room = SPDYClientHandshake.maxRejectionBody - body.readableBytes
                if room > 0, let slice = chunk.readSlice(length: min(room, chunk.readableBytes)) {
                    body.writeImmutableBuffer(slice)
                }
            case .end:
                if let head { result.succeed(.rejected(head, body: body)) }
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            // An upgrade the upgrader refused is reported here, then its response follows as a rejection.
            if error is NIOHTTPClientUpgradeError { return }
            result.fail(error)
        }
    }
}
