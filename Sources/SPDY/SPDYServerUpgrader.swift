import NIOCore
import NIOHTTP1

/// The server side of `Upgrade: SPDY/3.1` for NIO's `HTTPServerUpgradeHandler` (protocols.md §2).
///
/// It picks the first `X-Stream-Protocol-Version` offered by the client that ``protocolVersions``
/// contains, answers 101 with `Connection: upgrade`, `Upgrade: SPDY/3.1` and the chosen version, then
/// replaces the HTTP handlers with a server ``SPDYSession`` and hands it to `onUpgrade`. Bytes that
/// came in behind the request go to the SPDY decoder. Nothing is written after the 101 until the
/// client speaks: the session never pings first.
///
/// When negotiation fails NIO passes the request on unupgraded, after firing the ``SPDYError`` through
/// `errorCaught`; answer it with ``SPDYHandshake/rejection(for:supported:)`` (400, or 403 and the
/// supported list).
public struct SPDYServerUpgrader: HTTPServerProtocolUpgrader, Sendable {
    public typealias UpgradeHandler =
        @Sendable (
            _ session: SPDYSession, _ protocolVersion: String, _ request: HTTPRequestHead
        ) -> Void

    public let supportedProtocol = SPDYHandshake.upgradeToken
    public let requiredUpgradeHeaders: [String] = []
    /// The subprotocols this server speaks, e.g. `v5.channel.k8s.io` … `channel.k8s.io`.
    public let protocolVersions: [String]
    private let configuration: SPDYSessionConfiguration
    private let onUpgrade: UpgradeHandler

    /// - Parameters:
    ///   - protocolVersions: the subprotocols we accept (the order does not matter: the client's wins).
    ///   - configuration: the session's settings; its role is forced to ``SPDYRole/server``.
    ///   - onUpgrade: receives the session, on the channel's event loop, before any frame is read.
    public init(
        protocolVersions: [String], configuration: SPDYSessionConfiguration = SPDYSessionConfiguration(role: .server),
        onUpgrade: @escaping UpgradeHandler
    ) {
        self.protocolVersions = protocolVersions
        var configuration = configuration
        configuration.role = .server
        self.configuration = configuration
        self.onUpgrade = onUpgrade
    }

    public func buildUpgradeResponse(
        channel: any Channel, upgradeRequest: HTTPRequestHead, initialResponseHeaders: HTTPHeaders
    ) -> EventLoopFuture<HTTPHeaders> {
        do {
            let chosen = try SPDYHandshake.negotiate(upgradeRequest.headers, supported: protocolVersions)
            var headers = initialResponseHeaders
            headers.replaceOrAdd(name: SPDYHandshake.protocolVersionHeader, value: chosen)
            return channel.eventLoop.makeSucceededFuture(headers)
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
    }

    public func upgrade(context: ChannelHandlerContext, upgradeRequest: HTTPRequestHead) -> EventLoopFuture<Void> {
        do {
            let chosen = try SPDYHandshake.negotiate(upgradeRequest.headers, supported: protocolVersions)
            let session = try context.pipeline.syncOperations.addSPDYSessionHandlers(
                configuration: configuration, position: .after(context.handler))
            onUpgrade(session, chosen, upgradeRequest)
            return context.eventLoop.makeSucceededVoidFuture()
        } catch {
            return context.eventLoop.makeFailedFuture(error)
        }
    }
}
