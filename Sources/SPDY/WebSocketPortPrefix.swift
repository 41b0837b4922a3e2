import NIOCore

/// The port that opens every channel of a legacy WebSocket port-forward (protocols.md §5.2): the
/// server's first bytes on data channel 2i and error channel 2i+1 are the i-th port, as a 2-byte
/// little-endian integer. Port 8080 is `90 1F`.
///
/// A pure codec for the client end, which strips the prefix and checks it names the port it asked for.
/// The kubelet sends the prefix as a message of its own; this does not depend on that.
///
/// ```
/// AWAITING(bytes so far) ──2 bytes, the expected port──▶ PASSING: the rest and every later byte delivered
///          └──────────────2 bytes, another port────────▶ FAILED: every later receive is a mismatch
/// ```
struct WebSocketPortPrefix: Sendable {
    /// What to do with the bytes just received.
    enum Action: Equatable {
        /// The prefix is not complete yet: deliver nothing.
        case wait
        /// Stream bytes (possibly none) to deliver.
        case deliver(ByteBuffer)
        /// The prefix named another port: the channel is not the one asked for.
        case mismatch(received: UInt16)
    }

    private enum State {
        case awaiting(ByteBuffer)
        case passing
        case failed(received: UInt16)
    }

    static let length = 2

    let expectedPort: UInt16
    private var state = State.awaiting(ByteBuffer())

    init(expectedPort: UInt16) {
        self.expectedPort = expectedPort
    }

    /// The prefix the server sends for `port`.
    static func encode(_ port: UInt16) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(port, endianness: .little)
        return buffer
    }

    mutating func receive(_ bytes: ByteBuffer) -> Action {
        switch state {
        case .passing:
            return .deliver(bytes)
        case .failed(let received):
            return .mismatch(received: received)
        case .awaiting(var collected):
            var bytes = bytes
            let needed = Self.length - collected.readableBytes
            var head = bytes.readSlice(length: min(needed, bytes.readableBytes))!
            collected.writeBuffer(&head)
            guard let port = collected.getInteger(at: collected.readerIndex, endianness: .little, as: UInt16.self)
            else {
                state = .awaiting(collected)
                return .wait
            }
            guard port == expectedPort else {
                state = .failed(received: port)
                return .mismatch(received: port)
            }
            state = .passing
            return .deliver(bytes)
        }
    }
}
