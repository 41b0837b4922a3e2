/// Bytes handed to a ``RecordingFileWriter``: an event line in an array, or a large one built in
/// place where a direct write can take it from.
enum RecordingSegment {
    case bytes([UInt8])
    case placed(PlacedRecordingBytes)

    var count: Int {
        switch self {
        case .bytes(let bytes): bytes.count
        case .placed(let placed): placed.count
        }
    }

    func withUnsafeBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        switch self {
        case .bytes(let bytes): try bytes.withUnsafeBytes(body)
        case .placed(let placed): try body(placed.bytes)
        }
    }
}

/// Bytes laid out in memory as they will lie in the file: the allocation is aligned to the block
/// size and the first byte sits at its file offset's position within a block. The room before it
/// takes the file's bytes from that block boundary, so whole blocks go to the disk from here
/// without a copy.
///
/// Built by one producer before it is handed over; after that only the appender writes, into the
/// room in front, one write at a time.
final class PlacedRecordingBytes: @unchecked Sendable {
    let blockSize: Int
    /// The position of the first byte within its block: the room in front of it.
    let headroom: Int
    let count: Int
    /// From the block boundary before the first byte to the end of the allocation.
    let blocks: UnsafeMutableRawBufferPointer

    /// Room for `count` bytes that start at `fileOffset`, plus `scratch` bytes a builder may
    /// write past them.
    init(fileOffset: Int, count: Int, scratch: Int, blockSize: Int) {
        self.blockSize = blockSize
        self.headroom = fileOffset % blockSize
        self.count = count
        let size = (headroom + count + scratch + blockSize - 1) / blockSize * blockSize
        self.blocks = .allocate(byteCount: size, alignment: blockSize)
    }

    deinit {
        blocks.deallocate()
    }

    /// Where the builder writes the bytes.
    var start: UnsafeMutableRawPointer { blocks.baseAddress! + headroom }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: blocks[headroom..<headroom + count]) }
}
