import Foundation
import Testing

@testable import KubeProxy

@Suite("Tar entries seen in passing (kubectl cp)")
struct TarEntryScannerTests {
    /// An archive made by a real tar of a tree with a long path, a directory, a symlink and an empty
    /// file, in the given format.
    static func archive(format: String) throws -> (data: Data, names: [String]) {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("tar-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let long = String(repeating: "deep-directory-name/", count: 8) + "file-with-a-long-name.txt"
        let files = ["a.txt": 1000, "empty": 0, "sub/b.bin": 70000, long: 513, "caf\u{00E9}.txt": 3]
        for (name, size) in files {
            let url = root.appendingPathComponent("tree").appendingPathComponent(name)
            try FileManager.default.createDirectory(
                at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data((0..<size).map { UInt8(truncatingIfNeeded: $0 * 7) }).write(to: url)
        }
        try FileManager.default.createSymbolicLink(
            atPath: root.appendingPathComponent("tree/link").path, withDestinationPath: "a.txt")
        let output = root.appendingPathComponent("out.tar")
        let tar = Process()
        tar.executableURL = URL(fileURLWithPath: "/bin/tar")
        tar.arguments = ["--format=\(format)", "-cf", output.path, "-C", root.path, "tree"]
        try tar.run()
        tar.waitUntilExit()
        #expect(tar.terminationStatus == 0)
        let list = Process()
        let pipe = Pipe()
        list.executableURL = URL(fileURLWithPath: "/bin/tar")
        list.arguments = ["-tf", output.path]
        list.standardOutput = pipe
        try list.run()
        let listing = pipe.fileHandleForReading.readDataToEndOfFile()
        list.waitUntilExit()
        let names = String(decoding: listing, as: UTF8.self).split(separator: "\n").map(String.init)
        return (try Data(contentsOf: output), names)
    }

    @Test("every entry of GNU, pax and ustar archives is found, however the stream is cut", arguments: ["gnu", "pax"])
    func realArchives(format: String) throws {
        let (data, names) = try Self.archive(format: format)
        #expect(names.count == 16)  // five files, a link, tree/, sub/ and eight nested directories
        for chunk in [1, 7, 512, 4096, data.count] {
            var scanner = TarEntryScanner()
            var found: [TarEntryScanner.Entry] = []
            var offset = 0
            while offset < data.count {
                let end = min(offset + chunk, data.count)
                found += scanner.consume(data[offset..<end])
                offset = end
            }
            #expect(found.map(\.name) == names, "chunks of \(chunk)")
            #expect(scanner.state == .end, "chunks of \(chunk)")
            #expect(found.first { $0.name == "tree/sub/b.bin" }?.size == 70000)
            #expect(found.first { $0.name == "tree/link" }?.type == "2")
        }
    }

    @Test("bytes that are not an archive stop the scan with a reason; nothing after it is read")
    func notAnArchive() {
        var scanner = TarEntryScanner()
        #expect(scanner.consume(Array(repeating: UInt8(ascii: "x"), count: 2000)).isEmpty)
        #expect(scanner.state == .invalid("a header's checksum does not match: not a tar archive"))
        #expect(scanner.consume([0, 1, 2]).isEmpty)
    }

    @Test("an extended header over the limit is refused, at the limit it is read")
    func extensionLimit() {
        func header(type: UInt8, size: Int) -> [UInt8] {
            var block = [UInt8](repeating: 0, count: 512)
            block.replaceSubrange(0..<4, with: Array("name".utf8))
            let octal = Array(String(size, radix: 8).utf8)
            block.replaceSubrange(124..<(124 + octal.count), with: octal)
            block[156] = type
            block.replaceSubrange(148..<156, with: Array("        ".utf8))
            let sum = Array(String(block.reduce(0) { $0 + Int($1) }, radix: 8).utf8)
            block.replaceSubrange(148..<(148 + sum.count), with: sum)
            block[148 + sum.count] = 0
            return block
        }
        var over = TarEntryScanner()
        _ = over.consume(header(type: UInt8(ascii: "L"), size: TarEntryScanner.maximumExtensionSize + 1))
        #expect(over.state == .invalid("an extended header of 65537 bytes is over the limit"))

        var atLimit = TarEntryScanner()
        let name = [UInt8](repeating: UInt8(ascii: "n"), count: TarEntryScanner.maximumExtensionSize - 1) + [0]
        let entries = atLimit.consume(
            header(type: UInt8(ascii: "L"), size: name.count) + name + header(type: UInt8(ascii: "0"), size: 0))
        #expect(entries.map(\.name.count) == [TarEntryScanner.maximumExtensionSize - 1])
        #expect(atLimit.state == .header)
    }

    @Test("malformed pax records are ignored rather than trusted")
    func malformedPax() {
        #expect(TarEntryScanner.extendedName(kind: UInt8(ascii: "x"), data: Array("2 x".utf8)) == nil)
        #expect(TarEntryScanner.extendedName(kind: UInt8(ascii: "x"), data: Array("99 path=a\n".utf8)) == nil)
        #expect(TarEntryScanner.extendedName(kind: UInt8(ascii: "x"), data: Array("11 path=ab\n".utf8)) == "ab")
        #expect(
            TarEntryScanner.extendedName(kind: UInt8(ascii: "x"), data: Array("13 mtime=1.5\n11 path=ab\n".utf8))
                == "ab")
    }
}
