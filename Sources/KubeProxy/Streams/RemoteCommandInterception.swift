import Foundation
import NIOCore
import NIOHTTP1
import Policy
import SPDY

/// One authorized exec or attach, terminated at the proxy and re-originated (protocols.md §7.1
/// option 4): why terminate rather than splice is in docs/proxy.md.
///
/// ```
///  client transport? ──no──▶ 400 (kubectl falls back from WebSocket to SPDY)
///        │
///  upstream TLS + SPDY upgrade (the client's versions, the gate's impersonation headers)
///        ├──refused──▶ the apiserver's response, as is (RBAC 403, …)
///  recording opened ──fails, failClosed──▶ 500
///        │
///  upstream streams ──▶ 101 to the client (SPDY, or WebSocket v5/v4) ──▶ bridge ──▶ status, audit
/// ```
/// Nothing the client sends reaches the apiserver before the upstream accepted the request, and
/// the client's credentials never leave the proxy: upstream sees only the gate's headers.
struct RemoteCommandInterception: Sendable {
    let request: UpstreamRequest
    let clientHead: HTTPRequestHead
    let audit: AuditRecord
    let pool: UpstreamConnectionPool
    let services: ProxyServices
    /// For the lines typed into the session.
    let policies: PolicyStore
    let approvals: (any ApprovalStore)?
    let downstream: DownstreamConnection

    /// The WebSocket subprotocols served to clients (binary v5 and v4, base64 v4); the legacy v1
    /// names have no exit codes and are refused, so such clients fall back to SPDY.
    static let webSocketProtocols = ["v5.channel.k8s.io", "v4.channel.k8s.io", "v4.base64.channel.k8s.io"]
    /// What is offered upstream for a WebSocket client: its v5/v4 semantics over SPDY (v5 over
    /// SPDY is v4; stdin CLOSE becomes a FIN, which SPDY has from v2).
    static let upstreamVersionsForWebSocket = [RemoteCommandProtocol.v5.rawValue, RemoteCommandProtocol.v4.rawValue]
    /// See ``RemoteCommandBridge/outputDelay``.
    static let webSocketOutputDelay: Duration = .milliseconds(150)

    /// The transport the client asked for.
    enum ClientTransport: Sendable, Equatable {
        case spdy(offered: [String])
        case webSocket(key: String, protocolName: String)

        var upstreamVersions: [String] {
            switch self {
            case .spdy(let offered): offered
            case .webSocket: RemoteCommandInterception.upstreamVersionsForWebSocket
            }
        }
    }

    /// Reads the client's upgrade request: SPDY with at least one known remote-command version, or
    /// WebSocket version 13 with a subprotocol we serve.
    static func clientTransport(_ headers: HTTPHeaders) -> Result<ClientTransport, KubernetesStatusError> {
        let upgrade = headers["Upgrade"].map { $0.lowercased() }
        if upgrade.contains(where: { $0.contains("websocket") }) {
            guard headers.first(name: "Sec-WebSocket-Version") == "13",
                let key = headers.first(name: "Sec-WebSocket-Key"), !key.isEmpty
            else {
                return .failure(.init(.badRequest("a WebSocket upgrade needs Sec-WebSocket-Version 13 and a key")))
            }
            guard let chosen = KubernetesWebSocket.negotiate(headers, supported: webSocketProtocols) else {
                return .failure(
                    .init(
                        .badRequest("supported WebSocket subprotocols: \(webSocketProtocols.joined(separator: ", "))")))
            }
            return .success(.webSocket(key: key, protocolName: chosen))
        }
        let known = Set(RemoteCommandProtocol.all.map(\.rawValue))
        let offered = SPDYHandshake.offeredProtocolVersions(headers).filter(known.contains)
        guard !offered.isEmpty else {
            return .failure(
                .init(.forbidden("supported remote command protocols: \(known.sorted().joined(separator: ", "))")))
        }
        return .success(.spdy(offered: offered))
    }

    /// Establishes the session, then serves it in a task of its own and returns.
    ///
    /// Why two tasks: a task keeps the memory its async frames grew to until it ends, and
    /// establishing takes 12 KiB of frames that a session sitting idle for hours should not hold
    /// (docs/benchmarks.md). The serving task's frames are the bridge's, about 6 KiB.
    func run() async {
        guard let session = await establish() else { return }
        Task { await serve(session) }
    }

    /// Both sides of an established session, and what its end needs: built by ``establish()``.
    private final class EstablishedSession: Sendable {
        let audit: AuditRecord
        let parameters: StreamParameters
        let transport: ClientTransport
        let client: RemoteCommandSession
        let upstream: RemoteCommandClientSession
        let recorder: SessionRecorder?
        let lineGuard: StdinLineGuard?

        init(
            audit: AuditRecord, parameters: StreamParameters, transport: ClientTransport,
            client: RemoteCommandSession, upstream: RemoteCommandClientSession, recorder: SessionRecorder?,
            lineGuard: StdinLineGuard?
        ) {
            self.audit = audit
            self.parameters = parameters
            self.transport = transport
            self.client = client
            self.upstream = upstream
            self.recorder = recorder
            self.lineGuard = lineGuard
        }
    }

    /// Bridges the session until it ends, then finishes its recording and its record.
    private func serve(_ session: EstablishedSession) async {
        let (summary, elapsed, copy, registration) = await bridge(session)
        // Closed last: a shutdown waits for it, so the recording and the record below are written.
        defer { services.sessions.close(registration) }
        await conclude(session, copy: copy, summary: summary, elapsed: elapsed)
    }

    /// Opens the upstream streams, the recording and the client's side; nil when the session was
    /// refused or failed (answered and audited here).
    private func establish() async -> EstablishedSession? {
        var audit = self.audit
        let transport: ClientTransport
        switch Self.clientTransport(clientHead.headers) {
        case .success(let chosen): transport = chosen
        case .failure(let refusal):
            await refuse(refusal.status, audit: &audit)
            return nil
        }
        let parameters = StreamParameters(query: RequestInfo.query(of: request.head.uri))
        let options = RemoteCommandOptions(
            stdin: parameters.stdin, stdout: parameters.stdout, stderr: parameters.stderr && !parameters.tty,
            tty: parameters.tty)

        // Upstream first: its refusal (RBAC, a missing pod) is what the client must see.
        let upstreamChannel: any Channel
        let handshake: SPDYClientUpgradeResult
        let (uri, headers) = (request.head.uri, Self.upstreamHeaders(request.head.headers))
        switch await pool.upgrade(
            on: downstream.channel.eventLoop,
            { [transport] channel in
                try await SPDYClientHandshake.upgrade(
                    channel: channel, method: .POST, uri: uri, headers: headers,
                    protocolVersions: transport.upstreamVersions)
            })
        {
        case .success(let upgraded):
            (upstreamChannel, handshake) = upgraded
        case .failure(.unreachable(let error)):
            services.metrics.recordUpstreamError()
            await refuse(.unavailable("the Kubernetes API server is unreachable: \(error)"), audit: &audit)
            return nil
        case .failure(.handshakeFailed(let error)):
            services.metrics.recordUpstreamError()
            await refuse(.badGateway("the upgrade to the Kubernetes API server failed: \(error)"), audit: &audit)
            return nil
        }
        // A client that leaves takes its upstream connection with it (the command sees its streams end).
        downstream.channel.closeFuture.whenComplete { _ in upstreamChannel.close(promise: nil) }
        let upstreamSession: SPDYSession
        let upstreamVersion: String?
        switch handshake {
        case .rejected(let head, let body):
            upstreamChannel.close(promise: nil)
            audit.responseCode = Int(head.status.code)
            services.record(audit)
            await downstream.refuse(head, body: body)
            return nil
        case .upgraded(let session, let version):
            upstreamSession = session
            upstreamVersion = version
        }

        var recorder: SessionRecorder?
        if let settings = services.recordings {
            do {
                recorder = try SessionRecorder(
                    settings: settings, sessionID: audit.auditID,
                    header: Self.recordingHeader(
                        audit: audit, parameters: parameters, transport: transport,
                        cluster: "\(pool.configuration.host):\(pool.configuration.port)"))
                audit.annotations["portcullis.dev/recording"] = recorder?.path
            } catch {
                audit.annotations["portcullis.dev/recording-error"] = "\(error)"
                if settings.failClosed {
                    await upstreamSession.close()
                    await refuse(
                        KubernetesStatus(
                            code: 500, reason: "InternalError",
                            message: "this session must be recorded and the recording cannot be opened"),
                        audit: &audit)
                    return nil
                }
            }
        }

        let upstream: RemoteCommandClientSession
        do {
            upstream = try await RemoteCommandSPDYClient.start(
                session: upstreamSession, protocolVersion: upstreamVersion, options: options)
        } catch {
            await recorder?.finish(marker: "error: \(error)")
            await refuse(.badGateway("the Kubernetes API server refused the streams: \(error)"), audit: &audit)
            return nil
        }

        let client: RemoteCommandSession
        let transportName: String
        do {
            switch transport {
            case .spdy:
                let version = upstream.protocolVersion.rawValue
                transportName = "spdy/\(version)"
                let session = try await downstream.acceptSPDY(protocolVersion: version)
                client = try await RemoteCommandSPDYServer.accept(
                    session: session, protocolVersion: version, options: options)
            case .webSocket(let key, let protocolName):
                transportName = "websocket/\(protocolName)"
                client = try await downstream.acceptWebSocket(key: key, protocolName: protocolName, options: options)
            }
        } catch {
            // The 101 may be out already: the connection is all that can be closed.
            await upstream.close()
            downstream.channel.close(promise: nil)
            await recorder?.finish(marker: "error: the client did not complete the session: \(error)")
            audit.annotations["portcullis.dev/session-error"] = "\(error)"
            audit.responseCode = 101
            services.record(audit)
            return nil
        }

        audit.responseCode = 101
        audit.annotations["portcullis.dev/transport"] = transportName
        let lineGuard = makeLineGuard(options: options, audit: &audit)
        var started = audit
        started.stage = "ResponseStarted"
        services.record(started)
        for label in Self.decisionMarkers(audit) { await recorder?.marker(label) }
        return EstablishedSession(
            audit: audit, parameters: parameters, transport: transport, client: client, upstream: upstream,
            recorder: recorder, lineGuard: lineGuard)
    }

    /// Bridges the two sides until the session ends: what the session holds while it runs. Not
    /// inlined, nor is ``conclude(_:copy:summary:elapsed:)``: an inlined callee's locals join the
    /// caller's frame, which ``serve(_:)`` allocates on entry and holds for the whole session.
    @inline(never)
    private func bridge(
        _ session: EstablishedSession
    ) async -> (RemoteCommandSummary, Duration, CopyRecorder?, ActiveSessions.Registration) {
        let recorder = session.recorder
        // A `kubectl cp` is recorded as the files it moved, not as a raw archive.
        let copy = CopyDirection(command: session.parameters.command).map {
            CopyRecorder(direction: $0, recording: recorder)
        }
        // Without a terminal no resize comes to size the header: it goes out now, so the file
        // shows the session at once and an idle session holds no header in memory.
        if !session.parameters.tty { await recorder?.writeHeader() }
        let observer: (any RemoteCommandObserver)? = copy ?? recorder

        let clock = ContinuousClock()
        let start = clock.now
        let masks = session.audit.decision?.masks ?? []
        let masker = StreamOutputMasker(masks: masks)
        if masker != nil {
            for mask in masks where !mask.spec.patterns.isEmpty {
                await recorder?.marker("masking output: \(mask.rule)")
            }
        }
        let bridge = RemoteCommandBridge(
            downstream: session.client, upstream: session.upstream, observer: observer,
            lineGuard: session.lineGuard,
            outputDelay: Self.isWebSocket(session.transport) ? Self.webSocketOutputDelay : .zero,
            outputMasker: masker)
        let registration = await services.sessions.open { reason in await bridge.end(reason: reason) }
        let summary = await bridge.run()
        return (summary, clock.now - start, copy, registration)
    }

    /// Finishes the recording and writes the session's end record and metrics.
    @inline(never)
    private func conclude(
        _ session: EstablishedSession, copy: CopyRecorder?, summary: RemoteCommandSummary, elapsed: Duration
    ) async {
        let recorder = session.recorder
        var audit = session.audit
        if let copy {
            await recorder?.marker(await copy.summary())
            audit.annotations.merge(await copy.annotations) { _, new in new }
        }
        await recorder?.finish(marker: Self.finalMarker(summary.status))
        if await recorder?.hasFailed == true {
            audit.annotations["portcullis.dev/recording-error"] = "a write to the recording failed; it is incomplete"
        }
        audit.annotations.merge(Self.endAnnotations(summary, elapsed: elapsed)) { _, new in new }
        services.record(audit)
        services.metrics.recordSession(
            subresource: audit.info?.subresource ?? "",
            transport: Self.isWebSocket(session.transport) ? "websocket" : "spdy",
            outcome: Self.outcome(summary.status), duration: elapsed)
        if let lines = summary.lines { services.metrics.recordLines(lines) }
    }

    /// A guard on stdin when the session has one and some policy in force reads `exec.line` for
    /// this request; otherwise nil, and stdin goes up untouched.
    private func makeLineGuard(options: RemoteCommandOptions, audit: inout AuditRecord) -> StdinLineGuard? {
        guard options.stdin, let attributes = request.attributes, let info = audit.info else { return nil }
        let readers = policies.engine.execLinePolicies(for: attributes, now: audit.receivedAt)
        guard !readers.isEmpty else { return nil }
        audit.annotations["portcullis.dev/line-checks"] = readers.joined(separator: ",")
        return StdinLineGuard(
            terminal: options.tty,
            judge: ExecLineJudge(
                policies: policies, attributes: attributes, info: info, approvals: approvals,
                settings: services.lineChecks))
    }

    private func refuse(_ status: KubernetesStatus, audit: inout AuditRecord) async {
        audit.responseCode = status.code
        services.record(audit)
        await downstream.refuse(status)
    }

    static func isWebSocket(_ transport: ClientTransport) -> Bool {
        if case .webSocket = transport { return true }
        return false
    }

    /// The gate's headers minus what belongs to the client's own upgrade: the SPDY handshake adds
    /// `Connection`, `Upgrade` and the versions it offers.
    static func upstreamHeaders(_ headers: HTTPHeaders) -> HTTPHeaders {
        var result = HTTPHeaders()
        for (name, value) in headers {
            let lower = name.lowercased()
            if ["upgrade", "connection", "content-length", "x-stream-protocol-version"].contains(lower)
                || lower.hasPrefix("sec-websocket-")
            {
                continue
            }
            result.add(name: name, value: value)
        }
        return result
    }

    /// The exit code kubectl will show, or nil for a failure that is not an exit.
    static func exitCode(_ status: RemoteCommandStatus) -> Int? {
        switch status {
        case .success: 0
        case .exitCode(let code, _): code
        case .failure: nil
        }
    }

    /// The `outcome` label of the session metric.
    static func outcome(_ status: RemoteCommandStatus) -> String {
        switch status {
        case .success: "success"
        case .exitCode: "exit-code"
        case .failure: "error"
        }
    }

    static func finalMarker(_ status: RemoteCommandStatus) -> String {
        switch status {
        case .success: "exit 0"
        case .exitCode(let code, _): "exit \(code)"
        case .failure(let message, _, _): "error: \(message)"
        }
    }

    static func endAnnotations(_ summary: RemoteCommandSummary, elapsed: Duration) -> [String: String] {
        var annotations = [
            "portcullis.dev/bytes-in": String(summary.bytesIn),
            "portcullis.dev/bytes-out": String(summary.bytesOut),
            "portcullis.dev/masked-matches": String(summary.maskedMatches),
            "portcullis.dev/duration-seconds": String(
                format: "%.3f", Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18),
        ]
        if let lines = summary.lines {
            annotations["portcullis.dev/lines-checked"] = String(lines.checked)
            annotations["portcullis.dev/lines-blocked"] = String(lines.blocked)
            annotations["portcullis.dev/lines-approved"] = String(lines.approved)
        }
        if let code = exitCode(summary.status) {
            annotations["portcullis.dev/exit-code"] = String(code)
        } else if case .failure(let message, _, _) = summary.status {
            annotations["portcullis.dev/session-error"] = message
        }
        return annotations
    }

    /// The policy outcome as recording markers: the decision, the rule, warnings, an approval.
    static func decisionMarkers(_ audit: AuditRecord) -> [String] {
        guard let decision = audit.decision else { return [] }
        var markers = ["policy: \(decision.outcome.rawValue)" + (decision.decidedBy.map { " by \($0)" } ?? "")]
        markers += decision.warnings.map { "policy warning: \($0)" }
        if let approval = audit.annotations["portcullis.dev/approved"] { markers.append("approved: \(approval)") }
        if let readers = audit.annotations["portcullis.dev/line-checks"] {
            markers.append("typed lines are checked by: \(readers)")
        }
        return markers
    }

    /// The header of the session's recording (width and height are set from the first resize).
    static func recordingHeader(
        audit: AuditRecord, parameters: StreamParameters, transport: ClientTransport, cluster: String
    ) -> AsciicastEncoder.Header {
        let info = audit.info
        let user = audit.user
        var fields: [String: AsciicastValue] = [
            "session": .string(audit.auditID),
            "cluster": .string(cluster),
            "user": .string(user?.name ?? ""),
            "groups": .array((user?.groups ?? []).map { .string($0) }),
            "namespace": .string(info?.namespace ?? ""),
            "pod": .string(info?.name ?? ""),
            "container": .string(parameters.container),
            "subresource": .string(info?.subresource ?? ""),
            "command": .array(parameters.command.map { .string($0) }),
            "tty": .bool(parameters.tty),
            "stdin": .bool(parameters.stdin),
            "transport": .string(isWebSocket(transport) ? "websocket" : "spdy"),
            "userAgent": .string(audit.userAgent),
        ]
        if let version = kubectlVersion(userAgent: audit.userAgent) { fields["kubectlVersion"] = .string(version) }
        let target = [info?.namespace ?? "", info?.name ?? "", parameters.container].filter { !$0.isEmpty }
            .joined(separator: "/")
        return AsciicastEncoder.Header(
            width: 80, height: 24, timestamp: audit.receivedAt,
            command: parameters.command.isEmpty ? nil : parameters.command.joined(separator: " "),
            title: "\(user?.name ?? "?") \(info?.subresource ?? "exec") \(target)", portcullis: fields)
    }

    /// `v1.33.1` from `kubectl/v1.33.1 (linux/amd64) kubernetes/8adc0f0`.
    static func kubectlVersion(userAgent: String) -> String? {
        guard userAgent.hasPrefix("kubectl") else { return nil }
        let product = userAgent.split(separator: " ").first ?? ""
        let parts = product.split(separator: "/", maxSplits: 1)
        return parts.count == 2 ? String(parts[1]) : nil
    }
}

/// A status to answer with, carried through `Result`.
struct KubernetesStatusError: Error {
    let status: KubernetesStatus
    init(_ status: KubernetesStatus) { self.status = status }
}
