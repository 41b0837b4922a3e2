import NIOHTTP1
import SPDY
import Testing

@testable import KubeProxy

/// The pure decisions of the exec/attach interception: which transport the client asked for,
/// what goes upstream, what the audit and recording say.
@Suite("RemoteCommandInterception")
struct RemoteCommandInterceptionTests {
    @Test("SPDY clients keep their offered versions, unknown ones dropped; none known is refused")
    func spdyTransport() throws {
        let headers = HTTPHeaders([
            ("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1"),
            ("X-Stream-Protocol-Version", "v5.channel.k8s.io"), ("X-Stream-Protocol-Version", "v9.example"),
            ("X-Stream-Protocol-Version", "v4.channel.k8s.io, channel.k8s.io"),
        ])
        let transport = try RemoteCommandInterception.clientTransport(headers).get()
        #expect(transport == .spdy(offered: ["v5.channel.k8s.io", "v4.channel.k8s.io", "channel.k8s.io"]))
        #expect(transport.upstreamVersions == ["v5.channel.k8s.io", "v4.channel.k8s.io", "channel.k8s.io"])
        let unknown = HTTPHeaders([
            ("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1"), ("X-Stream-Protocol-Version", "v9.example"),
        ])
        guard case .failure(let refusal) = RemoteCommandInterception.clientTransport(unknown) else {
            Issue.record("an offer with no known version must be refused")
            return
        }
        #expect(refusal.status.code == 403)
    }

    @Test("WebSocket clients get v5 or v4 and SPDY v5/v4 upstream; legacy or malformed offers get 400")
    func webSocketTransport() throws {
        var headers = HTTPHeaders([
            ("Connection", "Upgrade"), ("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Protocol", "v5.channel.k8s.io"),
        ])
        let transport = try RemoteCommandInterception.clientTransport(headers).get()
        #expect(transport == .webSocket(key: "dGhlIHNhbXBsZSBub25jZQ==", protocolName: "v5.channel.k8s.io"))
        #expect(transport.upstreamVersions == ["v5.channel.k8s.io", "v4.channel.k8s.io"])
        headers.replaceOrAdd(name: "Sec-WebSocket-Protocol", value: "base64.channel.k8s.io, channel.k8s.io")
        guard case .failure(let legacy) = RemoteCommandInterception.clientTransport(headers) else {
            Issue.record("legacy subprotocols are refused so that clients fall back to SPDY")
            return
        }
        #expect(legacy.status.code == 400)
        headers.replaceOrAdd(name: "Sec-WebSocket-Protocol", value: "v4.channel.k8s.io")
        headers.replaceOrAdd(name: "Sec-WebSocket-Version", value: "8")
        guard case .failure = RemoteCommandInterception.clientTransport(headers) else {
            Issue.record("only WebSocket version 13 is accepted")
            return
        }
    }

    @Test("the upstream request keeps the gate's identity headers and drops the client's upgrade headers")
    func upstreamHeaders() {
        let gate = HTTPHeaders([
            ("Host", "apiserver:6443"), ("Authorization", "Bearer proxy-token"), ("Impersonate-User", "alice"),
            ("Impersonate-Extra-portcullis.dev%2fsession", "s1"), ("User-Agent", "kubectl/v1.33.1"),
            ("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Key", "k"),
            ("Sec-WebSocket-Protocol", "v5.channel.k8s.io"), ("Sec-WebSocket-Version", "13"),
            ("X-Stream-Protocol-Version", "v4.channel.k8s.io"), ("Content-Length", "0"),
        ])
        let upstream = RemoteCommandInterception.upstreamHeaders(gate)
        #expect(
            upstream.map(\.name) == [
                "Host", "Authorization", "Impersonate-User", "Impersonate-Extra-portcullis.dev%2fsession", "User-Agent",
            ])
        #expect(upstream.first(name: "Authorization") == "Bearer proxy-token")
    }

    @Test(
        "the kubectl version comes from the User-Agent, also for kubectl.1.x binaries",
        arguments: [
            ("kubectl/v1.33.1 (linux/amd64) kubernetes/8adc0f0", "v1.33.1"),
            ("kubectl.1.27/v1.27.16 (linux/amd64) kubernetes/cbb86e0", "v1.27.16"),
            ("Python-urllib/3.11", nil),
        ])
    func kubectlVersion(userAgent: String, version: String?) {
        #expect(RemoteCommandInterception.kubectlVersion(userAgent: userAgent) == version)
    }

    @Test("the end of a session is summed up for the audit record and the recording")
    func endOfSession() {
        let summary = RemoteCommandSummary(status: .exited(3), bytesIn: 5, bytesOut: 42, upstreamStatus: true)
        let annotations = RemoteCommandInterception.endAnnotations(summary, elapsed: .milliseconds(1500))
        #expect(annotations["portcullis.dev/exit-code"] == "3")
        #expect(annotations["portcullis.dev/bytes-in"] == "5")
        #expect(annotations["portcullis.dev/bytes-out"] == "42")
        #expect(annotations["portcullis.dev/duration-seconds"] == "1.500")
        #expect(RemoteCommandInterception.finalMarker(.exited(3)) == "exit 3")
        #expect(RemoteCommandInterception.finalMarker(.success) == "exit 0")
        let lost = RemoteCommandSummary(
            status: .failure(message: "lost", reason: "InternalError", code: 500), bytesIn: 0, bytesOut: 0,
            upstreamStatus: false)
        let failed = RemoteCommandInterception.endAnnotations(lost, elapsed: .zero)
        #expect(failed["portcullis.dev/exit-code"] == nil)
        #expect(failed["portcullis.dev/session-error"] == "lost")
        #expect(RemoteCommandInterception.finalMarker(lost.status) == "error: lost")
    }

    @Test("finished sessions are counted by transport and outcome")
    func sessionMetrics() {
        let metrics = ProxyMetrics()
        metrics.recordSession(
            subresource: "exec", transport: "websocket", outcome: RemoteCommandInterception.outcome(.exited(3)),
            duration: .seconds(2))
        let text = metrics.render()
        #expect(
            text.contains(
                #"portcullis_proxy_sessions_total{subresource="exec",transport="websocket",outcome="exit-code"} 1"#),
            "\(text)")
        #expect(text.contains("portcullis_proxy_session_duration_seconds_count 1"))
    }

    @Test("checked lines are counted in the session's audit annotations and the metrics, by outcome")
    func lineCounts() {
        var summary = RemoteCommandSummary(status: .success, bytesIn: 10, bytesOut: 20, upstreamStatus: true)
        #expect(
            RemoteCommandInterception.endAnnotations(summary, elapsed: .zero)["portcullis.dev/lines-checked"] == nil)
        summary.lines = .init(checked: 5, blocked: 2, approved: 1)
        let annotations = RemoteCommandInterception.endAnnotations(summary, elapsed: .zero)
        #expect(annotations["portcullis.dev/lines-checked"] == "5")
        #expect(annotations["portcullis.dev/lines-blocked"] == "2")
        #expect(annotations["portcullis.dev/lines-approved"] == "1")
        let metrics = ProxyMetrics()
        metrics.recordLines(summary.lines ?? .init())
        let text = metrics.render()
        #expect(text.contains(#"portcullis_proxy_exec_lines_total{outcome="allowed"} 2"#), "\(text)")
        #expect(text.contains(#"portcullis_proxy_exec_lines_total{outcome="blocked"} 2"#))
        #expect(text.contains(#"portcullis_proxy_exec_lines_total{outcome="approved"} 1"#))
    }
}
