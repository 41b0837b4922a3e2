import NIOCore

/// Accepts a remote command over SPDY (protocols.md §3.2, §7.4 item 12, §8 "exec server adapter").
public enum RemoteCommandSPDYServer {
    /// The subprotocols to pass to ``SPDYServerUpgrader``: v5 down to v1, so the client's first choice wins.
    public static let protocolVersions = RemoteCommandProtocol.all.map(\.rawValue)
    /// How long the client has to create the whole stream set (the kubelet's stream-creation timeout).
    public static let defaultStreamCreationTimeout: Duration = .seconds(30)

    /// Collects and validates the client's streams, replying to each as it comes, and returns the session.
    ///
    /// The set must be exactly what the options call for (`error`, then stdin/stdout/stderr as requested,
    /// `resize` for a terminal from v3), each type once, within `streamCreationTimeout`. Anything else
    /// (an unknown or unrequested type, a duplicate, a type that is not a single value, a timeout) resets
    /// the offending stream, writes the failure on the error stream if it exists, closes the session and
    /// throws a ``KubernetesStreamError``. Streams the client opens later are refused.
    public static func accept(
        session: SPDYSession,
        protocolVersion: String,
        options: RemoteCommandOptions,
        streamCreationTimeout: Duration = defaultStreamCreationTimeout
    ) async throws -> RemoteCommandSession {
        let protocolVersion = RemoteCommandProtocol(rawValue: protocolVersion)
        let collector = StreamSetCollector()
        do {
            guard protocolVersion.version != nil else {
                throw KubernetesStreamError(.unsupportedProtocol, "unknown remote command protocol \(protocolVersion)")
            }
            guard options.isValid else {
                throw KubernetesStreamError(.invalidOptions, "you must specify at least 1 of stdin, stdout, stderr")
            }
            let expected = options.streamTypes(for: protocolVersion)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await collector.collect(from: session, expected: expected)
                }
                group.addTask {
                    try await Task.sleep(for: streamCreationTimeout)
                    throw KubernetesStreamError(
                        .streamCreationTimeout, "timed out waiting for client to create streams")
                }
                try await group.next()
                group.cancelAll()
            }
        } catch {
            let failure =
                (error as? KubernetesStreamError)
                ?? KubernetesStreamError(.connectionClosed, "stream set incomplete: \(error)")
            await collector.fail(with: failure, protocolVersion: protocolVersion, session: session)
            throw failure
        }
        let streams = await collector.streams
        refuseLaterStreams(of: session)
        let transport = SPDYRemoteCommandTransport(session: session, streams: streams)
        return RemoteCommandSession(
            protocolVersion: protocolVersion, options: options, stdin: streams[.stdin]?.inbound.endingAtReset(),
            resizes: TerminalSizeStream(bytes: streams[.resize]?.inbound.endingAtReset()), transport: transport)
    }

    /// Resets streams opened after the set was complete.
    private static func refuseLaterStreams(of session: SPDYSession) {
        Task {
            for await stream in session.inboundStreams {
                await stream.reset(status: .refusedStream)
            }
        }
    }

    /// Gathers the stream set; an actor because the timeout races the collection.
    private actor StreamSetCollector {
        private(set) var streams: [RemoteCommandStreamType: SPDYStream] = [:]

        func collect(from session: SPDYSession, expected: [RemoteCommandStreamType]) async throws {
            for await stream in session.inboundStreams {
                let type: RemoteCommandStreamType
                do {
                    type = try Self.validate(stream, expected: expected, existing: streams)
                } catch {
                    await stream.reset(status: .cancel)
                    throw error
                }
                try await stream.reply()
                streams[type] = stream
                if streams.count == expected.count { return }
            }
            throw KubernetesStreamError(.connectionClosed, "the connection closed before all streams were created")
        }

        private static func validate(
            _ stream: SPDYStream, expected: [RemoteCommandStreamType], existing: [RemoteCommandStreamType: SPDYStream]
        ) throws(KubernetesStreamError) -> RemoteCommandStreamType {
            let value: String?
            do {
                value = try stream.headers.singleValue(forName: RemoteCommandStreamType.headerName)
            } catch {
                throw KubernetesStreamError(.missingStreamType, "stream \(stream.id) has several stream types")
            }
            guard let value else {
                throw KubernetesStreamError(.missingStreamType, "stream \(stream.id) has no stream type")
            }
            let type = RemoteCommandStreamType(rawValue: value)
            guard [.error, .stdin, .stdout, .stderr, .resize].contains(type) else {
                throw KubernetesStreamError(.unknownStreamType, "unknown stream type \(value.debugDescription)")
            }
            guard expected.contains(type) else {
                throw KubernetesStreamError(.unexpectedStream, "stream type \(value) was not requested")
            }
            guard existing[type] == nil else {
                throw KubernetesStreamError(.duplicateStream, "a second \(value) stream")
            }
            return type
        }

        func fail(with error: KubernetesStreamError, protocolVersion: RemoteCommandProtocol, session: SPDYSession) async
        {
            if let errorStream = streams[.error] {
                let payload = error.status.errorStreamPayload(
                    for: protocolVersion.version == nil ? .v4 : protocolVersion)
                try? await errorStream.writeAndClose(payload)
            }
            await session.close()
        }
    }
}

/// Remote-command output over SPDY streams.
struct SPDYRemoteCommandTransport: RemoteCommandServerTransport {
    let session: SPDYSession
    let streams: [RemoteCommandStreamType: SPDYStream]
    private let window = OutputWindow()

    init(session: SPDYSession, streams: [RemoteCommandStreamType: SPDYStream]) {
        self.session = session
        self.streams = streams
        // The client never writes on these; discard anything it does, so it cannot stall the
        // connection (without a task per stream reading it: an idle session keeps its tasks).
        for type in [RemoteCommandStreamType.error, .stdout, .stderr] {
            streams[type]?.discardInbound()
        }
    }

    /// Output is handed to the event loop through an ``OutputWindow``.
    func write(_ data: ByteBuffer, to streamType: RemoteCommandStreamType) async throws {
        guard let stream = streams[streamType] else {
            throw KubernetesStreamError(.unexpectedStream, "no \(streamType) stream")
        }
        if try window.admit(data.readableBytes) {
            let window = self.window
            stream.writeWithoutWaiting(data) { window.fail() }
            return
        }
        try await stream.write(data)
    }

    func finish(status: RemoteCommandStatus, protocolVersion: RemoteCommandProtocol) async {
        for type in [RemoteCommandStreamType.stdout, .stderr] {
            try? await streams[type]?.closeWrite()
        }
        if let errorStream = streams[.error] {
            try? await errorStream.writeAndClose(status.errorStreamPayload(for: protocolVersion))
        }
        await session.close()
    }
}
