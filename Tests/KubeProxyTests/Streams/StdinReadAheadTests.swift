import NIOCore
import Synchronization
import Testing

@testable import KubeProxy

/// Stdin read ahead of the line guard: bounded, in order, ends and failures passed on, Ctrl-C
/// noticed while a line waits.
@Suite("StdinReadAhead")
struct StdinReadAheadTests {
    /// Yields `chunks` chunks of `size` bytes, then ends or fails; counts how many were pulled.
    struct Source: AsyncSequence, Sendable {
        let chunks: Int
        let size: Int
        let failure: Bool
        let pulled: Counter

        struct AsyncIterator: AsyncIteratorProtocol {
            let source: Source
            var index = 0

            mutating func next() async throws -> ByteBuffer? {
                guard index < source.chunks else {
                    if source.failure { throw ChannelError.ioOnClosedChannel }
                    return nil
                }
                index += 1
                source.pulled.increment()
                return ByteBuffer(repeating: UInt8(index), count: source.size)
            }
        }

        func makeAsyncIterator() -> AsyncIterator { AsyncIterator(source: self) }
    }

    final class Counter: Sendable {
        private let value = Mutex(0)
        func increment() { value.withLock { $0 += 1 } }
        var count: Int { value.withLock { $0 } }
    }

    @Test("the reader stops past the limit and goes on as the guard takes chunks; order and the end are kept")
    func bounded() async throws {
        let pulled = Counter()
        let size = 40 * 1024
        let readAhead = StdinReadAhead()
        let reader = Task {
            await readAhead.fill(from: Source(chunks: 4, size: size, failure: false, pulled: pulled), interrupt: nil)
        }
        try await Task.sleep(for: .milliseconds(200))
        #expect(pulled.count == 2, "40 KiB fit, 80 KiB is past the limit: the reader waits")
        var seen: [UInt8] = []
        while let chunk = try await readAhead.next(interrupt: nil) {
            #expect(chunk.readableBytes == size)
            seen.append(chunk.readableBytesView.first ?? 0)
        }
        #expect(seen == [1, 2, 3, 4])
        #expect(pulled.count == 4)
        await reader.value
    }

    @Test("a failed input is passed on after the chunks read before it")
    func failure() async throws {
        let readAhead = StdinReadAhead()
        await readAhead.fill(from: Source(chunks: 1, size: 3, failure: true, pulled: Counter()), interrupt: nil)
        #expect(try await readAhead.next(interrupt: nil)?.readableBytes == 3)
        await #expect(throws: ChannelError.self) { try await readAhead.next(interrupt: nil) }
    }

    @Test("a waiting consumer is released when its task is cancelled")
    func cancelled() async throws {
        let readAhead = StdinReadAhead()
        let consumer = Task { try await readAhead.next(interrupt: nil) }
        try await Task.sleep(for: .milliseconds(50))
        consumer.cancel()
        #expect(try await consumer.value == nil)
    }

    @Test("a Ctrl-C queued or arriving while a wait is armed cancels the wait, and only then")
    func interrupt() async throws {
        let interrupt = LineWaitInterrupt()
        let idle = Task { LineVerdict.unchecked }
        interrupt.arm(idle)
        #expect(!interrupt.disarm(), "nothing typed")

        let waiting = Task<LineVerdict, Never> {
            do {
                try await Task.sleep(for: .seconds(30))
                return .unchecked
            } catch {
                return LineVerdict(outcome: .blocked)
            }
        }
        interrupt.arm(waiting)
        interrupt.interruptQueued()
        #expect(await waiting.value.outcome == .blocked)
        #expect(interrupt.disarm())

        // Typed before the wait began and not yet taken: the next wait ends at once.
        let later = Task<LineVerdict, Never> {
            (try? await Task.sleep(for: .seconds(30))) == nil ? LineVerdict(outcome: .blocked) : .unchecked
        }
        interrupt.arm(later)
        #expect(await later.value.outcome == .blocked)
        #expect(interrupt.disarm())
        // Once the guard took that chunk, waits are left alone.
        interrupt.interruptTaken()
        interrupt.interruptTaken()
        let calm = Task { LineVerdict.unchecked }
        interrupt.arm(calm)
        #expect(await calm.value == .unchecked)
        #expect(!interrupt.disarm())
    }
}
