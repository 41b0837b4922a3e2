import Foundation
import NIOCore
import NIOPosix
import SPDY
import Testing

@testable import KubeProxy

/// The bridge on a real upstream session: SPDY over loopback TCP, with the SPDY module's own
/// remote-command server standing in for the kubelet.
@Suite("RemoteCommandBridge over a real SPDY upstream")
struct RemoteCommandBridgeSPDYTests {
    static let version = RemoteCommandProtocol.v4.rawValue

    /// A connected pair of SPDY sessions, the server's made into a remote-command session.
    static func withUpstream(
        options: RemoteCommandOptions,
        _ body: (RemoteCommandSession, RemoteCommandClientSession, SPDYSession) async throws -> Void
    ) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let (sessions, continuation) = AsyncStream<SPDYSession>.makeStream()
        let server = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    continuation.yield(
                        try channel.pipeline.syncOperations.addSPDYSessionHandlers(
                            configuration: SPDYSessionConfiguration(role: .server)))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let channel = try await ClientBootstrap(group: group)
            .connect(host: "127.0.0.1", port: server.localAddress!.port!).get()
        let clientSession = try await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.addSPDYSessionHandlers(
                configuration: SPDYSessionConfiguration(role: .client))
        }.get()
        var iterator = sessions.makeAsyncIterator()
        let serverSession = try #require(await iterator.next())
        async let command = RemoteCommandSPDYServer.accept(
            session: serverSession, protocolVersion: version, options: options)
        let client = try await RemoteCommandSPDYClient.start(
            session: clientSession, protocolVersion: version, options: options)
        try await body(try await command, client, serverSession)
        try? await server.close()
        try await group.shutdownGracefully()
    }

    @Test("the upstream's output and exit code reach the client")
    func exitCode() async throws {
        let options = RemoteCommandOptions(stdout: true, stderr: true)
        try await Self.withUpstream(options: options) { command, upstream, _ in
            let downstream = FakeDownstream(options: options)
            async let summary = RemoteCommandBridge(downstream: downstream, upstream: upstream).run()
            try await command.writeStdout(ByteBuffer(string: "out\n"))
            try await command.writeStderr(ByteBuffer(string: "err\n"))
            await command.finish(status: .exited(3))
            let result = await summary
            #expect(result.status == .exited(3))
            #expect(downstream.finished == .exited(3))
            #expect(downstream.written(.stdout) == "out\n")
            #expect(downstream.written(.stderr) == "err\n")
        }
    }

    @Test("an upstream connection that dies mid-session gives the client a failure, not exit 0")
    func upstreamDies() async throws {
        let options = RemoteCommandOptions(stdin: true, stdout: true, stderr: true)
        try await Self.withUpstream(options: options) { command, upstream, connection in
            let downstream = FakeDownstream(options: options)
            async let summary = RemoteCommandBridge(downstream: downstream, upstream: upstream).run()
            try await command.writeStdout(ByteBuffer(string: "partial"))
            try await Task.sleep(for: .milliseconds(100))
            // Gone without a status: the kubelet or the apiserver connection died.
            await connection.close()
            let result = await summary
            #expect(!result.upstreamStatus)
            #expect(downstream.written(.stdout) == "partial")
            guard case .failure(let message, let reason, _) = downstream.finished else {
                Issue.record("expected a failure, got \(String(describing: downstream.finished))")
                return
            }
            #expect(reason == "InternalError")
            #expect(message.contains("ended before the command's status arrived"))
        }
    }
}
