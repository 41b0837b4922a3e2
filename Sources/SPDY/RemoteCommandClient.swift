import NIOCore

/// The transport under a client-side remote-command session.
protocol RemoteCommandClientTransport: Sendable {
    func writeStdin(_ data: ByteBuffer) async throws
    func closeStdin() async throws
    func sendResize(_ size: TerminalSize) async throws
    /// The error stream's content and whether it ended with a proper half-close (not an abort).
    func readErrorStream(maxBytes: Int) async throws -> (ByteBuffer, endedCleanly: Bool)
    func close() async
}

/// The client side of one exec or attach, whatever the transport (protocols.md §3, §4, §7.1 option 4):
/// what the proxy uses to re-originate a command toward the apiserver or kubelet. SPDY sessions come from
/// ``RemoteCommandSPDYClient/start(session:protocolVersion:options:)``, WebSocket ones from
/// ``RemoteCommandWebSocketClient/start(channel:uri:headers:options:protocols:configuration:)``.
///
/// Write stdin and resizes, read ``stdout`` and ``stderr`` (both end when the server finishes or resets
/// them), then ask for ``status()``. Drain stdout and stderr while waiting for the status: a server
/// writes the status only after its output (§1.6, kubernetes #96339).
public final class RemoteCommandClientSession: Sendable {
    /// The most bytes read from the error stream.
    public static let maxStatusLength = 64 << 10

    public let protocolVersion: RemoteCommandProtocol
    public let options: RemoteCommandOptions
    /// The command's stdout (with a terminal, its stderr too); `nil` unless requested.
    public let stdout: InboundByteStream?
    /// The command's stderr; `nil` unless requested without a terminal.
    public let stderr: InboundByteStream?
    private let transport: any RemoteCommandClientTransport

    init(
        protocolVersion: RemoteCommandProtocol, options: RemoteCommandOptions, stdout: InboundByteStream?,
        stderr: InboundByteStream?, transport: any RemoteCommandClientTransport
    ) {
        self.protocolVersion = protocolVersion
        self.options = options
        self.stdout = stdout
        self.stderr = stderr
        self.transport = transport
    }

    public func writeStdin(_ data: ByteBuffer) async throws {
        guard options.stdin else { throw KubernetesStreamError(.unexpectedStream, "stdin was not requested") }
        try await transport.writeStdin(data)
    }

    /// Signals stdin EOF (SPDY FIN; WebSocket v5 CLOSE `[0xFF, 0x00]`).
    ///
    /// - Throws: ``KubernetesStreamError/Kind/unsupportedProtocol`` over WebSocket before v5, which has no
    ///   way to say it (§4.3).
    public func closeStdin() async throws {
        guard options.stdin else { throw KubernetesStreamError(.unexpectedStream, "stdin was not requested") }
        try await transport.closeStdin()
    }

    /// Sends a terminal size; ignored when the protocol has no resize stream (no terminal, or before v3).
    public func resize(to size: TerminalSize) async throws {
        guard options.tty, protocolVersion.supportsResize else { return }
        try await transport.sendResize(size)
    }

    /// Reads the error stream to its end and decodes it (§3.4).
    ///
    /// - Throws: ``KubernetesStreamError`` with ``KubernetesStreamError/Kind/connectionClosed`` when a v4+
    ///   stream ends by an abort with nothing on it: client-go would report success there, which would hide a
    ///   lost status; and ``KubernetesStreamError/Kind/invalidStatus`` for content that is not a status.
    public func status() async throws -> RemoteCommandStatus {
        let (payload, endedCleanly) = try await transport.readErrorStream(maxBytes: Self.maxStatusLength)
        if payload.readableBytes == 0, !endedCleanly, protocolVersion.usesStatusJSON {
            throw KubernetesStreamError(.connectionClosed, "the error stream ended without a status")
        }
        return try RemoteCommandStatus.decode(errorStream: payload, protocolVersion: protocolVersion)
    }

    /// Closes the connection (SPDY: RST for open streams, GOAWAY, TCP close; WebSocket: Close 1000).
    public func close() async {
        await transport.close()
    }

    /// Reads an error stream or channel to its end, refusing more than `maxBytes`. An abort (RST_STREAM,
    /// a WebSocket Close other than 1000, the connection ending) is not an error here: the kubelet writes
    /// the status and then resets the stream (§3.6); ``status()`` decides what an abort with nothing means.
    static func collectErrorStream(
        _ stream: InboundByteStream, maxBytes: Int
    ) async throws -> (ByteBuffer, endedCleanly: Bool) {
        var collected = ByteBuffer()
        do {
            for try await var chunk in stream {
                guard collected.readableBytes + chunk.readableBytes <= maxBytes else {
                    throw KubernetesStreamError(.invalidStatus, "error stream longer than \(maxBytes) bytes")
                }
                collected.writeBuffer(&chunk)
            }
            return (collected, true)
        } catch let error as SPDYError where error.kind == .streamReset || error.kind == .sessionClosed {
            return (collected, false)
        }
    }
}

/// Starts a remote command over an upgraded SPDY session (protocols.md §3.2).
public enum RemoteCommandSPDYClient {
    /// Opens the streams the options call for, one after another in the order client-go uses (error,
    /// stdin, stdout, stderr, resize), each waiting for its SYN_REPLY, before any data flows (§3.2,
    /// kubernetes #16373).
    ///
    /// - Parameter protocolVersion: what the server chose; `nil` (no header in the 101) means v1, as in client-go.
    public static func start(
        session: SPDYSession, protocolVersion: String?, options: RemoteCommandOptions
    ) async throws -> RemoteCommandClientSession {
        let protocolVersion = RemoteCommandProtocol(rawValue: protocolVersion ?? RemoteCommandProtocol.v1.rawValue)
        guard protocolVersion.version != nil else {
            throw KubernetesStreamError(.unsupportedProtocol, "the server chose unknown protocol \(protocolVersion)")
        }
        guard options.isValid else {
            throw KubernetesStreamError(.invalidOptions, "you must specify at least 1 of stdin, stdout, stderr")
        }
        var streams: [RemoteCommandStreamType: SPDYStream] = [:]
        do {
            for type in options.streamTypes(for: protocolVersion) {
                streams[type] = try await session.openStream(headers: [
                    RemoteCommandStreamType.headerName: type.rawValue
                ])
            }
        } catch {
            await session.close()
            throw error
        }
        return RemoteCommandClientSession(
            protocolVersion: protocolVersion, options: options, stdout: streams[.stdout]?.inbound.endingAtReset(),
            stderr: streams[.stderr]?.inbound.endingAtReset(),
            transport: SPDYRemoteCommandClientTransport(session: session, streams: streams))
    }
}

/// Client remote-command I/O over SPDY streams.
struct SPDYRemoteCommandClientTransport: RemoteCommandClientTransport {
    let session: SPDYSession
    let streams: [RemoteCommandStreamType: SPDYStream]

    init(session: SPDYSession, streams: [RemoteCommandStreamType: SPDYStream]) {
        self.session = session
        self.streams = streams
        // The server never writes on stdin or resize; discard anything it does (without a task
        // per stream reading it: an idle session keeps its tasks for hours).
        for type in [RemoteCommandStreamType.stdin, .resize] {
            streams[type]?.discardInbound()
        }
    }

    func writeStdin(_ data: ByteBuffer) async throws {
        try await streams[.stdin]?.write(data)
    }

    func closeStdin() async throws {
        try await streams[.stdin]?.closeWrite()
    }

    func sendResize(_ size: TerminalSize) async throws {
        try await streams[.resize]?.write(ByteBuffer(string: size.json))
    }

    func readErrorStream(maxBytes: Int) async throws -> (ByteBuffer, endedCleanly: Bool) {
        guard let errorStream = streams[.error] else { return (ByteBuffer(), true) }
        return try await RemoteCommandClientSession.collectErrorStream(errorStream.inbound, maxBytes: maxBytes)
    }

    func close() async {
        await session.close()
    }
}
