import Foundation
import NIOCore
import NIOPosix
import SPDY

/// Forwards each port-forward connection to 127.0.0.1:port, as the test node agent does for a pod.
enum LocalPortForward {
    static func serve(_ session: PortForwardSession, group: any EventLoopGroup) async {
        await withTaskGroup(of: Void.self) { tasks in
            for await connection in session.connections {
                tasks.addTask { await forward(connection, group: group) }
            }
        }
    }

    private static func forward(_ connection: PortForwardConnection, group: any EventLoopGroup) async {
        let target: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            target = try await ClientBootstrap(group: group)
                .channelOption(.allowRemoteHalfClosure, value: true)
                .connect(host: "127.0.0.1", port: Int(connection.port)) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(
                            wrappingChannelSynchronously: channel,
                            configuration: .init(isOutboundHalfClosureEnabled: true))
                    }
                }
        } catch {
            await connection.fail(message: "error forwarding port \(connection.port) to pod x, uid : \(error)")
            return
        }
        try? await target.executeThenClose { inbound, outbound in
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask {
                    do {
                        for try await chunk in connection.inbound { try await outbound.write(chunk) }
                    } catch {}
                    outbound.finish()
                }
                tasks.addTask {
                    for try await chunk in inbound { try await connection.write(chunk) }
                    try await connection.closeWrite()
                }
                try await tasks.waitForAll()
            }
        }
        await connection.finish()
    }
}
