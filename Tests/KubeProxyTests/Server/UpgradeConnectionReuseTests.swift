import Testing

@testable import KubeProxy

/// An exec upgrade goes out on the pooled connection an earlier request left; when the apiserver
/// has closed that one just as the upgrade arrives, the proxy sends it again on a new connection.
@Suite("Upgrades on pooled upstream connections")
struct UpgradeConnectionReuseTests {
    static let getThenExec =
        "GET /api/v1/namespaces/dev/configmaps/a HTTP/1.1\r\nHost: proxy\r\nAuthorization: Bearer alice-token\r\n\r\n"
        + "POST /api/v1/namespaces/dev/pods/web/exec?command=sh&stdin=true&stdout=true HTTP/1.1\r\nHost: proxy\r\n"
        + "Authorization: Bearer alice-token\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
        + "X-Stream-Protocol-Version: v4.channel.k8s.io\r\nContent-Length: 0\r\n\r\n"

    @Test("a pooled connection closed under the upgrade is replaced, and the apiserver's answer reaches the client")
    func closedPooledConnectionIsReplaced() async throws {
        let harness = try await ProxyHarness(policies: RequestSmugglingTests.policies)
        defer { Task { try? await harness.shutdown() } }
        let exchange = try await harness.send(Self.getThenExec, wait: .seconds(10))
        // 403 is the upstream's refusal on the new connection; without the retry it would be 502.
        #expect(exchange.codes == [200, 403], "\(exchange.response)")
        #expect(exchange.response.contains(#""reason":"Forbidden""#))
        let execs = harness.upstream.requests.withLock { $0.filter { $0.uri.contains("/exec?") } }
        #expect(execs.count == 2, "sent on the pooled connection, then on a new one")
    }
}
