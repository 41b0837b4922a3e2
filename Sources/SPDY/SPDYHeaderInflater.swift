import CZlib
import NIOCore

/// The inflate side of one direction of a SPDY connection (protocols.md §1.4).
///
/// Every block must inflate completely with no compressed byte left over; the first one asks for the
/// SPDY/3 dictionary by its adler-32. When a block ends at a deflate block boundary on a byte edge
/// (a sync flush, which is what Go and Chromium send), zlib's state is freed and only the window is
/// kept until the next block (see SPDYHeaderCompression); a peer that ends blocks elsewhere keeps a
/// live context. Any failure leaves the shared zlib state unusable, so the inflater refuses all
/// later blocks and the session must end. Not thread-safe.
public final class SPDYHeaderInflater {
    private enum State {
        /// No block yet: the next starts a zlib stream (header, then the dictionary it asks for).
        case fresh
        /// The last block did not end on a byte-aligned block boundary, so zlib's state is kept.
        case live(UnsafeMutablePointer<z_stream>)
        /// Between blocks: the window of uncompressed bytes, which primes a raw inflate stream.
        case between(window: [UInt8])
        case failed(SPDYError)
    }

    private var state = State.fresh

    public init() {}

    /// Whether zlib's state is allocated now, between blocks (tests).
    var holdsZlibState: Bool {
        if case .live = state { return true }
        return false
    }

    deinit {
        if case .live(let stream) = state { Self.release(stream) }
    }

    /// Inflates one compressed block.
    ///
    /// - Parameters:
    ///   - compressed: the block exactly as carried by the frame.
    ///   - maxOutput: the most bytes the block may inflate to (``SPDYLimits/maxDecompressedHeaderBlock``).
    /// - Returns: the uncompressed block.
    public func decompress(_ compressed: ByteBuffer, maxOutput: Int) throws(SPDYError) -> ByteBuffer {
        let stream = try openStream()
        do throws(SPDYError) {
            let output = try Self.inflateBlock(stream, compressed, maxOutput: maxOutput)
            let position = stream.pointee.data_type
            // 128: stopped at a block boundary; 64: in the final block; 0–7: bits left unused.
            if position & 128 != 0, position & (64 | 7) == 0 {
                state = .between(window: stream.window { inflateGetDictionary($0, $1, $2) })
                Self.release(stream)
            } else {
                state = .live(stream)
            }
            return output
        } catch {
            Self.release(stream)
            state = .failed(
                SPDYError(error.kind, "the header compression context failed earlier: \(error.message)"))
            throw error
        }
    }

    /// A zlib stream positioned where the last block ended.
    private func openStream() throws(SPDYError) -> UnsafeMutablePointer<z_stream> {
        let window: [UInt8]?
        switch state {
        case .fresh: window = nil
        case .live(let stream): return stream
        case .between(let saved): window = saved
        case .failed(let error): throw error
        }
        let stream = UnsafeMutablePointer<z_stream>.allocateZStream()
        // Raw (negative bits) to continue a stream whose zlib header was read by an earlier context.
        let status = czlib_inflateInit2(stream, window == nil ? 15 : -15)
        guard status == Z_OK else {
            stream.freeZStream()
            let error = SPDYError(.headerDecompressionFailed, "inflateInit2 returned \(status)")
            state = .failed(error)
            throw error
        }
        if let window, !window.isEmpty {
            let primed = window.withUnsafeBufferPointer {
                inflateSetDictionary(stream, $0.baseAddress, uInt($0.count))
            }
            guard primed == Z_OK else {
                Self.release(stream)
                let error = SPDYError(.headerDecompressionFailed, "inflateSetDictionary returned \(primed)")
                state = .failed(error)
                throw error
            }
        }
        state = .live(stream)
        return stream
    }

    private static func release(_ stream: UnsafeMutablePointer<z_stream>) {
        stream.freeZStream(ending: inflateEnd)
    }

    private enum Step {
        case needDictionary, progress, done
        case failed(Int32)
    }

    private static func inflateBlock(
        _ stream: UnsafeMutablePointer<z_stream>, _ compressed: ByteBuffer, maxOutput: Int
    ) throws(SPDYError) -> ByteBuffer {
        var output = ByteBufferAllocator().buffer(capacity: min(maxOutput + 1, max(256, compressed.readableBytes * 4)))
        let outcome: SPDYError? = compressed.withUnsafeReadableBytes { input in
            stream.feeding(input) { () -> SPDYError? in
                while true {
                    // Offer at most one byte more than allowed, so a bomb is caught after inflating maxOutput + 1.
                    let allowance = maxOutput + 1 - output.readableBytes
                    if allowance <= 0 {
                        return SPDYError(
                            .decompressedHeaderBlockTooLarge, "header block inflates beyond \(maxOutput) bytes")
                    }
                    let chunk = min(allowance, max(1024, output.readableBytes))
                    var step = Step.progress
                    output.writeWithUnsafeMutableBytes(minimumWritableBytes: chunk) { space in
                        let offered = min(space.count, allowance)
                        stream.pointee.next_out = space.baseAddress?.assumingMemoryBound(to: Bytef.self)
                        stream.pointee.avail_out = uInt(offered)
                        let status = inflate(stream, Z_SYNC_FLUSH)
                        let remainingOut = Int(stream.pointee.avail_out)
                        stream.pointee.next_out = nil
                        stream.pointee.avail_out = 0
                        switch status {
                        case Z_NEED_DICT: step = .needDictionary
                        case Z_OK where stream.pointee.avail_in == 0 && remainingOut > 0: step = .done
                        case Z_OK: step = .progress
                        // No progress possible: normal once all input is consumed (§1.4 rule 5).
                        case Z_BUF_ERROR where stream.pointee.avail_in == 0: step = .done
                        case Z_BUF_ERROR where remainingOut == 0: step = .progress
                        default: step = .failed(status)
                        }
                        return offered - remainingOut
                    }
                    switch step {
                    case .progress:
                        continue
                    case .done:
                        if output.readableBytes > maxOutput {
                            return SPDYError(
                                .decompressedHeaderBlockTooLarge, "header block inflates beyond \(maxOutput) bytes")
                        }
                        return nil
                    case .needDictionary:
                        guard stream.pointee.adler == uLong(SPDYHeaderDictionary.adler32) else {
                            let id = String(stream.pointee.adler, radix: 16)
                            return SPDYError(
                                .headerDecompressionFailed, "zlib stream wants dictionary \(id), not e3c6a7c2")
                        }
                        let status = SPDYHeaderDictionary.bytes.withUnsafeBufferPointer {
                            inflateSetDictionary(stream, $0.baseAddress, uInt($0.count))
                        }
                        guard status == Z_OK else {
                            return SPDYError(.headerDecompressionFailed, "inflateSetDictionary returned \(status)")
                        }
                    case .failed(let status):
                        let reason =
                            status == Z_STREAM_END ? "the zlib stream ended (Z_FINISH is not allowed)" : "\(status)"
                        return SPDYError(.headerDecompressionFailed, "inflate failed: \(reason)")
                    }
                }
            }
        }
        if let outcome { throw outcome }
        return output
    }
}
