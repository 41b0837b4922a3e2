import Foundation
import Testing

@testable import KubeProxy

@Suite("Recording file appender")
struct RecordingFileAppenderTests {
    /// Batch sizes around every boundary: the direct-write minimum, the block size, the buffer.
    static let batchSizes: [Int] = [
        1, 100, RecordingFileAppender.directWriteMinimum, 3, RecordingFileAppender.directWriteMinimum + 4095, 17,
        4096, RecordingFileAppender.directBufferSize * 2 + 123, 5000, RecordingFileAppender.directWriteMinimum - 1,
        2, RecordingFileAppender.directBufferSize - 4096, 80_000,
    ]

    /// Appends `batchSizes` (each batch split into two segments) and checks after every batch that
    /// the file holds what was handed over, but for at most a held-back partial block, and all of
    /// it once the held bytes are written.
    ///
    /// Megabytes in all: the bytes are made and compared with memory operations rather than per
    /// element, which in a debug build held a cooperative thread for seconds and stalled the
    /// tests running beside it.
    static func appendAndCheck(_ appender: RecordingFileAppender, path: String, sizes: [Int] = batchSizes) throws {
        var expected = Data()
        for (index, size) in sizes.enumerated() {
            let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
                for offset in 0..<size { buffer[offset] = UInt8(truncatingIfNeeded: offset &* 31 &+ index) }
                count = size
            }
            let split = size / 3
            try appender.append([.bytes(Array(bytes[..<split])), .bytes(Array(bytes[split...]))])
            expected.append(contentsOf: bytes)
            #expect(appender.length == expected.count)
            let written = try Data(contentsOf: URL(fileURLWithPath: path))
            #expect(written.count > expected.count - appender.blockSize, "after batch \(index) of \(size) bytes")
            #expect(written == expected.prefix(written.count), "after batch \(index) of \(size) bytes")
            if index % 2 == 1 {
                try appender.writeHeldBytes()
                let complete = try Data(contentsOf: URL(fileURLWithPath: path))
                #expect(complete == expected, "after batch \(index) of \(size) bytes and the held bytes")
            }
        }
        try appender.writeHeldBytes()
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == expected)
    }

    @Test("bulk batches go to the disk directly, and the file holds every byte after each batch")
    func directWrites() throws {
        let path = try RecordingFileWriterTests.scratchPath()
        let appender = try RecordingFileAppender(creating: path)
        #expect(appender.usesDirectIO, "the test directory's filesystem must accept O_DIRECT")
        try Self.appendAndCheck(appender, path: path)
        #expect(appender.usesDirectIO)
        // Everything in the large batches but their last partial block.
        #expect(appender.directBytes > 2 * RecordingFileAppender.directBufferSize)
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
    }

    @Test("with direct I/O off, every batch goes through the page cache, in order")
    func cachedWrites() throws {
        let path = try RecordingFileWriterTests.scratchPath()
        let appender = try RecordingFileAppender(creating: path, directIO: false)
        #expect(!appender.usesDirectIO)
        try Self.appendAndCheck(appender, path: path)
        #expect(appender.directBytes == 0)
    }

    @Test("when the filesystem refuses a direct write, the bytes go through the page cache from then on")
    func refusedDirectWrite() throws {
        let path = try RecordingFileWriterTests.scratchPath()
        // Blocks of 256 bytes are smaller than any disk's logical block (512 or 4096 bytes): the
        // first batch, 257 of them, is a direct write the kernel refuses (EINVAL).
        let appender = try RecordingFileAppender(creating: path, blockSize: 256)
        #expect(appender.usesDirectIO)
        try Self.appendAndCheck(
            appender, path: path, sizes: [RecordingFileAppender.directWriteMinimum + 256] + Self.batchSizes)
        #expect(appender.directBytes == 0)
        #expect(!appender.usesDirectIO)
    }

    /// Bytes built in place as the writer builds them, for `fileOffset` (which may be wrong).
    static func placed(_ bytes: [UInt8], fileOffset: Int) -> RecordingSegment {
        let placed = PlacedRecordingBytes(
            fileOffset: fileOffset, count: bytes.count, scratch: 8, blockSize: RecordingFileAppender.defaultBlockSize)
        bytes.withUnsafeBytes { placed.start.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        return .placed(placed)
    }

    @Test(
        "bytes placed at their file offset are written from where they were built; misplaced ones are copied",
        arguments: [true, false])
    func placedBytes(directIO: Bool) throws {
        let path = try RecordingFileWriterTests.scratchPath()
        let appender = try RecordingFileAppender(creating: path, directIO: directIO)
        var expected: [UInt8] = []
        let sizes = [70_000, 3, 200_000, 1_000_000, 5, 4096, 65_536]
        for (index, size) in sizes.enumerated() {
            let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ index) }
            let small = [UInt8](repeating: UInt8(ascii: "a") + UInt8(index), count: index * 100 + 1)
            // Every third is placed for the wrong offset, as a second producer would leave it.
            let offset = expected.count + small.count + (index % 3 == 2 ? 1 : 0)
            try appender.append([.bytes(small), Self.placed(bytes, fileOffset: offset)])
            expected += small + bytes
            try appender.writeHeldBytes()
            #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(expected), "after \(index)")
        }
        #expect(appender.usesDirectIO == directIO)
        if directIO {
            // The placed ones bar their last partial block, and the misplaced ones copied.
            #expect(appender.directBytes > 1_200_000)
        } else {
            #expect(appender.directBytes == 0)
        }
    }

    @Test("a file that exists is never overwritten")
    func existingFile() throws {
        let path = try RecordingFileWriterTests.scratchPath()
        try Data("kept".utf8).write(to: URL(fileURLWithPath: path))
        #expect {
            _ = try RecordingFileAppender(creating: path)
        } throws: { error in
            "\(error)" == "File exists"
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data("kept".utf8))
    }
}
