import CFileIO

#if canImport(Glibc)
    import Glibc
#endif

/// The file under a ``RecordingFileWriter``: appends batches in order, bulk ones with direct I/O.
///
/// A recording is written once and read rarely, and a session printing at full speed writes
/// gigabytes of it (six bytes of asciicast per NUL). Through the page cache each new page is
/// allocated, copied into and written back later; on the project's VM the first touch of a page
/// made that about 300 MB/s of system time, and in a pod the cache counts against the container's
/// memory limit. Direct I/O (`O_DIRECT`) takes bulk batches to the disk: from where the writer
/// built them (``PlacedRecordingBytes``), or copied into one reused aligned buffer.
///
/// Direct writes must start on a block boundary, cover whole blocks and come from aligned memory,
/// so the appender keeps the bytes after the file's last block boundary: a bulk batch is written
/// from that boundary, those bytes first, and its whole blocks go directly. Its last partial block
/// is held back for the next batch, because writing it through the page cache would make the next
/// direct write over that block wait for the cache to be written back first; ``writeHeldBytes()``
/// writes it when no batch follows. Small batches (typing, a prompt) take the page cache, where
/// they cost less. Where the filesystem refuses direct I/O, everything does.
///
/// Not thread-safe: ``RecordingFileWriter`` hands it to one write at a time, under its lock.
final class RecordingFileAppender: @unchecked Sendable {
    /// Alignment of direct writes (offset, length and memory); a multiple of any common logical
    /// block size (512 or 4096 bytes).
    static let defaultBlockSize = 4096
    /// Batches at least this large go out with direct I/O: for less, waiting for the disk costs
    /// more than the copy into the page cache saves.
    static let directWriteMinimum = 64 << 10
    /// The aligned buffer direct writes are made from; larger batches go in pieces of this size.
    static let directBufferSize = 1 << 20

    let blockSize: Int
    private let descriptor: Int32
    private var directDescriptor: Int32?
    /// Bytes appended: the appender created the file and is its only writer.
    private(set) var length = 0
    /// Bytes written with direct I/O (tests check which path a write took).
    private(set) var directBytes = 0
    /// The bytes after the last block boundary (`length % blockSize` of them) while direct I/O is
    /// possible.
    private var tail: [UInt8] = []
    /// Whether ``tail`` is not in the file yet (held back by a direct write).
    private var holdsTail = false
    private var directBuffer: UnsafeMutableRawBufferPointer?

    var usesDirectIO: Bool { directDescriptor != nil }

    /// Creates the file (mode 0600, never overwriting one that exists); the error text if that
    /// fails. `blockSize` is for tests.
    init(creating path: String, directIO: Bool = true, blockSize: Int = defaultBlockSize) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw AppendError(description: String(cString: strerror(errno))) }
        self.descriptor = descriptor
        self.blockSize = blockSize
        let directFlag = cfileio_direct_flag()
        if directIO, directFlag != 0 {
            let direct = open(path, O_WRONLY | directFlag | O_CLOEXEC)
            directDescriptor = direct >= 0 ? direct : nil
        }
    }

    deinit {
        close(descriptor)
        if let directDescriptor { close(directDescriptor) }
        directBuffer?.deallocate()
    }

    struct AppendError: Error, CustomStringConvertible {
        let description: String
    }

    /// Appends `segments` in order.
    func append(_ segments: [RecordingSegment]) throws {
        var runStart = 0
        var offset = length
        for (index, segment) in segments.enumerated() {
            if case .placed(let placed) = segment, usesDirectIO, placed.blockSize == blockSize,
                placed.headroom == offset % blockSize
            {
                try appendRun(segments[runStart..<index])
                try appendInPlace(placed)
                runStart = index + 1
            }
            offset += segment.count
        }
        try appendRun(segments[runStart...])
    }

    /// Writes the bytes a direct write held back, if any: the file then holds everything appended.
    func writeHeldBytes() throws {
        guard holdsTail else { return }
        try tail.withUnsafeBytes { bytes in try Self.writeAll(bytes, to: descriptor, at: length - tail.count) }
        holdsTail = false
    }

    /// Syncs the file's data to the disk.
    func synchronize() {
        fsync(descriptor)
    }

    /// Segments that were not placed for a direct write: bulk ones copied into the direct-write
    /// buffer, the rest through the page cache.
    private func appendRun(_ run: ArraySlice<RecordingSegment>) throws {
        let count = run.reduce(0) { $0 + $1.count }
        if usesDirectIO, tail.count + count >= Self.directWriteMinimum {
            try appendDirectly(run)
        } else {
            for segment in run { try segment.withUnsafeBytes { try appendThroughCache($0) } }
        }
    }

    private func appendThroughCache(_ bytes: UnsafeRawBufferPointer) throws {
        guard !bytes.isEmpty else { return }
        try writeHeldBytes()
        try Self.writeAll(bytes, to: descriptor, at: length)
        length += bytes.count
        guard usesDirectIO else { return }
        let keep = length % blockSize
        if bytes.count >= keep {
            tail = Array(UnsafeRawBufferPointer(rebasing: bytes[(bytes.count - keep)...]))
        } else {
            tail.append(contentsOf: bytes)
            tail.removeFirst(tail.count - keep)
        }
    }

    /// Writes placed bytes from the block boundary before them, the file's bytes since that
    /// boundary copied in front: whole blocks directly, the last partial block held back.
    private func appendInPlace(_ placed: PlacedRecordingBytes) throws {
        let blocks = placed.blocks
        tail.withUnsafeBytes { tail in
            UnsafeMutableRawBufferPointer(rebasing: blocks[0..<tail.count]).copyMemory(from: tail)
        }
        let end = placed.headroom + placed.count
        let whole = end - end % blockSize
        try writeBlocks(UnsafeRawBufferPointer(rebasing: blocks[0..<whole]), at: length - tail.count)
        length += placed.count
        tail = Array(blocks[whole..<end])
        holdsTail = !tail.isEmpty
        if !usesDirectIO { try writeHeldBytes() }
    }

    /// Writes the tail and `segments` from the tail's block boundary: full buffers and whole blocks
    /// directly; the last partial block becomes the new tail, held back.
    private func appendDirectly(_ segments: ArraySlice<RecordingSegment>) throws {
        let buffer =
            directBuffer
            ?? UnsafeMutableRawBufferPointer.allocate(byteCount: Self.directBufferSize, alignment: blockSize)
        directBuffer = buffer
        var start = length - tail.count
        var filled = 0
        func fill(_ bytes: UnsafeRawBufferPointer) throws {
            var offset = 0
            while offset < bytes.count {
                let copied = min(bytes.count - offset, buffer.count - filled)
                UnsafeMutableRawBufferPointer(rebasing: buffer[filled..<filled + copied])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + copied]))
                filled += copied
                offset += copied
                if filled == buffer.count {
                    try writeBlocks(UnsafeRawBufferPointer(buffer), at: start)
                    start += filled
                    filled = 0
                }
            }
        }
        try tail.withUnsafeBytes { bytes in try fill(bytes) }
        for segment in segments {
            try segment.withUnsafeBytes { try fill($0) }
        }
        let whole = filled - filled % blockSize
        if whole > 0 {
            try writeBlocks(UnsafeRawBufferPointer(rebasing: buffer[0..<whole]), at: start)
        }
        length = start + filled
        tail = Array(buffer[whole..<filled])
        holdsTail = !tail.isEmpty
        if !usesDirectIO { try writeHeldBytes() }
    }

    /// Writes whole blocks directly, or through the page cache from now on if the filesystem
    /// refuses (EINVAL or EOPNOTSUPP: no direct I/O, or blocks larger than ``blockSize``).
    private func writeBlocks(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws {
        guard let directDescriptor else {
            return try Self.writeAll(bytes, to: descriptor, at: offset)
        }
        var written = 0
        while written < bytes.count {
            let result = pwrite(
                directDescriptor, bytes.baseAddress! + written, bytes.count - written, off_t(offset + written))
            if result >= 0 {
                written += result
                directBytes += result
                // A short direct write leaves an unaligned rest: the page cache takes it.
                if result % blockSize != 0 { break }
                continue
            }
            if errno == EINTR { continue }
            guard errno == EINVAL || errno == EOPNOTSUPP else {
                throw AppendError(description: String(cString: strerror(errno)))
            }
            close(directDescriptor)
            self.directDescriptor = nil
            break
        }
        try Self.writeAll(UnsafeRawBufferPointer(rebasing: bytes[written...]), to: descriptor, at: offset + written)
    }

    /// Writes all of `bytes` at `offset` (retrying short writes and interrupts).
    private static func writeAll(_ bytes: UnsafeRawBufferPointer, to descriptor: Int32, at offset: Int) throws {
        var written = 0
        while written < bytes.count {
            let result = pwrite(
                descriptor, bytes.baseAddress! + written, bytes.count - written, off_t(offset + written))
            if result < 0 {
                if errno == EINTR { continue }
                throw AppendError(description: String(cString: strerror(errno)))
            }
            written += result
        }
    }
}
