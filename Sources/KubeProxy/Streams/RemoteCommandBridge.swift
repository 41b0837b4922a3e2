import NIOCore
import SPDY

/// The client's side of an exec or attach as the bridge sees it: ``SPDY/RemoteCommandSession`` (SPDY
/// or WebSocket), or an in-memory stand-in in tests.
protocol RemoteCommandDownstream: Sendable {
    associatedtype Input: AsyncSequence<ByteBuffer, any Error> & Sendable
    associatedtype Sizes: AsyncSequence<TerminalSize, any Error> & Sendable

    var options: RemoteCommandOptions { get }
    /// Ends at the client's half-close (SPDY FIN, WebSocket v5 CLOSE).
    var stdin: Input? { get }
    var resizes: Sizes { get }
    func writeStdout(_ data: ByteBuffer) async throws
    func writeStderr(_ data: ByteBuffer) async throws
    /// Delivers the status last and closes the connection.
    func finish(status: RemoteCommandStatus) async
}

/// The apiserver's side: ``SPDY/RemoteCommandClientSession``, or an in-memory stand-in in tests.
protocol RemoteCommandUpstream: Sendable {
    associatedtype Output: AsyncSequence<ByteBuffer, any Error> & Sendable

    var stdout: Output? { get }
    var stderr: Output? { get }
    func writeStdin(_ data: ByteBuffer) async throws
    func closeStdin() async throws
    func resize(to size: TerminalSize) async throws
    /// The error stream's status; throws when it was lost (the connection died first).
    func status() async throws -> RemoteCommandStatus
    func close() async
}

extension RemoteCommandSession: RemoteCommandDownstream {}
extension RemoteCommandClientSession: RemoteCommandUpstream {}

/// Sees everything that crosses a bridge, in order per stream (the recording). Each call is
/// awaited before the bytes go on, so a slow observer slows the session instead of buffering
/// without bound.
protocol RemoteCommandObserver: Sendable {
    func stdin(_ data: ByteBuffer) async
    func output(_ data: ByteBuffer, stream: RemoteCommandStreamType) async
    func resize(_ size: TerminalSize) async
    /// A decision taken inside the session (a checked command line).
    func marker(_ label: String) async
}

/// What happened in a bridged session, for the audit record and the recording's last marker.
struct RemoteCommandSummary: Sendable, Equatable {
    var status: RemoteCommandStatus
    /// Bytes from the client (stdin).
    var bytesIn: Int
    /// Bytes to the client (stdout and stderr).
    var bytesOut: Int
    /// Whether the status came from upstream (false: synthesized after a loss).
    var upstreamStatus: Bool
    /// The typed lines checked, when a line guard watched stdin.
    var lines: StdinLineGuard.Counts?
    /// Matches of Mask rule patterns replaced in the output.
    var maskedMatches = 0
}

/// Joins a terminated client session to a re-originated upstream session (protocols.md §7.1
/// option 4, §4.7): stdin and resizes go up, stdout and stderr come down, and the upstream status
/// is delivered last.
///
/// ```
///  running ──stdin ends──▶ stdin FIN upstream (the command sees EOF; output keeps flowing)
///     │
///     └──stdout and stderr end──▶ awaiting status ──status / lost──▶ finished (status written down)
/// ```
/// A status that cannot be read (the upstream connection died, the error stream was reset with
/// nothing on it) becomes an explicit failure: an empty error stream would mean exit 0 to kubectl
/// (§3.4). The bridge knows no sockets: tests run it on in-memory sessions.
struct RemoteCommandBridge<Downstream: RemoteCommandDownstream, Upstream: RemoteCommandUpstream>: Sendable {
    let downstream: Downstream
    let upstream: Upstream
    let observer: (any RemoteCommandObserver)?
    /// Checks each command line typed on stdin before the command sees its end (nil: stdin goes
    /// up as it comes).
    var lineGuard: StdinLineGuard?
    /// A pause before the first output goes down: client-go's WebSocket executor drops messages
    /// that arrive before it has registered its streams, which a fast command beats.
    var outputDelay: Duration = .zero
    /// Masks output matching the session's Mask patterns (each stream gets its own copy); the
    /// observer sees the masked bytes, so recordings hold no more than the client saw.
    var outputMasker: StreamOutputMasker?
    /// Set when the proxy ends the session itself (a shutdown): its reason becomes the status.
    private let endNotice = SessionEndNotice()

    init(
        downstream: Downstream, upstream: Upstream, observer: (any RemoteCommandObserver)? = nil,
        lineGuard: StdinLineGuard? = nil, outputDelay: Duration = .zero,
        outputMasker: StreamOutputMasker? = nil
    ) {
        self.downstream = downstream
        self.upstream = upstream
        self.observer = observer
        self.lineGuard = lineGuard
        self.outputDelay = outputDelay
        self.outputMasker = outputMasker
    }

    /// Ends a running session from outside (see ``ActiveSessions``): the reason is noted, then the
    /// upstream connection is closed, which ends the output streams and so ``run()``.
    func end(reason: String) async {
        endNotice.set(reason)
        await upstream.close()
    }

    /// The message of the status written when the upstream status was lost.
    static var lostStatusMessage: String {
        "the connection to the Kubernetes API server ended before the command's status arrived"
    }

    func run() async -> RemoteCommandSummary {
        let input = Task { await pumpInput() }
        let resizes = Task { await pumpResizes() }
        if outputDelay > .zero { try? await Task.sleep(for: outputDelay) }
        // stdout is pumped by this task and stderr, when there is one, by a task of its own: each
        // `async let` would reserve its child's storage in this frame, which a session holds as
        // long as it is open.
        let stderrPump = upstream.stderr.map { stderr in Task { await pumpOutput(stderr, stream: .stderr) } }
        let out = await pumpOutput(upstream.stdout, stream: .stdout)
        let err = await stderrPump?.value ?? (bytes: 0, clientGone: false, masked: 0)
        var summary = RemoteCommandSummary(
            status: .success, bytesIn: 0, bytesOut: out.bytes + err.bytes, upstreamStatus: true,
            maskedMatches: out.masked + err.masked)
        if let reason = endNotice.reason {
            summary.status = .failure(message: reason, reason: "ServiceUnavailable", code: 503)
            summary.upstreamStatus = false
        } else if out.clientGone || err.clientGone {
            summary.status = .failure(message: "the client went away", reason: "ClientClosed", code: nil)
            summary.upstreamStatus = false
        } else {
            do {
                summary.status = try await upstream.status()
            } catch {
                summary.status = .failure(
                    message: "\(Self.lostStatusMessage): \(error)", reason: "InternalError", code: 500)
                summary.upstreamStatus = false
            }
        }
        // The status goes down before the input side is waited for: a stdin write stuck on a
        // connection that no longer reads must not hold it back.
        resizes.cancel()
        input.cancel()
        await downstream.finish(status: summary.status)
        await upstream.close()
        (summary.bytesIn, summary.lines) = await input.value
        return summary
    }

    /// Client stdin to upstream, through the line guard if there is one; its end becomes the
    /// upstream half-close. Returns the bytes read from the client and the lines checked.
    private func pumpInput() async -> (Int, StdinLineGuard.Counts?) {
        guard let stdin = downstream.stdin else { return (0, lineGuard?.counts) }
        if let lineGuard { return await pumpGuardedInput(stdin, lineGuard: lineGuard) }
        var total = 0
        do {
            for try await chunk in stdin {
                await observer?.stdin(chunk)
                try await upstream.writeStdin(chunk)
                total += chunk.readableBytes
            }
            try await upstream.closeStdin()
        } catch {
            // The client aborted stdin, or upstream is gone: the output side sees the rest.
        }
        return (total, nil)
    }

    /// Stdin through the line guard, read ahead so that the client's connection keeps being read
    /// (and its Ctrl-C seen) while a line waits for approval.
    private func pumpGuardedInput(
        _ stdin: Downstream.Input, lineGuard: StdinLineGuard
    ) async -> (Int, StdinLineGuard.Counts?) {
        var lineGuard = lineGuard
        let io = BridgeLineIO(downstream: downstream, upstream: upstream, observer: observer)
        let readAhead = StdinReadAhead()
        let interrupt = lineGuard.interrupt
        return await withTaskGroup(of: Void.self) { group in
            group.addTask { await readAhead.fill(from: stdin, interrupt: interrupt) }
            var total = 0
            do {
                while let chunk = try await readAhead.next(interrupt: interrupt) {
                    await observer?.stdin(chunk)
                    try await lineGuard.process(chunk, io: io)
                    total += chunk.readableBytes
                }
                try await lineGuard.finish(io: io)
            } catch {
                // The client aborted stdin, or upstream is gone: the output side sees the rest.
            }
            group.cancelAll()
            return (total, lineGuard.counts)
        }
    }

    private func pumpResizes() async {
        do {
            for try await size in downstream.resizes {
                await observer?.resize(size)
                try await upstream.resize(to: size)
            }
        } catch {
            // A malformed resize stream or a closed upstream ends resizing, not the session.
        }
    }

    /// Upstream output to the client until upstream ends it.
    private func pumpOutput(
        _ source: Upstream.Output?, stream: RemoteCommandStreamType
    ) async -> (
        bytes: Int, clientGone: Bool, masked: Int
    ) {
        guard let source else { return (0, false, 0) }
        let downstream = self.downstream
        let observer = self.observer
        let deliver: MaskedOutputWriter.Write = { chunk in
            await observer?.output(chunk, stream: stream)
            if stream == .stderr {
                try await downstream.writeStderr(chunk)
            } else {
                try await downstream.writeStdout(chunk)
            }
        }
        let masking = outputMasker.map { MaskedOutputWriter(masker: $0, write: deliver) }
        var total = 0
        do {
            for try await chunk in source {
                guard chunk.readableBytes > 0 else { continue }
                do {
                    if let masking { try await masking.consume(chunk) } else { try await deliver(chunk) }
                } catch {
                    // Nobody is left to tell: stop the command's connection, which ends the
                    // other output stream too.
                    await upstream.close()
                    return (total, true, await masking?.maskedCount ?? 0)
                }
                total += chunk.readableBytes
            }
        } catch {
            // Upstream aborted the stream: the status tells why (or its absence does).
        }
        guard let masking else { return (total, false, 0) }
        do {
            try await masking.finish()
        } catch {
            await upstream.close()
            return (total, true, await masking.maskedCount)
        }
        return (total, false, await masking.maskedCount)
    }
}

/// The line guard's view of a bridge: stdin goes up; notices go down on stdout (the terminal) or
/// stderr (without a terminal, when the client reads it), and into the recording as output.
private struct BridgeLineIO<Downstream: RemoteCommandDownstream, Upstream: RemoteCommandUpstream>: LineGuardIO {
    let downstream: Downstream
    let upstream: Upstream
    let observer: (any RemoteCommandObserver)?

    func forward(_ bytes: [UInt8]) async throws {
        guard !bytes.isEmpty else { return }
        try await upstream.writeStdin(ByteBuffer(bytes: bytes))
    }

    func closeInput() async throws { try await upstream.closeStdin() }

    func notify(_ text: String) async {
        let options = downstream.options
        let buffer = ByteBuffer(string: text)
        let stream: RemoteCommandStreamType
        if options.stderr && !options.tty {
            stream = .stderr
            try? await downstream.writeStderr(buffer)
        } else if options.stdout {
            stream = .stdout
            try? await downstream.writeStdout(buffer)
        } else {
            return  // the client reads no output: the audit record and the recording still say why
        }
        await observer?.output(buffer, stream: stream)
    }

    func marker(_ label: String) async { await observer?.marker(label) }
}
