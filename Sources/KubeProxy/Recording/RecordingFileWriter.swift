import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

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
    /// Locked by one write at a time (the `writing` flag already keeps writes apart).
    private let appender: NIOLockedValueBox<RecordingFileAppender>
    private let threadPool: NIOThreadPool
    private let state = NIOLockedValueBox(State())

    private struct State {
        var segments: [RecordingSegment] = []
        /// Bytes handed over and not written yet.
        var backlog = 0
        /// Bytes handed over since the file was created: the file offset of the next.
        var handedOver = 0
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
    /// error ("recording", "capture"). `directIO` off keeps every write in the page cache.
    init(
        path: String, kind: String, backlogLimit: Int = defaultBacklogLimit, directIO: Bool = true,
        threadPool: NIOThreadPool = .singleton
    ) throws {
        do {
            appender = NIOLockedValueBox(try RecordingFileAppender(creating: path, directIO: directIO))
        } catch {
            throw SessionRecorder.RecordingError(description: "cannot create the \(kind) \(path): \(error)")
        }
        self.path = path
        self.backlogLimit = max(1, backlogLimit)
        self.threadPool = threadPool
    }

    /// Whether a write failed: the file is incomplete, and later bytes are dropped.
    var hasFailed: Bool { state.withLockedValue { $0.failure != nil } }

    /// Hands `bytes` over to be written after everything handed over before.
    func enqueue(_ bytes: [UInt8]) {
        enqueue(.bytes(bytes))
    }

    /// Hands over `count` bytes that `build` writes at the address it is given (with room for
    /// `scratch` bytes more, which it may overwrite). Bulk is built in place where the disk can
    /// take it from without a copy (``PlacedRecordingBytes``); one producer at a time, or the
    /// placement is wasted (never wrong: misplaced bytes are copied).
    func enqueue(count: Int, scratch: Int = 0, build: (UnsafeMutableRawPointer) -> Void) {
        guard count >= RecordingFileAppender.directWriteMinimum else {
            enqueue(
                [UInt8](unsafeUninitializedCapacity: count + scratch) { buffer, initialized in
                    build(UnsafeMutableRawPointer(buffer.baseAddress!))
                    initialized = count
                })
            return
        }
        let offset = state.withLockedValue { $0.handedOver }
        let placed = PlacedRecordingBytes(
            fileOffset: offset, count: count, scratch: scratch, blockSize: RecordingFileAppender.defaultBlockSize)
        build(placed.start)
        enqueue(.placed(placed))
    }

    private func enqueue(_ segment: RecordingSegment) {
        guard segment.count > 0 else { return }
        let startWriting = state.withLockedValue { state -> Bool in
            guard state.failure == nil else { return false }
            if case .bytes(let bytes) = segment, let last = state.segments.indices.last,
                case .bytes(var merged) = state.segments[last],
                merged.count + bytes.count <= Self.segmentMergeLimit
            {
                state.segments[last] = .bytes([])  // keeps `merged` unique: appended in place
                merged += bytes
                state.segments[last] = .bytes(merged)
            } else {
                state.segments.append(segment)
            }
            state.backlog += segment.count
            state.handedOver += segment.count
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
        let appender = self.appender
        _ = try? await threadPool.runIfActive { appender.withLockedValue { $0.synchronize() } }
    }

    private enum Step {
        case write([RecordingSegment])
        /// Nothing is pending: the appender's held bytes go to the file before anyone is told
        /// that everything is written.
        case completeFile
        case finish([CheckedContinuation<Void, Never>])
    }

    /// The pool's loop: writes batches until nothing is pending.
    private func writePending(poolState: NIOThreadPool.WorkItemState) {
        var failure: String? = poolState == .cancelled ? "the I/O thread pool has stopped" : nil
        var fileComplete = true
        while true {
            let step = state.withLockedValue { state -> Step in
                if let failure {
                    state.failure = state.failure ?? failure
                    state.segments = []
                    state.backlog = 0
                }
                if !state.segments.isEmpty {
                    defer { state.segments = [] }
                    return .write(state.segments)
                }
                if !fileComplete { return .completeFile }
                state.writing = false
                return .finish(state.takeWaiters(limit: backlogLimit))
            }
            switch step {
            case .write(let batch):
                if failure == nil {
                    do {
                        try appender.withLockedValue { try $0.append(batch) }
                    } catch {
                        failure = "\(error)"
                    }
                }
                fileComplete = false
                let written = batch.reduce(0) { $0 + $1.count }
                let ready = state.withLockedValue { state in
                    state.backlog -= written
                    return state.takeWaiters(limit: backlogLimit)
                }
                for waiter in ready { waiter.resume() }
            case .completeFile:
                if failure == nil {
                    do {
                        try appender.withLockedValue { try $0.writeHeldBytes() }
                    } catch {
                        failure = "\(error)"
                    }
                }
                fileComplete = true
            case .finish(let waiters):
                for waiter in waiters { waiter.resume() }
                return
            }
        }
    }
}
