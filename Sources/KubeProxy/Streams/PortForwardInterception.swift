import Foundation
import NIOCore
import NIOHTTP1
import Policy
import Prometheus
import SPDY
import Synchronization

/// One authorized port-forward, terminated at the proxy and re-originated (protocols.md §5, §7.1
/// option 4), as exec is in ``RemoteCommandInterception``: why terminate rather than splice is in
/// docs/proxy.md.
///
/// ```
///  client transport? ──no──▶ 400/403
///        │
///  upstream TLS + SPDY upgrade (portforward.k8s.io, the gate's impersonation headers)
///        ├──refused──▶ the apiserver's response, as is (RBAC 403, a missing pod)
///  101 to the client (SPDY, the WebSocket tunnel, or legacy WebSocket channels)
///        │
///  each connection (data+error pair, port, requestID):
///     policy with portForward.port ──Deny/Review──▶ the message on its error stream; audit
///        └──Allow──▶ upstream pair, same port and requestID ──▶ bridge (inspector) ──▶ audit
///  client or upstream gone ──▶ both closed ──▶ session audit and metrics
/// ```
/// Nothing the client sends reaches the apiserver before the upstream accepted the request and
/// the policy allowed the connection's port, and the client's credentials never leave the proxy.
struct PortForwardInterception: Sendable {
    let request: UpstreamRequest
    let clientHead: HTTPRequestHead
    let audit: AuditRecord
    let pool: UpstreamConnectionPool
    let services: ProxyServices
    let policies: PolicyStore
    /// Where connections to ports a Review rule holds find their approvals.
    let approvals: (any ApprovalStore)?
    let downstream: DownstreamConnection
    var inspectors = PortForwardInspectors.passThrough

    /// The subprotocols of legacy WebSocket port-forward served to clients (language clients; "" too).
    static let legacyWebSocketProtocols = WebSocketPortForwardServer.protocolVersions

    /// The transport the client asked for.
    enum ClientTransport: Sendable, Equatable {
        case spdy
        /// `SPDY/3.1+portforward.k8s.io`: SPDY inside WebSocket messages (kubectl ≥ 1.31).
        case tunnel(key: String)
        /// Legacy channels (`?ports=`), `protocolName` empty when the client offered none.
        case webSocket(key: String, protocolName: String, ports: [UInt16])

        /// Its name in the audit record.
        var name: String {
            switch self {
            case .spdy: "spdy/\(PortForwardProtocol.version)"
            case .tunnel: "websocket/\(KubernetesWebSocket.portForwardTunnelProtocol)"
            case .webSocket(_, let protocolName, _):
                "websocket/\(protocolName.isEmpty ? "channel" : protocolName)"
            }
        }

        /// The `transport` label of the session metric.
        var metricLabel: String {
            if case .spdy = self { return "spdy" }
            return "websocket"
        }
    }

    /// Reads the client's upgrade request: SPDY offering `portforward.k8s.io`, the WebSocket tunnel,
    /// or legacy WebSocket with `ports`.
    static func clientTransport(_ headers: HTTPHeaders, uri: String) -> Result<ClientTransport, KubernetesStatusError> {
        let upgrade = headers["Upgrade"].map { $0.lowercased() }
        if upgrade.contains(where: { $0.contains("websocket") }) {
            guard headers.first(name: "Sec-WebSocket-Version") == "13",
                let key = headers.first(name: "Sec-WebSocket-Key"), !key.isEmpty
            else {
                return .failure(.init(.badRequest("a WebSocket upgrade needs Sec-WebSocket-Version 13 and a key")))
            }
            if KubernetesWebSocket.negotiate(headers, supported: [KubernetesWebSocket.portForwardTunnelProtocol])
                != nil
            {
                return .success(.tunnel(key: key))
            }
            let protocolName: String
            if !headers.contains(name: "Sec-WebSocket-Protocol") {
                protocolName = ""
            } else if let chosen = KubernetesWebSocket.negotiate(headers, supported: legacyWebSocketProtocols) {
                protocolName = chosen
            } else {
                let supported = [KubernetesWebSocket.portForwardTunnelProtocol] + legacyWebSocketProtocols
                return .failure(
                    .init(.badRequest("supported WebSocket subprotocols: \(supported.joined(separator: ", "))")))
            }
            let query = RequestInfo.query(of: uri)["ports"] ?? []
            // Each port once: its connection's request id upstream is the port (as Teleport does).
            guard let ports = WebSocketPortForwardServer.ports(queryItems: query.map { ("ports", $0) }),
                ports.count <= 127, Set(ports).count == ports.count
            else {
                return .failure(
                    .init(
                        .badRequest(
                            "WebSocket port-forward needs 1 to 127 distinct ports as ?ports=, each in 1-65535")))
            }
            return .success(.webSocket(key: key, protocolName: protocolName, ports: ports))
        }
        guard SPDYHandshake.offeredProtocolVersions(headers).contains(PortForwardProtocol.version) else {
            return .failure(.init(.forbidden("supported port-forward protocol: \(PortForwardProtocol.version)")))
        }
        return .success(.spdy)
    }

    func run() async {
        var audit = self.audit
        let transport: ClientTransport
        switch Self.clientTransport(clientHead.headers, uri: request.head.uri) {
        case .success(let chosen): transport = chosen
        case .failure(let refusal):
            return await refuse(refusal.status, audit: &audit)
        }

        // Upstream first: its refusal (RBAC, a missing pod) is what the client must see.
        let upstreamChannel: any Channel
        let handshake: SPDYClientUpgradeResult
        let (uri, headers) = (request.head.uri, RemoteCommandInterception.upstreamHeaders(request.head.headers))
        switch await pool.upgrade(
            on: downstream.channel.eventLoop,
            { channel in
                try await SPDYClientHandshake.upgrade(
                    channel: channel, method: .POST, uri: uri, headers: headers,
                    protocolVersions: [PortForwardProtocol.version])
            })
        {
        case .success(let upgraded):
            (upstreamChannel, handshake) = upgraded
        case .failure(.unreachable(let error)):
            services.metrics.recordUpstreamError()
            return await refuse(.unavailable("the Kubernetes API server is unreachable: \(error)"), audit: &audit)
        case .failure(.handshakeFailed(let error)):
            services.metrics.recordUpstreamError()
            return await refuse(.badGateway("the upgrade to the Kubernetes API server failed: \(error)"), audit: &audit)
        }
        downstream.channel.closeFuture.whenComplete { _ in upstreamChannel.close(promise: nil) }
        let upstreamSession: SPDYSession
        switch handshake {
        case .rejected(let head, let body):
            upstreamChannel.close(promise: nil)
            audit.responseCode = Int(head.status.code)
            services.record(audit)
            return await downstream.refuse(head, body: body)
        case .upgraded(let session, _):
            upstreamSession = session
        }

        let client: PortForwardSession
        do {
            switch transport {
            case .spdy:
                let session = try await downstream.acceptSPDY(protocolVersion: PortForwardProtocol.version)
                client = PortForwardSPDYServer.accept(session: session)
            case .tunnel(let key):
                client = PortForwardSPDYServer.accept(session: try await downstream.acceptPortForwardTunnel(key: key))
            case .webSocket(let key, let protocolName, let ports):
                client = try await downstream.acceptLegacyPortForward(
                    key: key, protocolName: protocolName, ports: ports)
            }
        } catch {
            await upstreamSession.close()
            downstream.channel.close(promise: nil)
            audit.annotations["portcullis.dev/session-error"] = "\(error)"
            audit.responseCode = 101
            services.record(audit)
            return
        }

        audit.responseCode = 101
        audit.annotations["portcullis.dev/transport"] = transport.name
        var started = audit
        started.stage = "ResponseStarted"
        services.record(started)

        // The apiserver's side gone means every connection is: kubectl reports the lost connection.
        let upstreamLost = UpstreamLoss()
        let downstreamChannel = downstream.channel
        upstreamSession.closeFuture.whenComplete { _ in
            if downstreamChannel.isActive { upstreamLost.set() }
            Task { await client.close() }
        }

        // A shutdown past its grace period ends the session as a lost apiserver connection would,
        // with its own reason in the session's audit record.
        let endNotice = SessionEndNotice()
        let registration = await services.sessions.open { reason in
            endNotice.set(reason)
            await upstreamSession.close()
        }

        let clock = ContinuousClock()
        let start = clock.now
        let upstream = PortForwardClientSession(session: upstreamSession)
        let base = audit
        let totals = await withTaskGroup(of: PortForwardConnectionRecord.self) { group in
            for await connection in client.connections {
                group.addTask {
                    await self.serve(
                        connection, upstream: upstream, upstreamChannel: upstreamSession.channel, session: base)
                }
            }
            var totals = PortForwardSessionTotals()
            for await record in group { totals.add(record) }
            return totals
        }
        await upstream.close()
        // Closed last: a shutdown waits for it, so the record below is written.
        defer { services.sessions.close(registration) }
        let elapsed = clock.now - start

        audit.annotations.merge(totals.annotations) { _, new in new }
        audit.annotations["portcullis.dev/duration-seconds"] = PortForwardInterception.seconds(elapsed)
        let lost = upstreamLost.isSet || endNotice.reason != nil
        if let reason = endNotice.reason {
            audit.annotations["portcullis.dev/session-error"] = reason
        } else if lost {
            audit.annotations["portcullis.dev/session-error"] =
                "the connection to the Kubernetes API server ended before the client's"
        }
        services.record(audit)
        services.metrics.recordSession(
            subresource: "portforward", transport: transport.metricLabel, outcome: lost ? "error" : "success",
            duration: elapsed)
    }

    /// One forwarded connection: the port policy, then the bridge; always one audit line.
    private func serve(
        _ connection: PortForwardConnection, upstream: PortForwardClientSession, upstreamChannel: any Channel,
        session: AuditRecord
    ) async -> PortForwardConnectionRecord {
        let clock = ContinuousClock()
        let start = clock.now
        let context = PortForwardConnectionContext(
            sessionID: session.auditID, user: (session.impersonatedUser ?? session.user)?.name ?? "",
            namespace: session.info?.namespace ?? "", pod: session.info?.name ?? "", port: connection.port,
            requestID: connection.requestID)
        var inspector = inspectors.inspector(for: context)
        let decision = Self.connectionDecision(
            engine: policies.engine, audit: session, uri: request.head.uri, port: connection.port,
            protocolName: inspector.name, now: Date())
        var refusal = Self.refusal(decision, port: connection.port)
        var approval: String?
        if decision.outcome == .review, let approvals, let attributes = decision.attributes, let info = session.info {
            switch await Self.review(
                decision.decision, attributes: attributes, info: info, approvals: approvals, now: Date())
            {
            case .approved(let by): (refusal, approval) = (nil, by)
            case .refused(let message): refusal = message
            }
        }

        var capture: PortForwardCapture?
        var captureError: String?
        if refusal == nil, let settings = services.recordings, settings.capturePortForwards {
            do {
                let opened = try await PortForwardCapture(
                    directory: settings.directory, sessionID: session.auditID, requestID: connection.requestID,
                    port: connection.port)
                inspector = CapturingInspector(inner: inspector, capture: opened)
                capture = opened
            } catch {
                captureError = "\(error)"
            }
        }

        let summary: PortForwardSummary
        if let refusal {
            await connection.fail(message: refusal)
            summary = PortForwardSummary(bytesFromClient: 0, bytesToClient: 0, closeReason: .denied(refusal))
        } else if captureError != nil, services.recordings?.failClosed == true {
            let message = "this connection must be recorded and its capture cannot be opened"
            await connection.fail(message: message)
            summary = PortForwardSummary(bytesFromClient: 0, bytesToClient: 0, closeReason: .denied(message))
        } else {
            do {
                let pair = try await upstream.connect(port: connection.port, requestID: connection.requestID)
                summary = await PortForwardBridge(
                    downstream: connection, upstream: pair, inspector: inspector,
                    upstreamAlive: { upstreamChannel.isActive }
                ).run()
            } catch {
                let message = "the Kubernetes API server refused the connection's streams: \(error)"
                await connection.fail(message: message)
                services.metrics.recordUpstreamError()
                summary = PortForwardSummary(
                    bytesFromClient: 0, bytesToClient: 0, closeReason: .upstreamUnavailable(message))
            }
        }
        await capture?.close()
        if let capture, await capture.hasFailed { captureError = "a write to the capture failed; it is incomplete" }
        let record = PortForwardConnectionRecord(
            port: connection.port, requestID: connection.requestID, decision: decision.decision,
            inspector: inspector.name, summary: summary, duration: clock.now - start)
        var line = record.auditRecord(session: session)
        if let approval { line.annotations["portcullis.dev/approved"] = approval }
        if let capture { line.annotations["portcullis.dev/capture"] = capture.path }
        if let captureError { line.annotations["portcullis.dev/capture-error"] = captureError }
        services.audit.write(line)
        services.metrics.recordPortForwardConnection(record)
        return record
    }

    /// A duration in seconds with milliseconds, as the exec records write it.
    static func seconds(_ duration: Duration) -> String {
        String(
            format: "%.3f",
            Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18)
    }

    private func refuse(_ status: KubernetesStatus, audit: inout AuditRecord) async {
        audit.responseCode = status.code
        services.record(audit)
        await downstream.refuse(status)
    }

    /// A connection's decision and the attributes it was taken on.
    struct ConnectionDecision: Sendable {
        /// nil when the session has no identity (refused).
        var attributes: RequestAttributes?
        var decision: Decision

        var outcome: Decision.Outcome { decision.outcome }
    }

    /// The policy decision for one connection: the request's attributes plus `portForward`, with
    /// the policies in force now (a reload applies to the next connection). A request without an
    /// identity cannot get here; if it did, it is refused.
    static func connectionDecision(
        engine: PolicyEngine, audit: AuditRecord, uri: String, port: UInt16, protocolName: String, now: Date
    ) -> ConnectionDecision {
        guard let info = audit.info, let user = audit.impersonatedUser ?? audit.user else {
            return ConnectionDecision(
                attributes: nil,
                decision: Decision(outcome: .deny, message: "port-forward connection without an identity"))
        }
        var attributes = info.attributes(user: user, query: RequestInfo.query(of: uri))
        attributes.portForward = .init(port: Int(port), protocol: protocolName)
        return ConnectionDecision(attributes: attributes, decision: engine.evaluate(attributes, now: now))
    }

    /// The text for the connection's error stream when the decision refuses it; nil to forward.
    /// kubectl prints it as "an error occurred forwarding LOCAL -> PORT: TEXT". A Review is refused
    /// here too; ``review(_:attributes:info:approvals:now:)`` lets it through when approved.
    static func refusal(_ decision: ConnectionDecision, port: UInt16) -> String? {
        let message =
            decision.decision.message.isEmpty ? "port \(port) may not be forwarded" : decision.decision.message
        switch decision.outcome {
        case .allow: return nil
        case .deny: return "Forbidden: \(message)"
        case .review: return "Forbidden: \(message) (this port needs an approval, and approvals are not configured)"
        }
    }

    /// How a connection to a port that a Review rule holds fares.
    enum ReviewOutcome: Sendable, Equatable {
        /// An approval covers it: who approved which AccessRequest.
        case approved(String)
        /// The text for its error stream.
        case refused(String)
    }

    /// A connection to a port that a Review rule holds goes through when an approval covers this
    /// user, pod and port (for the rule's `grantFor`); otherwise it is refused with the
    /// AccessRequest to approve, filed on the first try. It does not wait for the approver, as a
    /// held exec line does: kubectl ends its whole session after a refused connection, so the user
    /// starts it again once approved, and a client blocked on connect would time out anyway.
    static func review(
        _ decision: Decision, attributes: RequestAttributes, info: RequestInfo, approvals: any ApprovalStore,
        now: Date
    ) async -> ReviewOutcome {
        guard let review = decision.review else { return .refused("Forbidden: \(decision.message)") }
        let approvers = ProxyGate.describeApprovers(review)
        let spec = AccessRequest.Spec.held(
            attributes: attributes, info: info, review: review, message: decision.message)
        let verdict: ApprovalVerdict
        do {
            verdict = try await approvals.check(spec, now: now)
        } catch {
            return .refused("Forbidden: \(decision.message); approvals cannot be checked right now (\(error))")
        }
        let through = approvals is LocalApprovals ? " through this proxy" : ""
        let how =
            "an approver (\(approvers)) runs\(through): kubectl portcullis approve -n \(approvals.namespace)"
        switch verdict {
        case .granted(let name, let approvedBy):
            return .approved("\(approvals.namespace)/\(name) by \(approvedBy)")
        case .pending(let name):
            return .refused(
                "Forbidden: \(decision.message): waiting for approval of AccessRequest \(name); \(how) \(name); then forward again"
            )
        case .requested(let name):
            return .refused(
                "Forbidden: \(decision.message): approval requested as AccessRequest \(name); \(how) \(name); then forward again"
            )
        }
    }
}

/// One connection's outcome, for its audit line, the metrics and the session's totals.
struct PortForwardConnectionRecord: Sendable {
    let port: UInt16
    let requestID: String
    let decision: Decision
    let inspector: String
    let summary: PortForwardSummary
    let duration: Duration

    /// A line joined to the session's by its auditID (the session id): the connection's decision,
    /// port, bytes each way, duration and why it closed.
    func auditRecord(session: AuditRecord) -> AuditRecord {
        var record = session
        record.stage = "ResponseComplete"
        record.decision = decision
        switch summary.closeReason {
        case .denied: record.responseCode = 403
        case .upstreamUnavailable, .upstreamLost: record.responseCode = 502
        default: record.responseCode = 101
        }
        record.annotations["portcullis.dev/port-forward-connection"] = requestID
        record.annotations["portcullis.dev/port"] = String(port)
        record.annotations["portcullis.dev/inspector"] = inspector
        record.annotations["portcullis.dev/bytes-in"] = String(summary.bytesFromClient)
        record.annotations["portcullis.dev/bytes-out"] = String(summary.bytesToClient)
        record.annotations["portcullis.dev/duration-seconds"] = PortForwardInterception.seconds(duration)
        record.annotations["portcullis.dev/close-reason"] = summary.closeReason.description
        if let message = summary.closeReason.message {
            record.annotations["portcullis.dev/connection-error"] = message
        }
        return record
    }
}

/// What a port-forward session's end record adds up.
struct PortForwardSessionTotals: Sendable, Equatable {
    var connections = 0
    var denied = 0
    var bytesIn = 0
    var bytesOut = 0

    mutating func add(_ record: PortForwardConnectionRecord) {
        connections += 1
        if case .denied = record.summary.closeReason { denied += 1 }
        bytesIn += record.summary.bytesFromClient
        bytesOut += record.summary.bytesToClient
    }

    var annotations: [String: String] {
        [
            "portcullis.dev/connections": String(connections), "portcullis.dev/connections-denied": String(denied),
            "portcullis.dev/bytes-in": String(bytesIn), "portcullis.dev/bytes-out": String(bytesOut),
        ]
    }
}

extension ProxyMetrics {
    /// One finished port-forward connection, by how it closed, and the bytes it carried.
    func recordPortForwardConnection(_ record: PortForwardConnectionRecord) {
        registry.makeCounter(
            descriptor: MetricNameDescriptor(
                namespace: "portcullis", subsystem: "proxy", metricName: "portforward_connections", unitName: "total",
                helpText: "Port-forward connections, by how they closed (denied, completed, upstream-error, ...)."),
            labels: [("close_reason", record.summary.closeReason.description)]
        ).increment()
        for (direction, bytes) in [
            ("client-to-pod", record.summary.bytesFromClient), ("pod-to-client", record.summary.bytesToClient),
        ] {
            registry.makeCounter(
                descriptor: MetricNameDescriptor(
                    namespace: "portcullis", subsystem: "proxy", metricName: "portforward", unitName: "bytes_total",
                    helpText: "Bytes carried by port-forward connections, by direction."),
                labels: [("direction", direction)]
            ).increment(by: Int64(bytes))
        }
    }
}

/// Set when the apiserver's side of a session closed while the client's was still open.
private final class UpstreamLoss: Sendable {
    private let value = Mutex(false)

    func set() { value.withLock { $0 = true } }
    var isSet: Bool { value.withLock { $0 } }
}
