import NIOCore
import SPDY
import Synchronization

/// One forwarded connection on the client's side as the bridge sees it:
/// ``SPDY/PortForwardConnection`` (SPDY, the WebSocket tunnel, legacy WebSocket channels), or an
/// in-memory stand-in in tests.
protocol PortForwardDownstream: Sendable {
    associatedtype Input: AsyncSequence<ByteBuffer, any Error> & Sendable

    var port: UInt16 { get }
    var requestID: String { get }
    /// Ends at the client's half-close; throws when the client resets the connection.
    var inbound: Input { get }
    func write(_ bytes: ByteBuffer) async throws
    func closeWrite() async throws
    /// Ends the connection normally (both streams finished, no error text).
    func finish() async
    /// Ends the connection with `message` on its error stream.
    func fail(message: String) async
}

/// The matching connection toward the apiserver: ``SPDY/PortForwardClientConnection``, or an
/// in-memory stand-in in tests.
protocol PortForwardUpstream: Sendable {
    associatedtype Input: AsyncSequence<ByteBuffer, any Error> & Sendable

    /// Ends at the pod side's half-close or reset.
    var inbound: Input { get }
    func write(_ bytes: ByteBuffer) async throws
    func closeWrite() async throws
    /// The error stream's text once it ends; nil when there was none.
    func errorMessage() async throws -> String?
    func reset() async
}

extension PortForwardConnection: PortForwardDownstream {}
extension PortForwardClientConnection: PortForwardUpstream {}

/// How a forwarded connection ended, for its audit line.
enum PortForwardCloseReason: Sendable, Equatable, CustomStringConvertible {
    /// The pod side finished and the client let go, with no error.
    case completed
    /// The client reset the connection while the pod side was still sending.
    case clientAborted
    /// The pod side reported an error (refused connection, …), passed on to the client.
    case upstreamError(String)
    /// An inspector ended the connection.
    case refusedByInspector(String)
    /// The policy refused the port; nothing reached the apiserver.
    case denied(String)
    /// The apiserver could not open the connection's streams.
    case upstreamUnavailable(String)
    /// The connection to the apiserver died while the connection was open.
    case upstreamLost(String)

    var description: String {
        switch self {
        case .completed: "completed"
        case .clientAborted: "client-aborted"
        case .upstreamError: "upstream-error"
        case .refusedByInspector: "refused-by-inspector"
        case .denied: "denied"
        case .upstreamUnavailable: "upstream-unavailable"
        case .upstreamLost: "upstream-lost"
        }
    }

    /// The text sent to the client's error stream, if any.
    var message: String? {
        switch self {
        case .completed, .clientAborted: nil
        case .upstreamError(let text), .refusedByInspector(let text), .denied(let text),
            .upstreamUnavailable(let text), .upstreamLost(let text):
            text
        }
    }
}

/// What crossed one forwarded connection.
struct PortForwardSummary: Sendable, Equatable {
    /// Bytes from the client toward the pod, as forwarded (after the inspector).
    var bytesFromClient: Int
    /// Bytes from the pod to the client.
    var bytesToClient: Int
    var closeReason: PortForwardCloseReason
}

/// Joins one terminated client connection to its re-originated upstream connection (protocols.md
/// §5.1, §7.4 item 4): bytes both ways through the inspector, each half-close carried to the other
/// side as a half-close (never a reset, which would drop bytes in flight), and the upstream's error
/// text delivered on the client's error stream.
///
/// ```
///  client→pod: bytes ──client FIN──▶ upstream FIN          (client reset ──▶ upstream reset)
///  pod→client: bytes ──upstream FIN/reset──▶ client FIN
///  pod side ended, then its error stream ──▶ text? ──yes──▶ client error stream
///                                                 └─no──▶ both client streams finished
/// ```
/// client-go resets its data stream once the pod side is done, then waits for the error stream's
/// end, which is why the error is passed on only at the end. The bridge knows no sockets: tests
/// run it on real SPDY sessions in-process.
struct PortForwardBridge<Downstream: PortForwardDownstream, Upstream: PortForwardUpstream>: Sendable {
    let downstream: Downstream
    let upstream: Upstream
    let inspector: any PortForwardInspector
    /// How long the upstream error stream may stay open once both directions have ended.
    var errorWait: Duration = .seconds(5)
    /// Whether the apiserver connection is still up: an upstream stream that ends because that
    /// connection died is a loss, never the pod's clean end (which the client would take for a
    /// complete transfer).
    let upstreamAlive: @Sendable () -> Bool

    init(
        downstream: Downstream, upstream: Upstream, inspector: any PortForwardInspector = PassThroughInspector(),
        errorWait: Duration = .seconds(5), upstreamAlive: @escaping @Sendable () -> Bool = { true }
    ) {
        self.downstream = downstream
        self.upstream = upstream
        self.inspector = inspector
        self.errorWait = errorWait
        self.upstreamAlive = upstreamAlive
    }

    /// What the client's error stream says when the apiserver connection died.
    static var lostMessage: String {
        "the connection to the Kubernetes API server was lost; the forwarded connection is incomplete"
    }

    /// How one direction ended.
    private enum PumpEnd: Sendable, Equatable {
        case finished
        /// The upstream side ended because the apiserver connection died.
        case lost
        /// The source was reset (client) or the destination could not be written.
        case aborted
        case refused(String)
    }

    func run() async -> PortForwardSummary {
        // Read from the start: the upstream may report (and end) before any byte flows.
        let upstreamError = Task { () -> String? in
            do {
                return try await upstream.errorMessage()
            } catch {
                return nil
            }
        }
        let firstEnded = FirstEnded()
        let fromClient = Task { await pumpClientToPod(firstEnded, upstreamError: upstreamError) }
        let down = await pumpPodToClient(firstEnded)

        let text = await podSideEnd(after: down.end, upstreamError: upstreamError, fromClient: fromClient)
        let up = await fromClient.value

        var summary = PortForwardSummary(bytesFromClient: up.bytes, bytesToClient: down.bytes, closeReason: .completed)
        if case .refused(let message) = up.end {
            summary.closeReason = .refusedByInspector(message)
        } else if case .refused(let message) = down.end {
            summary.closeReason = .refusedByInspector(message)
        } else if down.end == .lost {
            summary.closeReason = .upstreamLost(Self.lostMessage)
        } else if up.end == .aborted && firstEnded.direction == .clientToPod || down.end == .aborted {
            // What the pod side reports after the client let go is the echo of that reset.
            summary.closeReason = .clientAborted
        } else if let text {
            summary.closeReason = .upstreamError(text)
        }
        if let message = summary.closeReason.message {
            await downstream.fail(message: message)
        } else {
            await downstream.finish()
        }
        return summary
    }

    /// Waits, once the pod side has stopped writing, for the end of the pair: the upstream error
    /// stream's end (the kubelet closes it when it is done, whatever the client does; a client
    /// that waits for it before letting go would otherwise never get it), after which nothing the
    /// client sends has anywhere to go; or the client's end, after which the error stream gets
    /// ``errorWait`` (one that never ends must not hold the connection open). A runtime that
    /// still reads the client's bytes after its pod stopped writing keeps the pair open, and so the
    /// client direction.
    private func podSideEnd(
        after end: PumpEnd, upstreamError: Task<String?, Never>, fromClient: Task<(bytes: Int, end: PumpEnd), Never>
    ) async -> String? {
        guard end == .finished else {
            // The client is gone or an inspector refused: nothing more is read from either side.
            upstreamError.cancel()
            fromClient.cancel()
            return nil
        }
        var deadline: Task<Void, any Error>?
        _ = await withTaskGroup(of: PairEnd.self) { group in
            group.addTask {
                _ = await upstreamError.value; return .errorStream
            }
            group.addTask {
                _ = await fromClient.value; return .client
            }
            switch await group.next() {
            case .client:
                let errorWait = self.errorWait
                deadline = Task {
                    try await Task.sleep(for: errorWait)
                    upstreamError.cancel()
                }
            case .errorStream, nil:
                fromClient.cancel()
            }
            // The other child ends soon now: the client side was cancelled, or the error stream
            // has its deadline.
        }
        deadline?.cancel()
        return await upstreamError.value
    }

    /// Client bytes to the pod; the client's FIN becomes the upstream FIN, its reset an upstream
    /// reset.
    private func pumpClientToPod(
        _ firstEnded: FirstEnded, upstreamError: Task<String?, Never>
    ) async -> (bytes: Int, end: PumpEnd) {
        var total = 0
        do {
            for try await chunk in downstream.inbound where chunk.readableBytes > 0 {
                switch await inspector.inspect(chunk, direction: .clientToPod) {
                case .forward(let bytes):
                    try await upstream.write(bytes)
                    total += bytes.readableBytes
                case .refuse(let message):
                    // The refusal is the connection's last word: the pod side's is not waited for.
                    upstreamError.cancel()
                    await upstream.reset()
                    return (total, .refused(message))
                }
            }
        } catch {
            firstEnded.mark(.clientToPod)
            await upstream.reset()
            return (total, .aborted)
        }
        firstEnded.mark(.clientToPod)
        do {
            try await upstream.closeWrite()
        } catch {
            return (total, .aborted)
        }
        return (total, .finished)
    }

    /// Pod bytes to the client; the end of the upstream side becomes the client's FIN.
    private func pumpPodToClient(_ firstEnded: FirstEnded) async -> (bytes: Int, end: PumpEnd) {
        var total = 0
        do {
            for try await chunk in upstream.inbound where chunk.readableBytes > 0 {
                switch await inspector.inspect(chunk, direction: .podToClient) {
                case .forward(let bytes):
                    do {
                        try await downstream.write(bytes)
                    } catch {
                        // The client is gone: stop the pod side too.
                        await upstream.reset()
                        return (total, .aborted)
                    }
                    total += bytes.readableBytes
                case .refuse(let message):
                    await upstream.reset()
                    return (total, .refused(message))
                }
            }
        } catch {
            // An aborted upstream stream: its error stream says why, if anything does.
        }
        firstEnded.mark(.podToClient)
        guard upstreamAlive() else { return (total, .lost) }
        try? await downstream.closeWrite()
        return (total, .finished)
    }
}

/// Which came first once the pod side stopped writing: the end of its error stream, or the client's.
private enum PairEnd: Sendable {
    case errorStream, client
}

/// Which direction of a connection stopped first: a client reset that comes first is an abort,
/// one that follows the pod side's end is how client-go always lets go.
private final class FirstEnded: Sendable {
    private let first = Mutex<PortForwardDirection?>(nil)

    func mark(_ direction: PortForwardDirection) {
        first.withLock { if $0 == nil { $0 = direction } }
    }

    var direction: PortForwardDirection? { first.withLock { $0 } }
}
