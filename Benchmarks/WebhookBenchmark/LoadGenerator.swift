import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// Posts reviews at a webhook over N keep-alive TLS connections, all on one client event loop
/// (so the pacer and the connections share a thread and need no locks).
final class LoadGenerator: Sendable {
    struct Result {
        var connections: Int
        var completed: Int
        var failures: Int
        var elapsed: Duration
        var latencies: LatencySummary

        var requestsPerSecond: Double { Double(completed) / elapsed.seconds }
    }

    private let loop: any EventLoop
    private let channels: [any Channel]
    private let connections: [NIOLoopBound<ReviewConnection>]

    private init(loop: any EventLoop, channels: [any Channel], connections: [NIOLoopBound<ReviewConnection>]) {
        self.loop = loop
        self.channels = channels
        self.connections = connections
    }

    static func connect(
        count: Int, port: Int, tls: NIOSSLContext, reviews: [PreparedReview], loop: any EventLoop
    ) async throws -> LoadGenerator {
        var channels: [any Channel] = []
        var connections: [NIOLoopBound<ReviewConnection>] = []
        for index in 0..<count {
            let channel = try await ClientBootstrap(group: loop)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let sync = channel.pipeline.syncOperations
                        try sync.addHandler(NIOSSLClientHandler(context: tls, serverHostname: "localhost"))
                        try sync.addHTTPClientHandlers()
                        try sync.addHandler(NIOHTTPClientResponseAggregator(maxContentLength: 1 << 20))
                        try sync.addHandler(ReviewConnection(reviews: reviews, firstReview: index))
                    }
                }
                .connect(host: "127.0.0.1", port: port).get()
            let connection = try await loop.submit {
                NIOLoopBound(try channel.pipeline.syncOperations.handler(type: ReviewConnection.self), eventLoop: loop)
            }.get()
            channels.append(channel)
            connections.append(connection)
        }
        return LoadGenerator(loop: loop, channels: channels, connections: connections)
    }

    /// Every connection sends back to back for `duration`: the most the server answers.
    func closedLoop(for duration: Duration) async throws -> Result {
        try await reset()
        let started = ContinuousClock.now
        let deadline = started + duration
        try await loop.flatSubmit { [connections, loop] in
            EventLoopFuture.andAllSucceed(connections.map { $0.value.runClosedLoop(until: deadline) }, on: loop)
        }.get()
        return try await collect(elapsed: ContinuousClock.now - started)
    }

    /// Reviews sent at a fixed `rate` per second for `duration`, round-robin over the connections,
    /// whether or not earlier ones were answered; latency counts from when each was due.
    func paced(rate: Int, for duration: Duration) async throws -> Result {
        try await reset()
        let total = Int((duration.seconds * Double(rate)).rounded())
        let interval = Duration.seconds(1) / rate
        let started = ContinuousClock.now
        let finished = loop.makePromise(of: Void.self)
        try await loop.submit { [connections, loop] in
            let sent = NIOLoopBoundBox(0, eventLoop: loop)
            // A 1 ms tick sends every review that has come due, so timer jitter does not lower the rate.
            loop.scheduleRepeatedTask(initialDelay: .nanoseconds(0), delay: .milliseconds(1)) { task in
                let now = ContinuousClock.now
                while sent.value < total, started + interval * sent.value <= now {
                    connections[sent.value % connections.count].value.enqueue(due: started + interval * sent.value)
                    sent.value += 1
                }
                if sent.value == total {
                    task.cancel()
                    finished.succeed()
                }
            }
        }.get()
        try await finished.futureResult.get()
        try await loop.flatSubmit { [connections, loop] in
            EventLoopFuture.andAllSucceed(connections.map { $0.value.drain() }, on: loop)
        }.get()
        return try await collect(elapsed: ContinuousClock.now - started)
    }

    func close() async {
        for channel in channels { try? await channel.close() }
    }

    private func reset() async throws {
        try await loop.submit { [connections] in connections.forEach { $0.value.reset() } }.get()
    }

    private func collect(elapsed: Duration) async throws -> Result {
        let count = connections.count
        let (latencies, failures) = try await loop.submit { [connections] in
            (connections.flatMap { $0.value.latencies }, connections.reduce(0) { $0 + $1.value.failures })
        }.get()
        return Result(
            connections: count, completed: latencies.count, failures: failures, elapsed: elapsed,
            latencies: LatencySummary(latencies))
    }
}
