import CZlib
import NIOCore
import Testing

@testable import SPDY

/// The header contexts free zlib's state between blocks and rebuild it from the window: checked
/// against a continuous C-zlib stream on the other side, which is what a peer keeps.
@Suite("Header compression contexts between blocks")
struct HeaderCompressionContextTests {
    /// Header blocks whose values repeat text from far back (up to ~30 KiB earlier), so that a
    /// window rebuilt short or out of order would decode wrongly.
    static func blocks(count: Int) -> [ByteBuffer] {
        let letters = Array("abcdefghij")
        let shared = (0..<40).map { value in
            String((0..<300).map { letters[(value * 31 + $0 * 17 + ($0 * $0) % 7) % letters.count] })
        }
        return (0..<count).map { index in
            rawHeaderBlock([
                ("streamtype", ["stdin", "stdout", "stderr", "error", "resize", "data"][index % 6]),
                ("port", "\(8000 + index)"),
                ("x-repeat", shared[(index * 7) % shared.count]),
                ("requestid", "\(index)"),
            ])
        }
    }

    @Test("a continuous peer's blocks inflate across 120 blocks and a window that wraps")
    func continuousPeerToInflater() throws {
        let blocks = Self.blocks(count: 120)
        let peer = try ContinuousZlib(deflating: true)
        let inflater = SPDYHeaderInflater()
        var total = 0
        for (index, block) in blocks.enumerated() {
            let compressed = try peer.run(block, flush: Z_SYNC_FLUSH)
            let inflated = try inflater.decompress(compressed, maxOutput: 1 << 20)
            #expect(inflated == block, "block \(index)")
            #expect(!inflater.holdsZlibState, "a sync-flushed block ends on a boundary: state freed")
            total += block.readableBytes
        }
        #expect(total > 40_000)
    }

    @Test("our deflater's blocks inflate in a continuous peer, both compression settings")
    func deflaterToContinuousPeer() throws {
        for parameters in [SPDYHeaderCompressionParameters.compact, .standard] {
            let blocks = Self.blocks(count: 120)
            let deflater = SPDYHeaderDeflater(parameters: parameters)
            let peer = try ContinuousZlib(deflating: false)
            var compressedTotal = 0
            for (index, block) in blocks.enumerated() {
                var compressed = ByteBuffer()
                try deflater.compress(block, into: &compressed)
                #expect(compressed.readableBytesView.suffix(4).elementsEqual([0, 0, 0xff, 0xff]))
                compressedTotal += compressed.readableBytes
                #expect(try peer.run(compressed, flush: Z_SYNC_FLUSH) == block, "block \(index), \(parameters)")
            }
            // Still compressing: each repeated 300-byte value is found in the rebuilt window.
            #expect(compressedTotal < blocks.reduce(0) { $0 + $1.readableBytes } / 2)
        }
    }

    @Test("a block that stops inside a deflate block keeps zlib's state, and the next one continues it")
    func partialBlockKeepsState() throws {
        let blocks = Self.blocks(count: 8)
        let peer = try ContinuousZlib(deflating: true)
        let inflater = SPDYHeaderInflater()
        var inflated = ByteBuffer()
        var keptState = 0
        for (index, block) in blocks.enumerated() {
            // Z_BLOCK holds back up to 7 bits of the block's end: the inflater stops mid-block.
            let flush = index % 2 == 0 ? Z_BLOCK : Z_SYNC_FLUSH
            var output = try inflater.decompress(try peer.run(block, flush: flush), maxOutput: 1 << 20)
            inflated.writeBuffer(&output)
            if inflater.holdsZlibState { keptState += 1 }
            if flush == Z_SYNC_FLUSH { #expect(!inflater.holdsZlibState, "block \(index)") }
        }
        #expect(keptState > 0)
        #expect(inflated == blocks.reduce(into: ByteBuffer()) { $0.writeImmutableBuffer($1) })
    }

    @Test("a corrupt block after a freed context fails, and so does every later block")
    func corruptAfterRebuild() throws {
        let blocks = Self.blocks(count: 3)
        let peer = try ContinuousZlib(deflating: true)
        let inflater = SPDYHeaderInflater()
        _ = try inflater.decompress(try peer.run(blocks[0], flush: Z_SYNC_FLUSH), maxOutput: 1 << 20)
        // A block of the reserved type 3.
        var corrupt = ByteBuffer(bytes: [0x06, 0x00])
        let error = #expect(throws: SPDYError.self) { try inflater.decompress(corrupt, maxOutput: 1 << 20) }
        #expect(error?.kind == .headerDecompressionFailed)
        corrupt = try peer.run(blocks[1], flush: Z_SYNC_FLUSH)
        let later = #expect(throws: SPDYError.self) { try inflater.decompress(corrupt, maxOutput: 1 << 20) }
        #expect(later?.message.contains("failed earlier") == true)
    }

    @Test("the inflate limit still holds for a rebuilt context")
    func bombAfterRebuild() throws {
        let peer = try ContinuousZlib(deflating: true)
        let inflater = SPDYHeaderInflater()
        _ = try inflater.decompress(try peer.run(Self.blocks(count: 1)[0], flush: Z_SYNC_FLUSH), maxOutput: 1 << 20)
        let bomb = try peer.run(ByteBuffer(repeating: 0x61, count: 1 << 20), flush: Z_SYNC_FLUSH)
        #expect(bomb.readableBytes < 2_000)
        let error = #expect(throws: SPDYError.self) { try inflater.decompress(bomb, maxOutput: 65_536) }
        #expect(error?.kind == .decompressedHeaderBlockTooLarge)
    }
}

/// One zlib stream with the SPDY dictionary that lives across blocks, as a Go peer's does.
private final class ContinuousZlib {
    struct Failure: Error { let status: Int32 }

    private let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    private let deflating: Bool

    init(deflating: Bool) throws {
        self.deflating = deflating
        stream.initialize(to: z_stream())
        let status =
            deflating
            ? czlib_deflateInit2(stream, 6, Z_DEFLATED, 15, 8, Z_DEFAULT_STRATEGY) : czlib_inflateInit2(stream, 15)
        guard status == Z_OK else { throw Failure(status: status) }
        if deflating { try setDictionary() }
    }

    deinit {
        _ = deflating ? deflateEnd(stream) : inflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
    }

    private func setDictionary() throws {
        let status = SPDYHeaderDictionary.bytes.withUnsafeBufferPointer {
            deflating
                ? deflateSetDictionary(stream, $0.baseAddress, uInt($0.count))
                : inflateSetDictionary(stream, $0.baseAddress, uInt($0.count))
        }
        guard status == Z_OK else { throw Failure(status: status) }
    }

    /// Deflates or inflates all of `input` with `flush`.
    func run(_ input: ByteBuffer, flush: Int32) throws -> ByteBuffer {
        var bytes = Array(input.readableBytesView)
        var output = [UInt8](repeating: 0, count: 4 << 20)
        return try bytes.withUnsafeMutableBufferPointer { source in
            try output.withUnsafeMutableBufferPointer { target in
                stream.pointee.next_in = source.baseAddress
                stream.pointee.avail_in = uInt(source.count)
                stream.pointee.next_out = target.baseAddress
                stream.pointee.avail_out = uInt(target.count)
                var status = deflating ? deflate(stream, flush) : inflate(stream, flush)
                if status == Z_NEED_DICT {
                    try setDictionary()
                    status = inflate(stream, flush)
                }
                guard status == Z_OK, stream.pointee.avail_in == 0 else { throw Failure(status: status) }
                return ByteBuffer(bytes: target.prefix(target.count - Int(stream.pointee.avail_out)))
            }
        }
    }
}
