import NIOCore
import NIOPosix
import Testing

@testable import KubeProxy

/// The pool's promises to the proxy: a connection goes back reading, and an upgrade the apiserver
/// never answers fails instead of holding the client forever.
@Suite("Upstream connection pool", .timeLimit(.minutes(1)))
struct UpstreamConnectionPoolTests {
    /// The proxy turns reading off while a client's socket is full, and a response can end in that
    /// same read.
    @Test("a connection released with reading off is leased again reading")
    func releasedConnectionReads() async throws {
        let harness = try await ProxyHarness(policies: RequestSmugglingTests.policies)
        defer { Task { try? await harness.shutdown() } }
        let pool = try UpstreamConnectionPool(configuration: harness.upstreamConfiguration)
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let (channel, reused) = try await pool.lease(on: loop).get()
        #expect(!reused)
        try await channel.setOption(ChannelOptions.autoRead, value: false).get()
        pool.release(channel, reusable: true)

        let (again, reusedAgain) = try await pool.lease(on: loop).get()
        #expect(reusedAgain)
        #expect(again === channel)
        #expect(try await again.getOption(ChannelOptions.autoRead).get(), "the pooled connection does not read")
        try await again.close()
    }

    @Test("an upgrade without an answer within the timeout fails once, its connection closed")
    func upgradeTimesOut() async throws {
        let harness = try await ProxyHarness(policies: RequestSmugglingTests.policies)
        defer { Task { try? await harness.shutdown() } }
        let pool = try UpstreamConnectionPool(
            configuration: harness.upstreamConfiguration, upgradeTimeout: .milliseconds(200))
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        // A pooled connection, as kubectl's GET of the pod leaves one: a pooled connection that
        // fails closed is otherwise tried again on a new one, which a timeout must not be.
        pool.release(try await pool.lease(on: loop).get().channel, reusable: true)
        var attempts = 0
        var connection: (any Channel)?
        let clock = ContinuousClock()
        let start = clock.now
        // A handshake that hears nothing: it ends only when its connection is closed.
        let result = await pool.upgrade(on: loop) { channel -> Void in
            attempts += 1
            connection = channel
            try await channel.closeFuture.get()
            throw CancellationError()
        }
        let elapsed = clock.now - start
        guard case .failure(.handshakeFailed(let error)) = result else {
            Issue.record("expected a failed handshake, got \(result)")
            return
        }
        #expect(error is UpstreamConnectionPool.UpgradeTimedOut, "\(error)")
        #expect("\(error)".contains("did not answer"))
        #expect(attempts == 1, "a timed-out upgrade is not sent again")
        #expect(connection?.isActive == false)
        #expect(elapsed >= .milliseconds(200) && elapsed < .seconds(5), "\(elapsed)")
    }

    @Test("an upgrade answered in time keeps its connection open past the timeout")
    func answeredUpgradeStaysOpen() async throws {
        let harness = try await ProxyHarness(policies: RequestSmugglingTests.policies)
        defer { Task { try? await harness.shutdown() } }
        let pool = try UpstreamConnectionPool(
            configuration: harness.upstreamConfiguration, upgradeTimeout: .milliseconds(100))
        let result = await pool.upgrade(on: MultiThreadedEventLoopGroup.singleton.next()) { _ in "answered" }
        guard case .success(let upgraded) = result else {
            Issue.record("expected an upgrade, got \(result)")
            return
        }
        #expect(upgraded.answer == "answered")
        try await Task.sleep(for: .milliseconds(300))
        #expect(upgraded.channel.isActive, "the timer closed a connection whose upgrade was answered")
        try await upgraded.channel.close()
    }
}
