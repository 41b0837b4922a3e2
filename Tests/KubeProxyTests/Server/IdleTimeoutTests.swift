import Foundation
import Testing

@testable import KubeProxy

/// `listen.idleTimeoutSeconds`: a client connection that sends nothing while no request is in
/// flight is closed; one waiting for a response is not. 5 s, not less: at the start of a full run
/// the two cores are busy enough that a TLS handshake can pause for seconds (a fresh-clone run
/// closed one at 3 s before the client had written its request).
@Suite("Client connection idle timeout")
struct IdleTimeoutTests {
    static let get =
        "GET /api/v1/namespaces/dev/configmaps/a HTTP/1.1\r\nHost: proxy\r\nAuthorization: Bearer alice-token\r\n\r\n"

    @Test("a keep-alive connection idle after its response is closed after the timeout")
    func idleAfterResponse() async throws {
        let harness = try await ProxyHarness(policies: RequestSmugglingTests.policies, idleTimeout: .seconds(5))
        defer { Task { try? await harness.shutdown() } }
        let exchange = try await harness.send(Self.get, wait: .seconds(30))
        #expect(exchange.codes == [200], "\(exchange.response)")
        #expect(exchange.closedByProxy)
    }

    @Test("a request head that stops arriving is closed after the timeout, and nothing is forwarded")
    func stalledHead() async throws {
        let harness = try await ProxyHarness(policies: RequestSmugglingTests.policies, idleTimeout: .seconds(5))
        defer { Task { try? await harness.shutdown() } }
        let exchange = try await harness.send(
            "GET /api/v1/namespaces/dev/configmaps/a HTTP/1.1\r\nHost: proxy\r\n", wait: .seconds(30))
        #expect(exchange.closedByProxy)
        #expect(exchange.codes.isEmpty, "\(exchange.response)")
        #expect(harness.upstream.requests.withLock { $0.isEmpty })
    }

    @Test("a response slower than the timeout still arrives: waiting for the upstream is not idle")
    func slowResponse() async throws {
        let harness = try await ProxyHarness(policies: RequestSmugglingTests.policies, idleTimeout: .seconds(5))
        defer { Task { try? await harness.shutdown() } }
        let exchange = try await harness.send(
            Self.get.replacingOccurrences(of: "configmaps/a", with: "configmaps/a?slow"), wait: .seconds(30))
        #expect(exchange.codes == [200], "\(exchange.response)")
        #expect(exchange.closedByProxy, "then idle, and closed")
    }

    @Test("after a response, the keep-alive timeout closes the connection well before the idle timeout")
    func keepAliveAfterResponse() async throws {
        let harness = try await ProxyHarness(
            policies: RequestSmugglingTests.policies, idleTimeout: .seconds(60), keepAliveTimeout: .seconds(5))
        defer { Task { try? await harness.shutdown() } }
        let exchange = try await harness.send(Self.get, wait: .seconds(50))
        #expect(exchange.codes == [200], "\(exchange.response)")
        #expect(exchange.closedByProxy)
        #expect(exchange.elapsed >= .milliseconds(4_500) && exchange.elapsed < .seconds(30), "\(exchange.elapsed)")
    }

    @Test("the keep-alive timeout does not cut a request that stopped arriving: that waits for the idle timeout")
    func keepAliveSparesStalledRequest() async throws {
        let harness = try await ProxyHarness(
            policies: RequestSmugglingTests.policies, idleTimeout: .seconds(12), keepAliveTimeout: .seconds(4))
        defer { Task { try? await harness.shutdown() } }
        let exchange = try await harness.send(
            "GET /api/v1/namespaces/dev/configmaps/a HTTP/1.1\r\nHost: proxy\r\n", wait: .seconds(40))
        #expect(exchange.closedByProxy)
        #expect(exchange.elapsed >= .milliseconds(11_500), "\(exchange.elapsed)")
        #expect(harness.upstream.requests.withLock { $0.isEmpty })
    }

    @Test("the idle timeout counts from the last byte, also when it only continued a request head")
    func idleCountsFromLastByte() async throws {
        // Checked every 2 s; a count from the first piece would close 2 s after the second.
        let harness = try await ProxyHarness(
            policies: RequestSmugglingTests.policies, idleTimeout: .seconds(6), keepAliveTimeout: .seconds(2))
        defer { Task { try? await harness.shutdown() } }
        // The 4 s pause means something only if it stayed under the 6 s limit: at the start of a
        // full run the test's tasks can wait for a thread for longer, so such a try is repeated.
        var tries: [ProxyHarness.Exchange] = []
        repeat {
            tries.append(
                try await harness.send(
                    pieces: ["GET /api/v1/namespaces/dev/configmaps/a HTTP/1.1\r\n", "Host: proxy\r\n"],
                    pause: .seconds(4), wait: .seconds(30)))
        } while tries.last!.longestPause >= .seconds(5) && tries.count < 4
        let exchange = try #require(tries.last)
        #expect(exchange.longestPause < .seconds(5), "pauses: \(tries.map(\.longestPause))")
        #expect(exchange.closedByProxy)
        #expect(exchange.elapsed >= .milliseconds(5_500), "\(exchange.elapsed) after the second piece")
        #expect(harness.upstream.requests.withLock { $0.isEmpty })
    }

    @Test("a shutdown with a request head half-received closes the connection without an answer")
    func shutdownWithPartialHead() async throws {
        let harness = try await ProxyHarness(policies: RequestSmugglingTests.policies, idleTimeout: .seconds(60))
        let exchange = Task {
            try await harness.send("GET /api/v1/namespaces/dev/configmaps/a HTTP/1.1\r\nHost: pr", wait: .seconds(30))
        }
        try await Task.sleep(for: .seconds(1))
        // Quiescing closes the connection; its cut-off head must not be answered (before the
        // filter, NIO's pipeline handler trapped on that 400 in debug builds).
        try await harness.shutdown()
        let result = try await exchange.value
        #expect(result.closedByProxy)
        #expect(result.response.isEmpty, "\(result.response)")
        #expect(result.elapsed < .seconds(20))
    }

    @Test("the check interval divides both limits")
    func checkInterval() {
        let check = { (idle: Int64, keepAlive: Int64) in
            ProxyConnectionHandler.Timeouts(idle: .seconds(idle), keepAlive: .seconds(keepAlive)).checkInterval
        }
        #expect(check(90, 15) == .seconds(15))
        #expect(check(20, 15) == .seconds(5))
        #expect(check(5, 15) == .seconds(5), "keep-alive is capped at the idle timeout")
        #expect(check(7, 5) == .seconds(1))
    }

    @Test("below the default timeout an idle connection stays open")
    func defaultKeepsConnection() async throws {
        let harness = try await ProxyHarness(policies: RequestSmugglingTests.policies)
        defer { Task { try? await harness.shutdown() } }
        let exchange = try await harness.send(Self.get, wait: .seconds(5))
        #expect(exchange.codes == [200], "\(exchange.response)")
        #expect(!exchange.closedByProxy)
    }
}
