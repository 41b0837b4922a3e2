import Foundation
import NIOConcurrencyHelpers
import NIOPosix
import Testing

@testable import KubeProxy

@Suite("Recording file writer")
struct RecordingFileWriterTests {
    static func scratchPath() throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("writer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory.appendingPathComponent("file").path
    }

    @Test("bytes reach the file in the order they were handed over, small and large, merged or not")
    func order() async throws {
        let path = try Self.scratchPath()
        let writer = try RecordingFileWriter(path: path, kind: "recording", backlogLimit: 256 << 10)
        var expected: [UInt8] = []
        for index in 0..<2_000 {
            // Mostly small events, with a large one now and then (bigger than a merged segment).
            let size = index % 97 == 0 ? RecordingFileWriter.segmentMergeLimit + 1 : index % 50 + 1
            let bytes = [UInt8](repeating: UInt8(truncatingIfNeeded: index), count: size)
            expected += bytes
            writer.enqueue(bytes)
            await writer.waitForSpace()
        }
        await writer.synchronize()
        #expect(!writer.hasFailed)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(expected))
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
    }

    @Test("bytes built in place reach the file in order with the others, small and large")
    func builtInPlace() async throws {
        let path = try Self.scratchPath()
        let writer = try RecordingFileWriter(path: path, kind: "recording")
        var expected: [UInt8] = []
        for index in 0..<40 {
            let size = index % 4 == 0 ? 3 * RecordingFileAppender.directWriteMinimum + index : index * 37 + 1
            let byte = UInt8(truncatingIfNeeded: index)
            writer.enqueue(count: size, scratch: 8) { out in
                out.initializeMemory(as: UInt8.self, repeating: byte, count: size + 8)
            }
            writer.enqueue([byte, byte &+ 1])
            expected += [UInt8](repeating: byte, count: size) + [byte, byte &+ 1]
            await writer.waitForSpace()
        }
        await writer.synchronize()
        #expect(!writer.hasFailed)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(expected))
    }

    @Test("over the backlog limit the caller waits until the disk has caught up")
    func backpressure() async throws {
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        // The pool's only thread is busy until released: nothing gets written meanwhile.
        let release = DispatchSemaphore(value: 0)
        pool.submit { _ in release.wait() }
        let writer = try RecordingFileWriter(
            path: try Self.scratchPath(), kind: "recording", backlogLimit: 1_000, threadPool: pool)
        writer.enqueue([UInt8](repeating: 1, count: 600))
        await writer.waitForSpace()  // within the limit: no wait
        writer.enqueue([UInt8](repeating: 2, count: 600))
        let returned = NIOLockedValueBox(false)
        let waiting = Task {
            await writer.waitForSpace()
            returned.withLockedValue { $0 = true }
        }
        try await Task.sleep(for: .milliseconds(300))
        #expect(!returned.withLockedValue { $0 }, "1,200 bytes are waiting with a limit of 1,000")
        release.signal()
        await waiting.value
        #expect(returned.withLockedValue { $0 })
        await writer.flush()
        #expect(try Data(contentsOf: URL(fileURLWithPath: writer.path)).count == 1_200)
        try await pool.shutdownGracefully()
    }

    @Test("when the file cannot be written, the writer says so and nobody waits forever")
    func failure() async throws {
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        try await pool.shutdownGracefully()
        let writer = try RecordingFileWriter(
            path: try Self.scratchPath(), kind: "capture", backlogLimit: 10, threadPool: pool)
        writer.enqueue([UInt8](repeating: 0, count: 100))
        await writer.waitForSpace()
        await writer.synchronize()
        #expect(writer.hasFailed)
        writer.enqueue([1, 2, 3])
        await writer.flush()
        #expect(try Data(contentsOf: URL(fileURLWithPath: writer.path)).isEmpty)
    }

    @Test("an existing file is never overwritten, and the error names what could not be created")
    func existingFile() throws {
        let path = try Self.scratchPath()
        _ = try RecordingFileWriter(path: path, kind: "capture")
        #expect {
            _ = try RecordingFileWriter(path: path, kind: "capture")
        } throws: { error in
            "\(error)".contains("cannot create the capture \(path): File exists")
        }
    }

}
