import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import SPDY

/// A stand-in for kube-apiserver, just enough for kubectl to exec and port-forward over SPDY with
/// this module's server side: discovery, one Running pod `ns/x` with container `c1`, and the streaming
/// subresources. Plain HTTP on 127.0.0.1 (kubectl sends no credentials over http).
///
/// WebSocket: with `webSocket` on, exec is served over `v5.channel.k8s.io` (and older) and port-forward
/// over the `SPDY/3.1+portforward.k8s.io` tunnel; with it off, WebSocket upgrades (kubectl ≥ 1.30's first
/// attempt) are answered 400, so kubectl falls back to SPDY.
final class FakeAPIServer: Sendable {
    /// What to do with an upgraded session.
    typealias StreamHandler =
        @Sendable (_ session: SPDYSession, _ protocolVersion: String, _ request: HTTPRequestHead) async -> Void
    /// What to do with an upgraded WebSocket, on the event loop.
    typealias WebSocketHandler =
        @Sendable (_ channel: any Channel, _ protocolName: String, _ request: HTTPRequestHead) throws -> Void

    let group: MultiThreadedEventLoopGroup
    let channel: any Channel
    let log: RequestLog

    var port: Int { channel.localAddress!.port! }

    init(onStream: @escaping StreamHandler, onWebSocket: WebSocketHandler? = nil) async throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let log = RequestLog()
        self.log = log
        let versions = RemoteCommandSPDYServer.protocolVersions + PortForwardSPDYServer.protocolVersions
        channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let upgrader = SPDYServerUpgrader(protocolVersions: versions) { session, version, request in
                        log.record("UPGRADE \(request.method) \(request.uri) -> \(version)")
                        Task { await onStream(session, version, request) }
                    }
                    var upgraders: [any HTTPServerProtocolUpgrader & Sendable] = [upgrader]
                    if let onWebSocket {
                        upgraders.append(
                            KubernetesWebSocket.serverUpgrader(
                                supportedProtocols: { request in
                                    request.uri.contains("/portforward")
                                        ? [KubernetesWebSocket.portForwardTunnelProtocol]
                                            + WebSocketPortForwardServer.protocolVersions
                                        : KubernetesWebSocket.remoteCommandProtocols
                                },
                                onUpgrade: { channel, chosen, request in
                                    log.record("WEBSOCKET \(request.method) \(request.uri) -> \(chosen)")
                                    try onWebSocket(channel, chosen, request)
                                }))
                    }
                    let api = APIHandler(log: log, supported: versions)
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                        withServerUpgrade: (
                            upgraders: upgraders,
                            completionHandler: { context in
                                // The WebSocket codec goes at the end of the pipeline: the HTTP handler must go.
                                context.pipeline.syncOperations.removeHandler(api, promise: nil)
                            }
                        ))
                    try channel.pipeline.syncOperations.addHandler(api)
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    func shutdown() async throws {
        try await channel.close()
        try await group.shutdownGracefully()
    }

    /// A kubeconfig pointing kubectl at this server, namespace `ns`.
    func writeKubeconfig(in directory: URL) throws -> URL {
        let url = directory.appendingPathComponent("kubeconfig")
        try """
        apiVersion: v1
        kind: Config
        clusters:
        - name: fake
          cluster: {server: "http://127.0.0.1:\(port)"}
        contexts:
        - name: fake
          context: {cluster: fake, namespace: ns}
        current-context: fake
        """.write(to: url, atomically: true, encoding: .utf8)
        return url
    }
}

/// The request lines the server saw, for diagnosing failures.
final class RequestLog: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []

    func record(_ line: String) { lock.withLock { lines.append(line) } }
    var text: String { lock.withLock { lines.joined(separator: "\n") } }
}

/// Answers discovery, the pod, and refuses what was not upgraded.
private final class APIHandler: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let log: RequestLog
    let supported: [String]

    init(log: RequestLog, supported: [String]) {
        self.log = log
        self.supported = supported
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let head) = unwrapInboundIn(data) else { return }
        log.record("\(head.method) \(head.uri)")
        let path = String(head.uri.split(separator: "?", maxSplits: 1).first ?? "")
        var status = HTTPResponseStatus.ok
        var headers = HTTPHeaders([("Content-Type", "application/json")])
        let body: String
        if head.headers["Upgrade"].contains(where: { $0.lowercased() == "websocket" }) {
            status = .badRequest
            body = Self.statusJSON(code: 400, reason: "BadRequest", message: "WebSocket is not served here")
        } else if SPDYHandshake.isUpgradeRequest(head.headers) {
            do {
                _ = try SPDYHandshake.negotiate(head.headers, supported: supported)
                status = .badRequest
            } catch {
                let rejection = SPDYHandshake.rejection(for: error, supported: supported)
                status = rejection.0
                headers.add(contentsOf: rejection.1)
            }
            body = Self.statusJSON(code: Int(status.code), reason: "BadRequest", message: "upgrade refused")
        } else if path == "/api" {
            body = #"{"kind":"APIVersions","versions":["v1"],"serverAddressByClientCIDRs":[]}"#
        } else if path == "/apis" {
            body = #"{"kind":"APIGroupList","apiVersion":"v1","groups":[]}"#
        } else if path == "/api/v1" {
            body = Self.resourceList
        } else if path.hasPrefix("/api/v1/namespaces/"), path.split(separator: "/").count == 6 {
            let parts = path.split(separator: "/")
            body = Self.pod(namespace: String(parts[3]), name: String(parts[5]))
        } else {
            status = .notFound
            body = Self.statusJSON(code: 404, reason: "NotFound", message: "not found")
        }
        headers.add(name: "Content-Length", value: String(body.utf8.count))
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {}

    static func statusJSON(code: Int, reason: String, message: String) -> String {
        #"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"\#(message)","reason":"\#(reason)","code":\#(code)}"#
    }

    static func pod(namespace: String, name: String) -> String {
        #"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"\#(name)","namespace":"\#(namespace)","uid":"1111","resourceVersion":"1"},"#
            + #""spec":{"containers":[{"name":"c1","image":"busybox","ports":[{"containerPort":80}]}]},"status":{"phase":"Running"}}"#
    }

    static let resourceList = """
        {"kind":"APIResourceList","groupVersion":"v1","resources":[\
        {"name":"pods","singularName":"pod","namespaced":true,"kind":"Pod","verbs":["get","list"],"shortNames":["po"]},\
        {"name":"pods/exec","singularName":"","namespaced":true,"kind":"PodExecOptions","verbs":["create","get"]},\
        {"name":"pods/attach","singularName":"","namespaced":true,"kind":"PodAttachOptions","verbs":["create","get"]},\
        {"name":"pods/portforward","singularName":"","namespaced":true,"kind":"PodPortForwardOptions","verbs":["create","get"]},\
        {"name":"namespaces","singularName":"namespace","namespaced":false,"kind":"Namespace","verbs":["get","list"]}]}
        """
}
