import CZlib
import NIOCore

/// The deflate side of one direction of a SPDY connection (protocols.md §1.4).
///
/// Every header block continues the same zlib stream, primed with the SPDY/3 dictionary and
/// ended with `Z_SYNC_FLUSH`, never `Z_FINISH`. zlib's state exists only while a block is
/// compressed; between blocks the deflater keeps the stream's window (see SPDYHeaderCompression).
/// Not thread-safe; confine it to the connection's event loop.
public final class SPDYHeaderDeflater {
    private enum State {
        /// Nothing compressed yet: the next block starts the zlib stream (header and dictionary).
        case fresh
        /// Between blocks: the last window of uncompressed input, which primes a raw deflate
        /// stream that continues the zlib stream.
        case between(window: [UInt8])
        /// zlib failed; the peer's context is out of step with ours, so every block fails.
        case failed(SPDYError)
    }

    private let parameters: SPDYHeaderCompressionParameters
    private var state = State.fresh

    /// Construction never fails: should zlib fail (out of memory), ``compress(_:into:)`` reports it.
    public init(parameters: SPDYHeaderCompressionParameters = .compact) {
        self.parameters = parameters
    }

    /// Compresses one uncompressed header block and appends the result (ending `00 00 ff ff`) to `output`.
    public func compress(_ block: ByteBuffer, into output: inout ByteBuffer) throws(SPDYError) {
        do throws(SPDYError) {
            let stream = try openStream()
            defer { stream.freeZStream(ending: deflateEnd) }
            let status = Self.deflateSyncFlush(stream, block, into: &output)
            guard status == Z_OK else { throw SPDYError(.headerCompressionFailed, "deflate returned \(status)") }
            state = .between(window: stream.window { deflateGetDictionary($0, $1, $2) })
        } catch {
            state = .failed(error)
            throw error
        }
    }

    /// A zlib stream positioned where the last block ended.
    private func openStream() throws(SPDYError) -> UnsafeMutablePointer<z_stream> {
        let dictionary: [UInt8]
        let windowBits: Int32
        switch state {
        case .fresh:
            dictionary = SPDYHeaderDictionary.bytes
            windowBits = parameters.windowBits
        case .between(let window):
            dictionary = window
            windowBits = -parameters.windowBits  // raw: no second zlib header
        case .failed(let error):
            throw error
        }
        let stream = UnsafeMutablePointer<z_stream>.allocateZStream()
        let status = czlib_deflateInit2(
            stream, parameters.level, Z_DEFLATED, windowBits, parameters.memoryLevel, Z_DEFAULT_STRATEGY)
        guard status == Z_OK else {
            stream.freeZStream()
            throw SPDYError(.headerCompressionFailed, "deflateInit2 returned \(status)")
        }
        let dictionaryStatus = dictionary.withUnsafeBufferPointer {
            deflateSetDictionary(stream, $0.baseAddress, uInt($0.count))
        }
        guard dictionaryStatus == Z_OK else {
            stream.freeZStream(ending: deflateEnd)
            throw SPDYError(.headerCompressionFailed, "deflateSetDictionary returned \(dictionaryStatus)")
        }
        return stream
    }

    private static func deflateSyncFlush(
        _ stream: UnsafeMutablePointer<z_stream>, _ block: ByteBuffer, into output: inout ByteBuffer
    ) -> Int32 {
        block.withUnsafeReadableBytes { input in
            stream.feeding(input) {
                while true {
                    var status = Z_OK
                    var filledOutput = false
                    output.writeWithUnsafeMutableBytes(minimumWritableBytes: input.count + 64) { space in
                        stream.pointee.next_out = space.baseAddress?.assumingMemoryBound(to: Bytef.self)
                        stream.pointee.avail_out = uInt(space.count)
                        status = deflate(stream, Z_SYNC_FLUSH)
                        filledOutput = stream.pointee.avail_out == 0
                        let written = space.count - Int(stream.pointee.avail_out)
                        stream.pointee.next_out = nil
                        stream.pointee.avail_out = 0
                        return written
                    }
                    // Z_BUF_ERROR only means "no progress possible", e.g. a repeated flush.
                    guard status == Z_OK || status == Z_BUF_ERROR else { return status }
                    // The sync flush is complete once deflate stops short of filling the output space.
                    if !filledOutput { return Z_OK }
                }
            }
        }
    }
}
