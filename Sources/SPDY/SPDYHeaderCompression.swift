import CZlib
import NIOCore

/// zlib settings for our outbound header compression (protocols.md §1.4).
public struct SPDYHeaderCompressionParameters: Hashable, Sendable {
    /// zlib level, 0–9.
    public var level: Int32
    /// log2 of the window, 9–15; the 1423-byte dictionary fits any window from 11 up.
    public var windowBits: Int32
    /// zlib memLevel, 1–9.
    public var memoryLevel: Int32

    public init(level: Int32, windowBits: Int32, memoryLevel: Int32) {
        self.level = level
        self.windowBits = windowBits
        self.memoryLevel = memoryLevel
    }

    /// What Chromium used: a 2 KiB window and the smallest memLevel, about 3 KiB of zlib state per
    /// connection instead of 256 KiB. Header blocks are tiny, so nothing is lost.
    public static let compact = SPDYHeaderCompressionParameters(level: 9, windowBits: 11, memoryLevel: 1)
    /// zlib's defaults at level 9: byte-identical to the C-zlib blocks of protocols.md §9.4.
    public static let standard = SPDYHeaderCompressionParameters(level: 9, windowBits: 15, memoryLevel: 8)
}

/// The deflate side of one direction of a SPDY connection (protocols.md §1.4).
///
/// One instance lives as long as the connection: every header block continues the same zlib
/// stream, primed with the SPDY/3 dictionary and ended with `Z_SYNC_FLUSH`, never `Z_FINISH`.
/// Not thread-safe; confine it to the connection's event loop.
public final class SPDYHeaderDeflater {
    // zlib keeps a pointer back to its z_stream, so it must have a stable heap address.
    private let stream: UnsafeMutablePointer<z_stream>
    private let initialized: Bool
    private var failure: SPDYError?

    /// Sets up the zlib stream. Should zlib fail to initialise (out of memory), every ``compress(_:into:)``
    /// reports it, so construction itself never fails.
    public init(parameters: SPDYHeaderCompressionParameters = .compact) {
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        let status = czlib_deflateInit2(
            stream, parameters.level, Z_DEFLATED, parameters.windowBits, parameters.memoryLevel, Z_DEFAULT_STRATEGY)
        initialized = status == Z_OK
        guard initialized else {
            failure = SPDYError(.headerCompressionFailed, "deflateInit2 returned \(status)")
            return
        }
        let dictionaryStatus = SPDYHeaderDictionary.bytes.withUnsafeBufferPointer {
            deflateSetDictionary(stream, $0.baseAddress, uInt($0.count))
        }
        if dictionaryStatus != Z_OK {
            failure = SPDYError(.headerCompressionFailed, "deflateSetDictionary returned \(dictionaryStatus)")
        }
    }

    deinit {
        if initialized { deflateEnd(stream) }
        stream.deinitialize(count: 1)
        stream.deallocate()
    }

    /// Compresses one uncompressed header block and appends the result (ending `00 00 ff ff`) to `output`.
    public func compress(_ block: ByteBuffer, into output: inout ByteBuffer) throws(SPDYError) {
        if let failure { throw failure }
        let status: Int32 = block.withUnsafeReadableBytes { input in
            stream.pointee.next_in = UnsafeMutablePointer(
                mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
            stream.pointee.avail_in = uInt(input.count)
            defer {
                stream.pointee.next_in = nil
                stream.pointee.avail_in = 0
            }
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
        guard status == Z_OK else {
            let error = SPDYError(.headerCompressionFailed, "deflate returned \(status)")
            failure = error
            throw error
        }
    }
}

/// The inflate side of one direction of a SPDY connection (protocols.md §1.4).
///
/// Every block must inflate completely with no compressed byte left over; the first one asks for the
/// SPDY/3 dictionary by its adler-32. Any failure leaves the shared zlib state unusable, so the
/// inflater refuses all later blocks and the session must end. Not thread-safe.
public final class SPDYHeaderInflater {
    private let stream: UnsafeMutablePointer<z_stream>
    private let initialized: Bool
    private var failure: SPDYError?

    /// Sets up the zlib stream. Should zlib fail to initialise, every ``decompress(_:maxOutput:)`` reports it.
    public init() {
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        let status = czlib_inflateInit2(stream, 15)
        initialized = status == Z_OK
        if !initialized {
            failure = SPDYError(.headerDecompressionFailed, "inflateInit2 returned \(status)")
        }
    }

    deinit {
        if initialized { inflateEnd(stream) }
        stream.deinitialize(count: 1)
        stream.deallocate()
    }

    /// Inflates one compressed block.
    ///
    /// - Parameters:
    ///   - compressed: the block exactly as carried by the frame.
    ///   - maxOutput: the most bytes the block may inflate to (``SPDYLimits/maxDecompressedHeaderBlock``).
    /// - Returns: the uncompressed block.
    public func decompress(_ compressed: ByteBuffer, maxOutput: Int) throws(SPDYError) -> ByteBuffer {
        if let failure { throw failure }
        do throws(SPDYError) {
            return try inflateBlock(compressed, maxOutput: maxOutput)
        } catch {
            failure = SPDYError(error.kind, "the header compression context failed earlier: \(error.message)")
            throw error
        }
    }

    private enum Step {
        case needDictionary, progress, done
        case failed(Int32)
    }

    private func inflateBlock(_ compressed: ByteBuffer, maxOutput: Int) throws(SPDYError) -> ByteBuffer {
        var output = ByteBufferAllocator().buffer(capacity: min(maxOutput + 1, max(256, compressed.readableBytes * 4)))
        let outcome: SPDYError? = compressed.withUnsafeReadableBytes { input in
            stream.pointee.next_in = UnsafeMutablePointer(
                mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
            stream.pointee.avail_in = uInt(input.count)
            defer {
                stream.pointee.next_in = nil
                stream.pointee.avail_in = 0
            }
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
                        return SPDYError(.headerDecompressionFailed, "zlib stream wants dictionary \(id), not e3c6a7c2")
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
        if let outcome { throw outcome }
        return output
    }
}
