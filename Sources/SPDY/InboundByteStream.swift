import NIOCore

/// Bytes arriving on one logical stream (a SPDY stream, a WebSocket channel), as an async sequence
/// with backpressure: when the consumer falls behind, the connection stops reading (protocols.md §1.6).
///
/// It ends normally at the peer's half-close (SPDY FIN, WebSocket CLOSE) and throws when the stream
/// is aborted: ``SPDYError/Kind/streamReset`` for an RST_STREAM, ``SPDYError/Kind/sessionClosed`` when
/// the connection goes away. It can be iterated once. Consume it, or drop it (then later bytes are
/// discarded): a stream read by nobody and still referenced eventually stops the whole connection.
public struct InboundByteStream: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer
    public typealias Failure = any Error

    typealias Strategy = NIOAsyncSequenceProducerBackPressureStrategies.HighLowWatermark
    typealias Producer = NIOThrowingAsyncSequenceProducer<ByteBuffer, any Error, Strategy, Delegate>
    typealias Source = Producer.Source

    /// Forwards the consumer's demand to the connection, whichever thread it comes from.
    struct Delegate: NIOAsyncSequenceProducerDelegate {
        let onDemand: @Sendable () -> Void
        let onTermination: @Sendable () -> Void

        func produceMore() { onDemand() }
        func didTerminate() { onTermination() }
    }

    private let producer: Producer
    private var endsAtReset = false

    /// Creates the sequence and the source the connection feeds.
    ///
    /// - Parameters:
    ///   - highWatermark: buffered chunks at which the source is told to stop; it resumes below a quarter.
    ///   - onDemand: the consumer wants more after a stop (called on any thread).
    ///   - onTermination: the consumer is gone or the sequence ended (called on any thread).
    static func makeStream(
        highWatermark: Int, onDemand: @escaping @Sendable () -> Void, onTermination: @escaping @Sendable () -> Void
    ) -> (stream: InboundByteStream, source: Source) {
        let high = Swift.max(1, highWatermark)
        let made = Producer.makeSequence(
            backPressureStrategy: Strategy(lowWatermark: Swift.max(1, high / 4), highWatermark: high),
            finishOnDeinit: false,
            delegate: Delegate(onDemand: onDemand, onTermination: onTermination))
        return (InboundByteStream(producer: made.sequence), made.source)
    }

    /// The same bytes, but an abort of the stream (RST_STREAM, the connection closing) ends the sequence
    /// normally instead of throwing: how Go readers see it, and what output streams need, since servers
    /// may reset stdout instead of finishing it (§3.6, §11).
    public func endingAtReset() -> InboundByteStream {
        var copy = self
        copy.endsAtReset = true
        return copy
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: Producer.AsyncIterator
        let endsAtReset: Bool

        public mutating func next() async throws -> ByteBuffer? {
            do {
                return try await base.next()
            } catch let error as SPDYError where endsAtReset && Self.isAbort(error) {
                return nil
            }
        }

        private static func isAbort(_ error: SPDYError) -> Bool {
            error.kind == .streamReset || error.kind == .sessionClosed || error.kind == .streamClosed
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: producer.makeAsyncIterator(), endsAtReset: endsAtReset)
    }

    /// Reads everything up to the end of the stream, refusing more than `maxBytes`.
    public func collect(upTo maxBytes: Int) async throws -> ByteBuffer {
        var collected = ByteBuffer()
        for try await chunk in self {
            guard collected.readableBytes + chunk.readableBytes <= maxBytes else {
                throw SPDYError(.invalidState, "stream carried more than \(maxBytes) bytes")
            }
            var chunk = chunk
            collected.writeBuffer(&chunk)
        }
        return collected
    }
}
