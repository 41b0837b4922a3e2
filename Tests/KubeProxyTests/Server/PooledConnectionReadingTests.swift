import NIOCore
import NIOPosix
import Testing

@testable import KubeProxy

/// A connection goes back to the pool reading: the proxy turns reading off while a client's socket
/// is full, and a response can end in that same read.
@Suite("Pooled upstream connections")
struct PooledConnectionReadingTests {
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
}
