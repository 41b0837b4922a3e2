import NIOCore

/// One output stream of a session written through a ``StreamOutputMasker``: frames go out masked as
/// soon as they are final, and what the masker holds back (a possible match's beginning) goes out
/// once the stream has been quiet for ``idleFlush``, so an interactive prompt is late by at most
/// that, never stuck. Quiet is counted from when the frame's bytes were written, not from when it
/// arrived: a slow client or recording holds the next frame back, and that wait must not flush
/// half a match.
///
/// Writes are chained: each starts after the previous one finished, whether it came from a frame or
/// from the idle timer, so the client sees the bytes in order. A frame's call returns when its
/// bytes are written, which keeps the session's backpressure.
actor MaskedOutputWriter {
    typealias Write = @Sendable (ByteBuffer) async throws -> Void

    /// Long enough that the rest of a match split across frames of one burst arrives first; short
    /// enough not to be noticed at a prompt.
    static let defaultIdleFlush: Duration = .milliseconds(30)

    private var masker: StreamOutputMasker
    private let write: Write
    let idleFlush: Duration
    /// Bumped by every frame: a timer set for an older one has nothing to do.
    private var generation = 0
    private var lastWrite: Task<Void, any Error>?

    init(masker: StreamOutputMasker, idleFlush: Duration = defaultIdleFlush, write: @escaping Write) {
        self.masker = masker
        self.idleFlush = idleFlush
        self.write = write
    }

    var maskedCount: Int { masker.maskedCount }

    /// Masks and writes what is final in `frame`; throws when the client's side is gone.
    func consume(_ frame: ByteBuffer) async throws {
        generation += 1
        let current = generation
        let ready = masker.consume(frame.readableBytesView)
        try await enqueue(ready)
        if masker.hasPending && generation == current { scheduleFlush(after: current) }
    }

    /// Writes everything still held back: the stream ended.
    func finish() async throws {
        generation += 1
        try await enqueue(masker.flush())
    }

    private func scheduleFlush(after expected: Int) {
        let delay = idleFlush
        Task {
            try? await Task.sleep(for: delay)
            await self.flushIfQuiet(since: expected)
        }
    }

    private func flushIfQuiet(since expected: Int) async {
        guard generation == expected else { return }
        try? await enqueue(masker.flush())
    }

    private func enqueue(_ bytes: [UInt8]) async throws {
        guard !bytes.isEmpty else {
            try await lastWrite?.value
            return
        }
        let previous = lastWrite
        let write = self.write
        let next = Task {
            try await previous?.value
            try await write(ByteBuffer(bytes: bytes))
        }
        lastWrite = next
        try await next.value
    }
}
