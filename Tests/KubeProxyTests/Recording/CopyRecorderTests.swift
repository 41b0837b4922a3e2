import Foundation
import NIOCore
import Testing

@testable import KubeProxy

@Suite("kubectl cp sessions recorded as the files they move")
struct CopyRecorderTests {
    @Test(
        "the commands kubectl sends for cp are recognized; other commands are not",
        arguments: [
            (["tar", "cf", "-", "/tmp/x"], CopyDirection.download),
            (["sh", "-c", "tar cf - /tmp/x | tail -c+1024"], .download),
            (["tar", "-xmf", "-"], .upload),
            (["tar", "-xmf", "-", "-C", "/tmp"], .upload),
            (["tar", "--no-same-permissions", "--no-same-owner", "-xmf", "-", "-C", "/tmp"], .upload),
            (["/bin/tar", "-cf", "-", "dir"], .download),
        ])
    func recognized(command: [String], direction: CopyDirection) {
        #expect(CopyDirection(command: command) == direction)
    }

    @Test(
        "commands that merely mention tar are ordinary sessions",
        arguments: [["tar", "tf", "archive.tar"], ["tar", "-cf", "out.tar", "dir"], ["ls", "-", "c"], ["sh"], []])
    func notRecognized(command: [String]) {
        #expect(CopyDirection(command: command) == nil)
    }

    @Test("a download's archive becomes entry markers and a total; stderr stays output; the file stays small")
    func download() async throws {
        let directory = try SessionCatalogTests.directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (archive, names) = try TarEntryScannerTests.archive(format: "gnu")
        let recorder = try SessionRecorder(
            settings: .init(directory: directory.path, recordInput: true), sessionID: "cp",
            header: SessionCatalogTests.header(user: "alice", pod: "web", started: Date()))
        let copy = CopyRecorder(direction: .download, recording: recorder)
        await recorder.writeHeader()
        var offset = 0
        while offset < archive.count {
            let end = min(offset + 3000, archive.count)
            await copy.output(ByteBuffer(bytes: archive[offset..<end]), stream: .stdout)
            offset = end
        }
        await copy.output(ByteBuffer(string: "tar: Removing leading `/'\n"), stream: .stderr)
        let summary = await copy.summary()
        await recorder.marker(summary)
        await recorder.finish(marker: "exit 0")

        #expect(summary == "cp download: \(archive.count) bytes, \(names.count) entries")
        let annotations = await copy.annotations
        #expect(annotations["portcullis.dev/copy-bytes"] == String(archive.count))
        let recording = try AsciicastRecording(path: recorder.path)
        #expect(recording.output == "tar: Removing leading `/'\n")
        let entryMarkers = recording.markers.filter { $0.hasPrefix("cp download: tree") }
        #expect(entryMarkers.count == names.count)
        #expect(entryMarkers.contains("cp download: tree/sub/b.bin (70000 bytes)"))
        let size = try FileManager.default.attributesOfItem(atPath: recorder.path)[.size] as? Int ?? .max
        #expect(size < archive.count / 4)
    }

    @Test("an upload scans stdin whether or not input is recorded; garbage is noted once")
    func uploadOfGarbage() async throws {
        let directory = try SessionCatalogTests.directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let recorder = try SessionRecorder(
            settings: .init(directory: directory.path), sessionID: "up",
            header: SessionCatalogTests.header(user: "alice", pod: "web", started: Date()))
        let copy = CopyRecorder(direction: .upload, recording: recorder)
        await recorder.writeHeader()
        await copy.stdin(ByteBuffer(repeating: UInt8(ascii: "z"), count: 1024))
        await copy.stdin(ByteBuffer(repeating: UInt8(ascii: "z"), count: 1024))
        await recorder.finish(marker: "exit 2")
        let recording = try AsciicastRecording(path: recorder.path)
        #expect(recording.markers == ["cp upload: a header's checksum does not match: not a tar archive", "exit 2"])
        #expect(await copy.summary() == "cp upload: 2048 bytes, 0 entries")
    }
}
