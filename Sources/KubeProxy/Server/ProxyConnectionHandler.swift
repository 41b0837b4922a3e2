import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL

/// One client connection: reads each request, asks the ``ProxyGate``, and either answers itself
/// (401, 403, 400) or forwards on a pooled upstream connection, streaming the response back.
///
/// ```
///  idle ──head──▶ receiving ──end──▶ deciding ──respond──▶ idle
///                     │ (body > limit)     └──forward──▶ forwarding ──upstream end──▶ idle
///                     ▼                    ├──exec/attach──▶ streaming (RemoteCommandInterception)
///                  refused (413, close)    ├──port-forward──▶ streaming (PortForwardInterception)
///                                          └──other upgrade──▶ spliced (bytes both ways until close)
/// ```
/// Upstream reads pause while the client cannot keep up (watch streams of a slow client do not
/// fill the proxy's memory), and a client that goes away closes its upstream connection.
final class ProxyConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        case idle
        case receiving(HTTPRequestHead, ByteBuffer)
        case refused
        case deciding
        case forwarding(Exchange)
        case spliced
        /// Exec, attach or port-forward: the handler leaves the pipeline once the client's upgrade
        /// is answered.
        case streaming
    }

    /// One request being forwarded.
    private final class Exchange {
        let request: UpstreamRequest
        let clientHead: HTTPRequestHead
        var audit: AuditRecord
        var upstream: Channel?
        var reusedConnection = false
        var responseStarted = false
        var upstreamKeepAlive = true
        var masker: ResponseMasker?

        init(request: UpstreamRequest, clientHead: HTTPRequestHead, audit: AuditRecord) {
            self.request = request
            self.clientHead = clientHead
            self.audit = audit
        }
    }

    /// When a quiet client connection is closed.
    struct Timeouts: Sendable {
        /// Waiting for the first request, or for the rest of one that stopped arriving.
        var idle: TimeAmount
        /// Waiting for the next request after a response (at most `idle`).
        var keepAlive: TimeAmount

        init(idle: TimeAmount, keepAlive: TimeAmount) {
            self.idle = idle
            self.keepAlive = min(keepAlive, idle)
        }

        /// How often the `IdleStateHandler` before TLS reports a quiet connection: a divisor of
        /// both limits, so that each is met on a report (whole seconds from the configuration).
        var checkInterval: TimeAmount {
            var (a, b) = (idle.nanoseconds, keepAlive.nanoseconds)
            while b != 0 { (a, b) = (b, a % b) }
            return .nanoseconds(max(a, 1_000_000))
        }
        /// Timers fire a little early or late; a connection this close to its limit is at it.
        static let slack = TimeAmount.milliseconds(250)
    }

    private let gate: ProxyGate
    private let pool: UpstreamConnectionPool
    private let services: ProxyServices
    private let timeouts: Timeouts
    private var state = State.idle
    private var clientCertificates: [NIOSSLCertificate]?
    /// The last request part read, or the end of the last response.
    private var quietSince = NIODeadline.now()
    /// The last bytes read, parts of a request head and TLS records included.
    private let lastRead: LastReadRecorder
    private var hasServedRequest = false

    init(
        gate: ProxyGate, pool: UpstreamConnectionPool, services: ProxyServices, timeouts: Timeouts,
        lastRead: LastReadRecorder
    ) {
        self.gate = gate
        self.pool = pool
        self.services = services
        self.timeouts = timeouts
        self.lastRead = lastRead
    }

    // MARK: Client side

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        quietSince = .now()
        switch (unwrapInboundIn(data), state) {
        case (.head(let head), .idle):
            hasServedRequest = true
            state = .receiving(head, context.channel.allocator.buffer(capacity: 0))
        case (.body(var chunk), .receiving(let head, var body)):
            guard body.readableBytes + chunk.readableBytes <= ProxyGate.maximumRequestBody else {
                state = .refused
                respond(
                    context, head: head,
                    status: .tooLarge("request bodies are limited to \(ProxyGate.maximumRequestBody) bytes"),
                    close: true)
                return
            }
            body.writeBuffer(&chunk)
            state = .receiving(head, body)
        case (.end, .receiving(let head, let body)):
            state = .deciding
            decide(context, head: head, body: body)
        case (_, .refused):
            break  // the rest of an oversized body
        default:
            // HTTPServerPipelineHandler holds pipelined requests back, so anything else is a bug
            // in a peer; end the connection rather than guess.
            context.close(promise: nil)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if case .forwarding(let exchange) = state, context.channel.isWritable {
            exchange.upstream?.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
        }
        context.fireChannelWritabilityChanged()
    }

    /// A request the HTTP parser cannot frame unambiguously (conflicting Content-Length and
    /// Transfer-Encoding, a bad chunk size…) has been answered 400 by `HTTPServerProtocolErrorHandler`,
    /// which does not close the connection. Nothing after it can be trusted to be framed the way
    /// the client meant, so the connection ends here; a request still being decided is dropped.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if case .forwarding(let exchange) = state {
            exchange.upstream?.close(promise: nil)
            finishAudit(exchange, code: exchange.audit.responseCode == 0 ? 400 : exchange.audit.responseCode)
        }
        state = .refused
        context.close(promise: nil)
    }

    /// The timeouts: only a connection waiting for its next request, or for the rest of one that
    /// stopped arriving, is closed; a response in flight (a quiet watch) is not idle. The
    /// `IdleStateHandler` reports every `checkInterval` without a byte; which limit applies
    /// depends on the state.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        let limit: TimeAmount
        switch state {
        case .idle: limit = hasServedRequest ? timeouts.keepAlive : timeouts.idle
        case .receiving: limit = timeouts.idle
        case .refused, .deciding, .forwarding, .spliced, .streaming: return
        }
        if NIODeadline.now() - max(quietSince, lastRead.lastRead) + Timeouts.slack >= limit {
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if case .forwarding(let exchange) = state {
            // The client left mid-response (a watch ended, a download aborted): this upstream
            // connection is mid-message and cannot be reused.
            exchange.upstream?.close(promise: nil)
            finishAudit(exchange, code: exchange.audit.responseCode == 0 ? 499 : exchange.audit.responseCode)
        }
        state = .idle
        context.fireChannelInactive()
    }

    private func decide(_ context: ChannelHandlerContext, head: HTTPRequestHead, body: ByteBuffer) {
        if clientCertificates == nil {
            clientCertificates =
                (try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self))
                .flatMap { handler -> [NIOSSLCertificate]? in
                    handler.peerCertificate.map { [$0] }
                } ?? []
        }
        let request = ProxyRequest(
            head: head, body: body, clientCertificates: clientCertificates ?? [],
            remoteAddress: context.channel.remoteAddress?.ipAddress ?? "", receivedAt: Date())
        switch gate.begin(request) {
        case .decided(let verdict):
            act(on: verdict, context, head: head)
        case .waiting(let pending):
            let gate = self.gate
            let promise = context.eventLoop.makePromise(of: GateVerdict.self)
            promise.completeWithTask { await gate.finish(pending) }
            promise.futureResult.assumeIsolated().whenSuccess { verdict in
                guard case .deciding = self.state else { return }  // the client went away meanwhile
                self.act(on: verdict, context, head: head)
            }
        }
    }

    private func act(on verdict: GateVerdict, _ context: ChannelHandlerContext, head: HTTPRequestHead) {
        switch verdict {
        case .respond(let status, var audit):
            audit.responseCode = status.code
            services.record(audit)
            state = .idle
            respond(context, head: head, status: status, close: !head.isKeepAlive)
        case .answer(let json, var audit):
            audit.responseCode = 200
            services.record(audit)
            state = .idle
            respond(context, head: head, code: 200, json: json, close: !head.isKeepAlive)
        case .forward(let request, let audit):
            let exchange = Exchange(request: request, clientHead: head, audit: audit)
            if request.isUpgrade, ["exec", "attach"].contains(audit.info?.subresource ?? "") {
                intercept(context, exchange)
            } else if request.isUpgrade, audit.info?.isStream == true, audit.info?.subresource == "portforward" {
                interceptPortForward(context, exchange)
            } else if request.isUpgrade {
                splice(context, exchange)
            } else {
                state = .forwarding(exchange)
                forward(context, exchange, retry: true)
            }
        }
    }

    private func respond(_ context: ChannelHandlerContext, head: HTTPRequestHead, status: KubernetesStatus, close: Bool)
    {
        respond(context, head: head, code: status.code, json: status.json, close: close)
    }

    private func respond(
        _ context: ChannelHandlerContext, head: HTTPRequestHead, code: Int, json body: Data, close: Bool
    ) {
        var headers = HTTPHeaders([("Content-Type", "application/json"), ("Content-Length", String(body.count))])
        if close { headers.add(name: "Connection", value: "close") }
        let response = HTTPResponseHead(version: head.version, status: .init(statusCode: code), headers: headers)
        context.write(wrapOutboundOut(.head(response)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil)
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if close { done.assumeIsolated().whenComplete { _ in context.close(promise: nil) } }
    }

    // MARK: Forwarding

    private func forward(_ context: ChannelHandlerContext, _ exchange: Exchange, retry: Bool) {
        pool.lease(on: context.eventLoop).assumeIsolated().whenComplete { result in
            guard case .forwarding(let current) = self.state, current === exchange else {
                if case .success(let lease) = result { self.pool.release(lease.channel, reusable: true) }
                return
            }
            switch result {
            case .failure(let error):
                self.services.metrics.recordUpstreamError()
                self.fail(context, exchange, status: .unavailable("the Kubernetes API server is unreachable: \(error)"))
            case .success(let lease):
                exchange.upstream = lease.channel
                exchange.reusedConnection = lease.reused
                self.send(context, exchange, on: lease.channel, retry: retry)
            }
        }
    }

    private func send(_ context: ChannelHandlerContext, _ exchange: Exchange, on upstream: Channel, retry: Bool) {
        guard let router = try? upstream.pipeline.syncOperations.handler(type: UpstreamResponseRouter.self) else {
            upstream.close(promise: nil)
            fail(context, exchange, status: .badGateway("internal error: upstream connection without a router"))
            return
        }
        router.sink = { event in
            guard case .forwarding(let current) = self.state, current === exchange else { return }
            switch event {
            case .part(let part):
                self.upstreamPart(context, exchange, part)
            case .readComplete:
                context.flush()
            case .failed(let error):
                router.sink = nil
                if !exchange.responseStarted, exchange.reusedConnection, retry {
                    // A kept-alive connection the server had already closed: try once on a new one.
                    self.forward(context, exchange, retry: false)
                } else {
                    self.services.metrics.recordUpstreamError()
                    self.fail(
                        context, exchange, status: .badGateway("the Kubernetes API server connection failed: \(error)"))
                }
            }
        }
        upstream.write(HTTPClientRequestPart.head(exchange.request.head), promise: nil)
        if let body = exchange.request.body, body.readableBytes > 0 {
            upstream.write(HTTPClientRequestPart.body(.byteBuffer(body)), promise: nil)
        }
        upstream.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
    }

    private func upstreamPart(_ context: ChannelHandlerContext, _ exchange: Exchange, _ part: HTTPClientResponsePart) {
        switch part {
        case .head(let head):
            exchange.responseStarted = true
            exchange.upstreamKeepAlive = head.isKeepAlive
            exchange.audit.responseCode = Int(head.status.code)
            let contentType = head.headers.first(name: "content-type") ?? ""
            if !exchange.request.masks.isEmpty {
                if head.status == .ok, contentType.lowercased().hasPrefix("application/json") {
                    exchange.masker = ResponseMasker(masks: exchange.request.masks, streaming: exchange.request.isWatch)
                } else if head.status == .ok {
                    // The client cannot get the masked form (e.g. the server ignored Accept): fail
                    // closed rather than reveal the fields.
                    exchange.upstream?.close(promise: nil)
                    fail(context, exchange, status: .forbidden("this response must be masked and was not sent as JSON"))
                    return
                }
            }
            var headers = ForwardedHeaders.downstream(
                from: head.headers, warnings: exchange.request.warnings, dropContentLength: exchange.masker != nil)
            if !exchange.clientHead.isKeepAlive { headers.replaceOrAdd(name: "Connection", value: "close") }
            context.write(
                wrapOutboundOut(
                    .head(HTTPResponseHead(version: exchange.clientHead.version, status: head.status, headers: headers))
                ),
                promise: nil)
        case .body(let buffer):
            // Flushed at the end of the upstream read burst (`.readComplete`), or with the end.
            let output = exchange.masker.map { $0.append(buffer, allocator: context.channel.allocator) } ?? [buffer]
            for chunk in output where chunk.readableBytes > 0 {
                context.write(wrapOutboundOut(.body(.byteBuffer(chunk))), promise: nil)
            }
            if !context.channel.isWritable {
                exchange.upstream?.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
            }
        case .end(let trailers):
            if let masker = exchange.masker {
                for chunk in masker.finish(allocator: context.channel.allocator) where chunk.readableBytes > 0 {
                    context.write(wrapOutboundOut(.body(.byteBuffer(chunk))), promise: nil)
                }
            }
            if let upstream = exchange.upstream {
                (try? upstream.pipeline.syncOperations.handler(type: UpstreamResponseRouter.self))?.sink = nil
                pool.release(upstream, reusable: exchange.upstreamKeepAlive)
                exchange.upstream = nil
            }
            state = .idle
            quietSince = .now()
            finishAudit(exchange, code: exchange.audit.responseCode)
            let done = context.writeAndFlush(wrapOutboundOut(.end(trailers)))
            if !exchange.clientHead.isKeepAlive {
                done.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
            }
        }
    }

    private func fail(_ context: ChannelHandlerContext, _ exchange: Exchange, status: KubernetesStatus) {
        state = .idle
        exchange.upstream?.close(promise: nil)
        exchange.upstream = nil
        if exchange.responseStarted {
            // Part of the response is out: the only honest signal left is to cut the connection.
            finishAudit(exchange, code: exchange.audit.responseCode)
            context.close(promise: nil)
        } else {
            finishAudit(exchange, code: status.code)
            respond(context, head: exchange.clientHead, status: status, close: true)
        }
    }

    private func finishAudit(_ exchange: Exchange, code: Int) {
        exchange.audit.responseCode = code
        services.record(exchange.audit)
    }

    // MARK: Upgrades

    /// Exec and attach: terminated here and re-originated upstream, recorded, audited.
    private func intercept(_ context: ChannelHandlerContext, _ exchange: Exchange) {
        state = .streaming
        let interception = RemoteCommandInterception(
            request: exchange.request, clientHead: exchange.clientHead, audit: exchange.audit, pool: pool,
            services: services, policies: gate.policies, approvals: gate.approvals,
            downstream: DownstreamConnection(context: context))
        Task { await interception.run() }
    }

    /// Port-forward: terminated here and re-originated upstream, each connection checked against
    /// the port policy and audited.
    private func interceptPortForward(_ context: ChannelHandlerContext, _ exchange: Exchange) {
        state = .streaming
        let interception = PortForwardInterception(
            request: exchange.request, clientHead: exchange.clientHead, audit: exchange.audit, pool: pool,
            services: services, policies: gate.policies, approvals: gate.approvals,
            downstream: DownstreamConnection(context: context))
        Task { await interception.run() }
    }

    /// Other upgrades (e.g. through `pods/proxy`): after the gate allowed the request, the
    /// connection becomes a byte pipe to a fresh upstream connection.
    private func splice(_ context: ChannelHandlerContext, _ exchange: Exchange) {
        state = .spliced
        let channel = context.channel
        let services = self.services
        let audit = exchange.audit
        let head = exchange.request.head
        pool.connect(on: context.eventLoop, http: false).assumeIsolated().whenComplete { result in
            switch result {
            case .failure(let error):
                services.metrics.recordUpstreamError()
                var failed = audit
                failed.responseCode = 503
                services.record(failed)
                self.respond(
                    context, head: exchange.clientHead,
                    status: .unavailable("the Kubernetes API server is unreachable: \(error)"), close: true)
            case .success(let upstream):
                do {
                    try UpgradeSplice.install(
                        downstream: channel, upstream: upstream, requestHead: head, audit: audit, services: services)
                } catch {
                    upstream.close(promise: nil)
                    channel.close(promise: nil)
                }
            }
        }
    }
}
