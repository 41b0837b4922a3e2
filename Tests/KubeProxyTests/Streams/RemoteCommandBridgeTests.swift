import Foundation
import NIOCore
import SPDY
import Testing

@testable import KubeProxy

/// The bridge between a client session and an upstream session, on in-memory sessions.
@Suite("RemoteCommandBridge")
struct RemoteCommandBridgeTests {
    @Test("stdout and stderr stay apart, and the exit code is delivered last")
    func outputAndExitCode() async throws {
        let upstream = FakeUpstream(status: .success(.exited(3)))
        let downstream = FakeDownstream(options: RemoteCommandOptions(stdout: true, stderr: true))
        upstream.emit("out\n", on: .stdout)
        upstream.emit("err\n", on: .stderr)
        upstream.endOutput()
        let summary = await RemoteCommandBridge(downstream: downstream, upstream: upstream).run()
        #expect(downstream.written(.stdout) == "out\n")
        #expect(downstream.written(.stderr) == "err\n")
        #expect(downstream.finished == .exited(3))
        #expect(summary.status == .exited(3))
        #expect(summary.bytesOut == 8)
        #expect(summary.upstreamStatus)
        #expect(upstream.isClosed)
    }

    @Test("stdin goes upstream, and its end becomes the upstream half-close")
    func stdinAndHalfClose() async throws {
        let upstream = FakeUpstream(status: .success(.success), echoesStdin: true)
        let downstream = FakeDownstream(options: RemoteCommandOptions(stdin: true, stdout: true, stderr: false))
        downstream.type("hello ")
        downstream.type("world")
        downstream.endStdin()
        let summary = await RemoteCommandBridge(downstream: downstream, upstream: upstream).run()
        #expect(upstream.stdinText == "hello world")
        #expect(upstream.stdinClosed)
        #expect(downstream.written(.stdout) == "hello world")
        #expect(summary.bytesIn == 11)
        #expect(downstream.finished == .success)
    }

    @Test("terminal sizes are passed on in order")
    func resizes() async throws {
        let upstream = FakeUpstream(status: .success(.success), endOutputAfterResizes: 2)
        let downstream = FakeDownstream(options: RemoteCommandOptions(stdin: true, stdout: true, tty: true))
        downstream.resize(TerminalSize(width: 100, height: 30))
        downstream.resize(TerminalSize(width: 120, height: 40))
        let observer = RecordingObserver()
        _ = await RemoteCommandBridge(downstream: downstream, upstream: upstream, observer: observer).run()
        #expect(upstream.sizes == [TerminalSize(width: 100, height: 30), TerminalSize(width: 120, height: 40)])
        #expect(observer.events == ["r 100x30", "r 120x40"])
    }

    @Test("a status lost with the upstream connection becomes an explicit failure, never a silent success")
    func lostStatus() async throws {
        let upstream = FakeUpstream(
            status: .failure(KubernetesStreamError(.connectionClosed, "the error stream ended without a status")))
        let downstream = FakeDownstream(options: RemoteCommandOptions(stdout: true, stderr: true))
        upstream.emit("partial", on: .stdout)
        upstream.endOutput()
        let summary = await RemoteCommandBridge(downstream: downstream, upstream: upstream).run()
        guard case .failure(let message, let reason, let code) = try #require(downstream.finished) else {
            Issue.record("expected a failure, got \(String(describing: downstream.finished))")
            return
        }
        #expect(message.hasPrefix(RemoteCommandBridge<FakeDownstream, FakeUpstream>.lostStatusMessage))
        #expect(reason == "InternalError")
        #expect(code == 500)
        #expect(!summary.upstreamStatus)
        #expect(downstream.written(.stdout) == "partial")
    }

    @Test("a session ended by the proxy (a shutdown) gets a failure naming the reason, after the output so far")
    func endedByProxy() async throws {
        // The upstream would report success: the proxy's reason must win over it.
        let upstream = FakeUpstream(status: .success(.success))
        let downstream = FakeDownstream(options: RemoteCommandOptions(stdout: true, stderr: true))
        let observer = RecordingObserver()
        let bridge = RemoteCommandBridge(downstream: downstream, upstream: upstream, observer: observer)
        upstream.emit("before the end\n", on: .stdout)
        let running = Task { await bridge.run() }
        while observer.events.isEmpty { try await Task.sleep(for: .milliseconds(5)) }
        await bridge.end(reason: "the proxy is shutting down")
        let summary = await running.value
        #expect(
            downstream.finished
                == .failure(message: "the proxy is shutting down", reason: "ServiceUnavailable", code: 503))
        #expect(summary.status == downstream.finished)
        #expect(!summary.upstreamStatus)
        #expect(upstream.isClosed)
        #expect(downstream.written(.stdout) == "before the end\n")
        #expect(observer.events == ["stdout before the end\n"])
    }

    @Test("a client that went away closes the upstream session")
    func clientGone() async throws {
        let upstream = FakeUpstream(status: .success(.success))
        let downstream = FakeDownstream(options: RemoteCommandOptions(stdout: true, stderr: false))
        downstream.failWrites = true
        upstream.emit("nobody reads this", on: .stdout)
        let summary = await RemoteCommandBridge(downstream: downstream, upstream: upstream).run()
        #expect(upstream.isClosed)
        #expect(!summary.upstreamStatus)
        #expect(summary.status != .success)
    }

    @Test("the observer sees input and output before they go on")
    func observerSeesEverything() async throws {
        let upstream = FakeUpstream(status: .success(.exited(1)), echoesStdin: true)
        let downstream = FakeDownstream(options: RemoteCommandOptions(stdin: true, stdout: true, stderr: false))
        let observer = RecordingObserver()
        downstream.type("ls\n")
        downstream.endStdin()
        _ = await RemoteCommandBridge(downstream: downstream, upstream: upstream, observer: observer).run()
        #expect(observer.events == ["i ls\n", "stdout ls\n"])
    }

    @Test("a WebSocket client's output waits for the configured delay")
    func outputDelay() async throws {
        let upstream = FakeUpstream(status: .success(.success))
        let downstream = FakeDownstream(options: RemoteCommandOptions(stdout: true, stderr: false))
        upstream.emit("x", on: .stdout)
        upstream.endOutput()
        let clock = ContinuousClock()
        let start = clock.now
        _ = await RemoteCommandBridge(downstream: downstream, upstream: upstream, outputDelay: .milliseconds(100)).run()
        #expect(clock.now - start >= .milliseconds(100))
        #expect(downstream.written(.stdout) == "x")
    }
}

// MARK: In-memory sessions

final class FakeDownstream: RemoteCommandDownstream, @unchecked Sendable {
    let options: RemoteCommandOptions
    let stdin: AsyncThrowingStream<ByteBuffer, any Error>?
    let resizes: AsyncThrowingStream<TerminalSize, any Error>
    private let stdinInput: AsyncThrowingStream<ByteBuffer, any Error>.Continuation
    private let resizeInput: AsyncThrowingStream<TerminalSize, any Error>.Continuation
    private let lock = NSLock()
    private var output: [RemoteCommandStreamType: [UInt8]] = [:]
    private var status: RemoteCommandStatus?
    private var shouldFail = false

    init(options: RemoteCommandOptions) {
        self.options = options
        let (stdin, stdinInput) = AsyncThrowingStream<ByteBuffer, any Error>.makeStream()
        let (resizes, resizeInput) = AsyncThrowingStream<TerminalSize, any Error>.makeStream()
        self.stdin = options.stdin ? stdin : nil
        self.stdinInput = stdinInput
        self.resizes = resizes
        self.resizeInput = resizeInput
    }

    var failWrites: Bool {
        get { lock.withLock { shouldFail } }
        set { lock.withLock { shouldFail = newValue } }
    }
    var finished: RemoteCommandStatus? { lock.withLock { status } }

    func written(_ stream: RemoteCommandStreamType) -> String {
        lock.withLock { String(decoding: output[stream] ?? [], as: UTF8.self) }
    }

    func type(_ text: String) { stdinInput.yield(ByteBuffer(string: text)) }
    func endStdin() { stdinInput.finish() }
    func resize(_ size: TerminalSize) { resizeInput.yield(size) }

    func writeStdout(_ data: ByteBuffer) async throws { try write(data, to: .stdout) }
    func writeStderr(_ data: ByteBuffer) async throws { try write(data, to: .stderr) }

    private func write(_ data: ByteBuffer, to stream: RemoteCommandStreamType) throws {
        try lock.withLock {
            if shouldFail { throw ChannelError.ioOnClosedChannel }
            output[stream, default: []].append(contentsOf: data.readableBytesView)
        }
    }

    func finish(status: RemoteCommandStatus) async {
        lock.withLock { self.status = status }
        stdinInput.finish()
        resizeInput.finish()
    }
}

final class FakeUpstream: RemoteCommandUpstream, @unchecked Sendable {
    let stdout: AsyncThrowingStream<ByteBuffer, any Error>?
    let stderr: AsyncThrowingStream<ByteBuffer, any Error>?
    private let stdoutInput: AsyncThrowingStream<ByteBuffer, any Error>.Continuation
    private let stderrInput: AsyncThrowingStream<ByteBuffer, any Error>.Continuation
    private let statusResult: Result<RemoteCommandStatus, any Error>
    private let echoesStdin: Bool
    private let endOutputAfterResizes: Int?
    private let lock = NSLock()
    private var received: [UInt8] = []
    private var closedStdin = false
    private var receivedSizes: [TerminalSize] = []
    private var closed = false

    /// - Parameters:
    ///   - echoesStdin: behave like `cat`: stdin comes back on stdout, and its end ends the output.
    ///   - endOutputAfterResizes: end the output once this many sizes arrived.
    init(
        status: Result<RemoteCommandStatus, any Error>, echoesStdin: Bool = false, endOutputAfterResizes: Int? = nil
    ) {
        (stdout, stdoutInput) = AsyncThrowingStream<ByteBuffer, any Error>.makeStream()
        (stderr, stderrInput) = AsyncThrowingStream<ByteBuffer, any Error>.makeStream()
        statusResult = status
        self.echoesStdin = echoesStdin
        self.endOutputAfterResizes = endOutputAfterResizes
    }

    var stdinText: String { lock.withLock { String(decoding: received, as: UTF8.self) } }
    var stdinClosed: Bool { lock.withLock { closedStdin } }
    var sizes: [TerminalSize] { lock.withLock { receivedSizes } }
    var isClosed: Bool { lock.withLock { closed } }

    func emit(_ text: String, on stream: RemoteCommandStreamType) {
        (stream == .stderr ? stderrInput : stdoutInput).yield(ByteBuffer(string: text))
    }

    func endOutput() {
        stdoutInput.finish()
        stderrInput.finish()
    }

    func writeStdin(_ data: ByteBuffer) async throws {
        lock.withLock { received.append(contentsOf: data.readableBytesView) }
        if echoesStdin { stdoutInput.yield(data) }
    }

    func closeStdin() async throws {
        lock.withLock { closedStdin = true }
        if echoesStdin { endOutput() }
    }

    func resize(to size: TerminalSize) async throws {
        let count = lock.withLock {
            receivedSizes.append(size)
            return receivedSizes.count
        }
        if count == endOutputAfterResizes { endOutput() }
    }

    func status() async throws -> RemoteCommandStatus { try statusResult.get() }

    func close() async {
        lock.withLock { closed = true }
        endOutput()
    }
}

final class RecordingObserver: RemoteCommandObserver, @unchecked Sendable {
    private let lock = NSLock()
    private var log: [String] = []

    var events: [String] { lock.withLock { log } }

    func stdin(_ data: ByteBuffer) async { lock.withLock { log.append("i " + String(buffer: data)) } }
    func output(_ data: ByteBuffer, stream: RemoteCommandStreamType) async {
        lock.withLock { log.append("\(stream) " + String(buffer: data)) }
    }
    func resize(_ size: TerminalSize) async { lock.withLock { log.append("r \(size)") } }
    func marker(_ label: String) async { lock.withLock { log.append("m " + label) } }
}
