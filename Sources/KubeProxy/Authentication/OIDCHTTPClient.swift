import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// A response to a discovery or JWKS request.
public struct OIDCHTTPResponse: Sendable {
    public var status: Int
    public var body: [UInt8]

    public init(status: Int, body: [UInt8]) {
        self.status = status
        self.body = body
    }
}

/// Fetches the issuer's discovery document and JWKS. ``OIDCHTTPClient`` is the real one; tests may
/// substitute another.
public protocol OIDCDocumentFetching: Sendable {
    func get(_ url: URL) async throws -> OIDCHTTPResponse
}

/// A minimal HTTPS GET client on SwiftNIO and NIOSSL, for the few OIDC discovery and JWKS fetches.
///
/// One connection per request (`Connection: close`), HTTP/1.1, TLS 1.2 or later with certificate
/// and host-name verification against ``OIDCConfiguration/caBundlePEM`` or the system trust store.
/// Redirects are not followed and HTTP proxies are not used. Every fetch is bounded by
/// ``connectTimeout``, an overall ``requestTimeout`` and ``maximumResponseBytes``, so a slow or
/// hostile issuer cannot hold the proxy up or fill its memory. Not `URLSession`: on Linux that
/// brings libcurl into the runtime image.
public struct OIDCHTTPClient: OIDCDocumentFetching {
    /// The largest response body accepted (1 MiB); real JWKS documents are a few KiB.
    public static let defaultMaximumResponseBytes = 1 << 20
    public static let defaultConnectTimeout: Duration = .seconds(5)
    public static let defaultRequestTimeout: Duration = .seconds(10)

    /// Why a fetch failed.
    public struct Error: Swift.Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    public let connectTimeout: Duration
    public let requestTimeout: Duration
    public let maximumResponseBytes: Int
    private let group: any EventLoopGroup
    private let sslContext: NIOSSLContext

    /// - Parameter caBundlePEM: PEM certificates to trust for the server; nil for the system store.
    public init(
        caBundlePEM: String? = nil,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        connectTimeout: Duration = Self.defaultConnectTimeout,
        requestTimeout: Duration = Self.defaultRequestTimeout,
        maximumResponseBytes: Int = Self.defaultMaximumResponseBytes
    ) throws {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        if let caBundlePEM {
            let roots: [NIOSSLCertificate]
            do {
                roots = try NIOSSLCertificate.fromPEMBytes(Array(caBundlePEM.utf8))
            } catch {
                throw Error(description: "the OIDC CA bundle cannot be parsed: \(error)")
            }
            guard !roots.isEmpty else { throw Error(description: "the OIDC CA bundle holds no certificate") }
            tls.trustRoots = .certificates(roots)
        }
        self.sslContext = try NIOSSLContext(configuration: tls)
        self.group = eventLoopGroup
        self.connectTimeout = connectTimeout
        self.requestTimeout = requestTimeout
        self.maximumResponseBytes = maximumResponseBytes
    }

    public func get(_ url: URL) async throws -> OIDCHTTPResponse {
        guard let components = URLComponents(url: url, resolvingAgainstBaseURL: false),
            components.scheme?.lowercased() == "https", let rawHost = components.host, !rawHost.isEmpty
        else { throw Error(description: "not an https URL: \(url.absoluteString)") }
        let host =
            rawHost.hasPrefix("[") && rawHost.hasSuffix("]") ? String(rawHost.dropFirst().dropLast()) : rawHost
        let port = components.port ?? 443
        let path = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
        let target = components.percentEncodedQuery.map { path + "?" + $0 } ?? path
        let isAddress = (try? SocketAddress(ipAddress: host, port: 0)) != nil
        let hostHeader = (host.contains(":") ? "[\(host)]" : host) + (components.port.map { ":\($0)" } ?? "")

        let eventLoop = group.next()
        let promise = eventLoop.makePromise(of: OIDCHTTPResponse.self)
        let sslContext = self.sslContext
        let limit = maximumResponseBytes
        let serverHostname = isAddress ? nil : host
        let requestTimeout = self.requestTimeout
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(TimeAmount(connectTimeout))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let operations = channel.pipeline.syncOperations
                    try operations.addHandler(NIOSSLClientHandler(context: sslContext, serverHostname: serverHostname))
                    try operations.addHTTPClientHandlers()
                    try operations.addHandler(OIDCResponseCollector(promise: promise, limit: limit))
                }
            }
        let timeout = eventLoop.scheduleTask(in: TimeAmount(requestTimeout)) {
            promise.fail(Error(description: "no complete response within \(requestTimeout)"))
        }
        promise.futureResult.whenComplete { _ in timeout.cancel() }
        let connect = bootstrap.connect(host: host, port: port)
        connect.whenFailure { error in
            promise.fail(Error(description: "cannot connect to \(host):\(port): \(error)"))
        }
        connect.whenSuccess { channel in
            promise.futureResult.whenComplete { _ in channel.close(promise: nil) }
            var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: target)
            head.headers.add(name: "Host", value: hostHeader)
            head.headers.add(name: "Accept", value: "application/json")
            head.headers.add(name: "User-Agent", value: "portcullis-oidc")
            head.headers.add(name: "Connection", value: "close")
            channel.write(HTTPClientRequestPart.head(head), promise: nil)
            channel.writeAndFlush(HTTPClientRequestPart.end(nil)).whenFailure { error in
                promise.fail(Error(description: "cannot send the request: \(error)"))
            }
        }
        return try await promise.futureResult.get()
    }
}

/// Collects one HTTP response into the promise, enforcing the size limit; closes on completion.
private final class OIDCResponseCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let promise: EventLoopPromise<OIDCHTTPResponse>
    private let limit: Int
    private var status: Int?
    private var body: [UInt8] = []
    private var finished = false

    init(promise: EventLoopPromise<OIDCHTTPResponse>, limit: Int) {
        self.promise = promise
        self.limit = limit
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !finished else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = Int(head.status.code)
            if let declared = head.headers.first(name: "content-length").flatMap({ Int($0) }), declared > limit {
                finish(context: context, .failure(tooLarge()))
            }
        case .body(let buffer):
            guard body.count + buffer.readableBytes <= limit else {
                finish(context: context, .failure(tooLarge()))
                return
            }
            body.append(contentsOf: buffer.readableBytesView)
        case .end:
            if let status {
                finish(context: context, .success(OIDCHTTPResponse(status: status, body: body)))
            } else {
                finish(context: context, .failure(OIDCHTTPClient.Error(description: "a response without a head")))
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !finished {
            finished = true
            promise.fail(
                OIDCHTTPClient.Error(description: "the server closed the connection before the response ended"))
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish(context: context, .failure(OIDCHTTPClient.Error(description: "\(error)")))
    }

    private func tooLarge() -> OIDCHTTPClient.Error {
        OIDCHTTPClient.Error(description: "the response is larger than \(limit) bytes")
    }

    private func finish(context: ChannelHandlerContext, _ result: Result<OIDCHTTPResponse, any Error>) {
        guard !finished else { return }
        finished = true
        promise.completeWith(result)
        context.close(promise: nil)
    }
}
