import CZlib

// A SPDY connection compresses every header block of one direction as one continuous zlib
// stream (protocols.md §1.4), so each side keeps its zlib context for the connection's life.
// Live, that context is 39 KiB for inflate (a 32 KiB window) and 15 KiB for compact deflate;
// an exec session sends a handful of header blocks at its start and then none for hours. So
// between blocks ``SPDYHeaderDeflater`` and ``SPDYHeaderInflater`` keep only the stream's last
// window of uncompressed bytes (a few KiB for a session) and free zlib's state: a raw deflate
// stream primed with that window continues the same zlib stream exactly, because every block
// ends byte-aligned at a block boundary (`Z_SYNC_FLUSH`).

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

    /// What Chromium used: a 2 KiB window and the smallest memLevel, about 15 KiB of zlib state
    /// while a block is compressed instead of 256 KiB. Header blocks are tiny, so nothing is lost.
    public static let compact = SPDYHeaderCompressionParameters(level: 9, windowBits: 11, memoryLevel: 1)
    /// zlib's defaults at level 9: byte-identical to the C-zlib blocks of protocols.md §9.4.
    public static let standard = SPDYHeaderCompressionParameters(level: 9, windowBits: 15, memoryLevel: 8)
}

/// The z_stream handling both header contexts share. zlib keeps a pointer back to its z_stream,
/// so each one lives at a heap address of its own for as long as zlib's state does.
extension UnsafeMutablePointer where Pointee == z_stream {
    static func allocateZStream() -> Self {
        let stream = Self.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        return stream
    }

    /// Frees the z_stream; `end` (deflateEnd or inflateEnd) first releases zlib's state, if it
    /// was initialized.
    func freeZStream(ending end: ((Self) -> Int32)? = nil) {
        _ = end?(self)
        deinitialize(count: 1)
        deallocate()
    }

    /// Runs `body` with `input` as zlib's input; zlib keeps no pointer to it afterwards.
    func feeding<Result>(_ input: UnsafeRawBufferPointer, _ body: () -> Result) -> Result {
        pointee.next_in = UnsafeMutablePointer<Bytef>(
            mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
        pointee.avail_in = uInt(input.count)
        defer {
            pointee.next_in = nil
            pointee.avail_in = 0
        }
        return body()
    }

    /// The window of uncompressed bytes, read with deflateGetDictionary or inflateGetDictionary
    /// (a nil buffer asks for the length).
    func window(reading get: (Self, UnsafeMutablePointer<Bytef>?, UnsafeMutablePointer<uInt>) -> Int32) -> [UInt8] {
        var length: uInt = 0
        _ = get(self, nil, &length)
        return [UInt8](unsafeUninitializedCapacity: Int(length)) { buffer, count in
            var copied = length
            _ = get(self, buffer.baseAddress, &copied)
            count = Int(copied)
        }
    }
}
