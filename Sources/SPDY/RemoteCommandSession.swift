import NIOCore

/// The transport under a server-side remote-command session: SPDY streams or WebSocket channels.
protocol RemoteCommandServerTransport: Sendable {
    /// Writes output on stdout or stderr.
    func write(_ data: ByteBuffer, to streamType: RemoteCommandStreamType) async throws
    /// Ends the session: output streams finished, the status delivered last, the connection closed.
    func finish(status: RemoteCommandStatus, protocolVersion: RemoteCommandProtocol) async
}

/// The server side of one `kubectl exec`/`attach`, whatever the transport (protocols.md §3, §4, §7.1
/// option 4): what the proxy reads from and writes to the client.
///
/// Read ``stdin`` until it ends (the client's half-close) and ``resizes`` for terminal sizes; write output
/// with ``writeStdout(_:)`` and ``writeStderr(_:)``; end with ``finish(status:)``, which delivers the
/// status last and closes the connection (§3.6). Every method may be called from any task.
public final class RemoteCommandSession: Sendable {
    public let protocolVersion: RemoteCommandProtocol
    public let options: RemoteCommandOptions
    /// The client's stdin, ending at its half-close; `nil` unless `stdin=true`.
    public let stdin: InboundByteStream?
    /// Terminal sizes from the resize stream; empty unless a terminal was requested (v3+).
    public let resizes: TerminalSizeStream
    private let transport: any RemoteCommandServerTransport

    init(
        protocolVersion: RemoteCommandProtocol, options: RemoteCommandOptions, stdin: InboundByteStream?,
        resizes: TerminalSizeStream, transport: any RemoteCommandServerTransport
    ) {
        self.protocolVersion = protocolVersion
        self.options = options
        self.stdin = stdin
        self.resizes = resizes
        self.transport = transport
    }

    /// Writes command output (with a terminal, stdout carries stderr too).
    public func writeStdout(_ data: ByteBuffer) async throws {
        guard options.stdout else {
            throw KubernetesStreamError(.unexpectedStream, "the client did not ask for stdout")
        }
        try await transport.write(data, to: .stdout)
    }

    /// Writes error output; only without a terminal and when the client asked for stderr.
    public func writeStderr(_ data: ByteBuffer) async throws {
        guard options.stderr, !options.tty else {
            throw KubernetesStreamError(.unexpectedStream, "the client did not ask for stderr")
        }
        try await transport.write(data, to: .stderr)
    }

    /// Finishes the session: ends stdout and stderr, writes `status` on the error stream (JSON for v4+,
    /// failure text for v1–v3), then closes the connection (RST for what is left, GOAWAY last).
    public func finish(status: RemoteCommandStatus) async {
        await transport.finish(status: status, protocolVersion: protocolVersion)
    }
}
