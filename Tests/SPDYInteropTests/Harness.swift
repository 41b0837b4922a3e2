import Foundation
import NIOCore
import NIOHTTP1
import NIOWebSocket
import SPDY
import Sandbox
import TestSupport

/// A fake apiserver whose exec and port-forward run on this machine, plus a scratch HOME and kubeconfig.
struct Harness {
    let server: FakeAPIServer
    let home: URL
    let kubeconfig: URL
    private let box: GroupBox

    /// - Parameter webSocket: serve WebSocket exec and the port-forward tunnel instead of refusing them.
    static func start(webSocket: Bool = false) async throws -> Harness {
        let box = GroupBox()
        let onStream: FakeAPIServer.StreamHandler = { session, version, request in
            await box.counted { await Harness.serve(session, version: version, request: request, group: box) }
        }
        let onWebSocket: FakeAPIServer.WebSocketHandler = { channel, chosen, request in
            try Harness.serveWebSocket(channel, chosen, request, group: box)
        }
        let server = try await FakeAPIServer(onStream: onStream, onWebSocket: webSocket ? onWebSocket : nil)
        box.set(server)
        let home = try Paths.makeScratchDirectory("spdy-kubectl-home")
        return Harness(server: server, home: home, kubeconfig: try server.writeKubeconfig(in: home), box: box)
    }

    /// Waits (up to 10 s) for the sessions still finishing, then stops the server and its event
    /// loops: a session finishing on a loop already shut down would leak its promise, which
    /// traps in debug builds.
    func stop() async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while box.runningSessions > 0, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        try await server.shutdown()
        try? FileManager.default.removeItem(at: home)
    }

    func run(_ kubectl: Kubectl, _ arguments: [String], stdin: Data? = nil) async throws -> ProcessResult {
        try await kubectl.run(arguments, kubeconfig: kubeconfig, home: home, standardInput: stdin)
    }

    var environment: [String: String] { Kubectl.environment(home: home) }

    private static func serve(_ session: SPDYSession, version: String, request: HTTPRequestHead, group: GroupBox) async
    {
        let (path, items) = parseTarget(request.uri)
        if path.hasSuffix("/portforward"), version == PortForwardProtocol.version, let server = group.server {
            await LocalPortForward.serve(PortForwardSPDYServer.accept(session: session), group: server.group)
            return
        }
        guard path.hasSuffix("/exec"), version != PortForwardProtocol.version else {
            await session.close()
            return
        }
        let options = RemoteCommandOptions(queryItems: items)
        let command = items.filter { $0.name == "command" }.map(\.value)
        do {
            let exec = try await RemoteCommandSPDYServer.accept(
                session: session, protocolVersion: version, options: options)
            await LocalExec.run(exec, command: command)
        } catch {
            group.server?.log.record("exec setup failed: \(error)")
        }
    }

    private static func serveWebSocket(
        _ channel: any Channel, _ chosen: String, _ request: HTTPRequestHead, group: GroupBox
    ) throws {
        let (path, items) = parseTarget(request.uri)
        if path.hasSuffix("/portforward") {
            let eventLoopGroup = group.server!.group
            if chosen == KubernetesWebSocket.portForwardTunnelProtocol {
                let session = try SPDYWebSocketTunnel.configureServer(channel: channel)
                group.runSession {
                    await LocalPortForward.serve(PortForwardSPDYServer.accept(session: session), group: eventLoopGroup)
                }
            } else {
                guard let ports = WebSocketPortForwardServer.ports(queryItems: items) else {
                    throw KubernetesStreamError(.invalidPort, "no valid ports parameter")
                }
                let session = try WebSocketPortForwardServer.start(channel: channel, protocolName: chosen, ports: ports)
                group.runSession { await LocalPortForward.serve(session, group: eventLoopGroup) }
            }
            return
        }
        let options = RemoteCommandOptions(queryItems: items)
        let command = items.filter { $0.name == "command" }.map(\.value)
        let exec = try WebSocketRemoteCommandServer.start(channel: channel, protocolName: chosen, options: options)
        group.runSession { await LocalExec.run(exec, command: command) }
    }

    /// Splits a request target into its path and query items, decoding as Go's url.ParseQuery does
    /// (`+` is a space).
    static func parseTarget(_ uri: String) -> (path: String, items: [(name: String, value: String)]) {
        let parts = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let decode = { (text: Substring) in
            text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(text)
        }
        let items = (parts.count > 1 ? parts[1].split(separator: "&") : []).map { pair in
            let fields = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return (name: decode(fields[0]), value: fields.count > 1 ? decode(fields[1]) : "")
        }
        return (String(parts[0]), items)
    }

    /// Lets the stream handler reach the server it belongs to.
    final class GroupBox: @unchecked Sendable {
        private let lock = NSLock()
        private var value: FakeAPIServer?
        private var running = 0
        func set(_ server: FakeAPIServer) { lock.withLock { value = server } }
        var server: FakeAPIServer? { lock.withLock { value } }
        var runningSessions: Int { lock.withLock { running } }

        /// Runs a WebSocket session's work in a task, counted until it ends.
        func runSession(_ work: @escaping @Sendable () async -> Void) {
            lock.withLock { running += 1 }
            Task {
                await work()
                lock.withLock { running -= 1 }
            }
        }

        /// Runs a SPDY session's work, counted until it ends.
        func counted(_ work: () async -> Void) async {
            lock.withLock { running += 1 }
            await work()
            lock.withLock { running -= 1 }
        }
    }
}

/// Deterministic pseudo-random bytes, cheap enough for tens of MiB.
func pseudoRandomData(count: Int, seed: UInt64) -> Data {
    var state = seed | 1
    var data = Data(count: count)
    data.withUnsafeMutableBytes { raw in
        let words = raw.bindMemory(to: UInt64.self)
        for index in words.indices {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            words[index] = state
        }
        for index in (words.count * 8)..<count { raw[index] = UInt8(truncatingIfNeeded: index) }
    }
    return data
}
