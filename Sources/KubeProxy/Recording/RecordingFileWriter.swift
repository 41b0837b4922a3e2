import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

/// Appends to one recording file (an asciicast, a pcap) in the order bytes are handed over, writing
/// on NIO's blocking-I/O pool behind the session rather than in its path.
///
/// A session hands over its events and goes on; it waits only while more than ``backlogLimit``
/// bytes are not written yet, so a slow disk slows the session instead of losing events or
/// growing memory without bound, and a crash of the proxy loses at most that backlog (the
/// recording then lacks its end marker, which says so). Bytes handed over while a write runs go
/// out in the next one, so a fast session costs a system call per batch, not per event.
///
/// ``enqueue(_:)`` is synchronous so that an actor can order its events by when it built them;
/// ``waitForSpace()`` is the backpressure, awaited after it.
final class RecordingFileWriter: Sendable {
    /// What may be handed over and not written yet before sessions wait: a few hundred
    /// milliseconds of the fastest output, small beside a session's other buffers.
    static let defaultBacklogLimit = 1 << 20
    /// Small events are merged into one segment up to this size, so typing costs few writes.
    static let segmentMergeLimit = 64 << 10

    let path: String
    let backlogLimit: Int
    private let descriptor: Int32
    private let threadPool: NIOThreadPool
    private let state = NIOLockedValueBox(State())

    private struct State {
        var segments: [[UInt8]] = []
        /// Bytes handed over and not written yet.
        var backlog = 0
        var writing = false
        var failure: String?
        var spaceWaiters: [CheckedContinuation<Void, Never>] = []
        var idleWaiters: [CheckedContinuation<Void, Never>] = []

        var isIdle: Bool { !writing && segments.isEmpty }

        mutating func takeWaiters(limit: Int) -> [CheckedContinuation<Void, Never>] {
            var ready: [CheckedContinuation<Void, Never>] = []
            if backlog <= limit || failure != nil {
                ready += spaceWaiters
                spaceWaiters = []
            }
            if isIdle || failure != nil {
                ready += idleWaiters
                idleWaiters = []
            }
            return ready
        }
    }

    /// Creates the file (mode 0600, never overwriting one that exists); `kind` names it in the
    /// error ("recording", "capture").
    init(
        path: String, kind: String, backlogLimit: Int = defaultBacklogLimit, threadPool: NIOThreadPool = .singleton
    ) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw SessionRecorder.RecordingError(
                description: "cannot create the \(kind) \(path): \(String(cString: strerror(errno)))")
        }
        self.path = path
        self.descriptor = descriptor
        self.backlogLimit = max(1, backlogLimit)
        self.threadPool = threadPool
    }

    deinit {
        close(descriptor)
    }

    /// Whether a write failed: the file is incomplete, and later bytes are dropped.
    var hasFailed: Bool { state.withLockedValue { $0.failure != nil } }

    /// Hands `bytes` over to be written after everything handed over before.
    func enqueue(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        let startWriting = state.withLockedValue { state -> Bool in
            guard state.failure == nil else { return false }
            if let last = state.segments.indices.last,
                state.segments[last].count + bytes.count <= Self.segmentMergeLimit
            {
                state.segments[last] += bytes
            } else {
                state.segments.append(bytes)
            }
            state.backlog += bytes.count
            guard !state.writing else { return false }
            state.writing = true
            return true
        }
        if startWriting { threadPool.submit { self.writePending(poolState: $0) } }
    }

    /// Returns once the backlog is within ``backlogLimit`` (or writing failed).
    func waitForSpace() async {
        await withCheckedContinuation { continuation in
            let waits = state.withLockedValue { state -> Bool in
                guard state.backlog > backlogLimit, state.failure == nil else { return false }
                state.spaceWaiters.append(continuation)
                return true
            }
            if !waits { continuation.resume() }
        }
    }

    /// Returns once everything handed over is written (or writing failed).
    func flush() async {
        await withCheckedContinuation { continuation in
            let waits = state.withLockedValue { state -> Bool in
                guard !state.isIdle, state.failure == nil else { return false }
                state.idleWaiters.append(continuation)
                return true
            }
            if !waits { continuation.resume() }
        }
    }

    /// Writes everything handed over, then syncs the file to disk.
    func synchronize() async {
        await flush()
        let descriptor = self.descriptor
        _ = try? await threadPool.runIfActive { fsync(descriptor) }
    }

    /// The pool's loop: writes batches until nothing is pending.
    private func writePending(poolState: NIOThreadPool.WorkItemState) {
        var failure: String? = poolState == .cancelled ? "the I/O thread pool has stopped" : nil
        while true {
            let (batch, waiters) = state.withLockedValue { state -> ([[UInt8]], [CheckedContinuation<Void, Never>]) in
                if let failure {
                    state.failure = state.failure ?? failure
                    state.segments = []
                    state.backlog = 0
                }
                guard !state.segments.isEmpty else {
                    state.writing = false
                    return ([], state.takeWaiters(limit: backlogLimit))
                }
                defer { state.segments = [] }
                return (state.segments, [])
            }
            guard !batch.isEmpty else {
                for waiter in waiters { waiter.resume() }
                return
            }
            var written = 0
            for segment in batch where failure == nil {
                if let error = Self.writeAll(segment, to: descriptor) {
                    failure = error
                } else {
                    written += segment.count
                }
            }
            let ready = state.withLockedValue { state in
                state.backlog -= written
                return state.takeWaiters(limit: backlogLimit)
            }
            for waiter in ready { waiter.resume() }
        }
    }

    /// Writes all of `bytes` (retrying short writes and interrupts); the error text when that fails.
    private static func writeAll(_ bytes: [UInt8], to descriptor: Int32) -> String? {
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let result = write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if result < 0 {
                    if errno == EINTR { continue }
                    return String(cString: strerror(errno))
                }
                offset += result
            }
            return nil
        }
    }
}
