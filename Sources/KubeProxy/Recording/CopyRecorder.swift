import NIOCore
import SPDY

/// Which way a `kubectl cp` moves files, read from the exec command kubectl sends: `tar cf - SRC`
/// (or `sh -c 'tar cf - SRC | tail -c+N'` when it resumes) to download, `tar … -xmf -` to upload.
enum CopyDirection: String, Sendable, Equatable {
    /// Pod to client: the archive is the command's stdout.
    case download
    /// Client to pod: the archive is the command's stdin.
    case upload

    init?(command: [String]) {
        var words = command
        if words.count == 3, words[0] == "sh", words[1] == "-c" {
            words = words[2].split(separator: " ").map(String.init)
        }
        guard let program = words.first, program == "tar" || program.hasSuffix("/tar"), words.contains("-") else {
            return nil
        }
        // Short-option clusters: `-xmf`, or the old style's first word without a dash (`cf`).
        let arguments = words.dropFirst()
        var letters = arguments.filter { $0.count > 1 && $0.hasPrefix("-") && !$0.hasPrefix("--") }
            .map { $0.dropFirst() }.joined()
        if let first = arguments.first, !first.hasPrefix("-") { letters += first }
        if letters.contains("x") {
            self = .upload
        } else if letters.contains("c") {
            self = .download
        } else {
            return nil
        }
    }
}

/// Records a `kubectl cp` as what it moved rather than the raw archive: a marker per tar entry
/// (name and size), the total at the end, and anything else the command prints (tar's errors) as
/// ordinary output. A raw tar in a terminal recording would be unreadable and as large as the files.
actor CopyRecorder: RemoteCommandObserver {
    /// Entries beyond this many are counted but not listed, so a copy of a huge tree keeps a
    /// recording of bounded size.
    static let listedEntryLimit = 1000

    let direction: CopyDirection
    private let recording: SessionRecorder?
    private var scanner = TarEntryScanner()
    private(set) var archiveBytes = 0
    private(set) var entries = 0

    init(direction: CopyDirection, recording: SessionRecorder?) {
        self.direction = direction
        self.recording = recording
    }

    func stdin(_ data: ByteBuffer) async {
        guard direction == .upload else {
            await recording?.stdin(data)
            return
        }
        await scan(data)
    }

    func output(_ data: ByteBuffer, stream: RemoteCommandStreamType) async {
        guard direction == .download, stream == .stdout else {
            await recording?.output(data, stream: stream)
            return
        }
        await scan(data)
    }

    func resize(_ size: TerminalSize) async {
        await recording?.resize(size)
    }

    func marker(_ label: String) async {
        await recording?.marker(label)
    }

    private func scan(_ data: ByteBuffer) async {
        archiveBytes += data.readableBytes
        let wasScanning = !scanner.isInvalid
        for entry in scanner.consume(data.readableBytesView) {
            entries += 1
            guard entries <= Self.listedEntryLimit else { continue }
            await recording?.marker("cp \(direction.rawValue): \(entry.name) (\(entry.size) bytes)")
        }
        if wasScanning, case .invalid(let reason) = scanner.state {
            await recording?.marker("cp \(direction.rawValue): \(reason)")
        }
    }

    /// The closing summary, as a marker and for the audit record.
    func summary() -> String {
        let unlisted = max(0, entries - Self.listedEntryLimit)
        return "cp \(direction.rawValue): \(archiveBytes) bytes, \(entries) entries"
            + (unlisted > 0 ? " (\(unlisted) not listed)" : "")
    }

    var annotations: [String: String] {
        [
            "portcullis.dev/copy-direction": direction.rawValue,
            "portcullis.dev/copy-bytes": String(archiveBytes),
            "portcullis.dev/copy-entries": String(entries),
        ]
    }
}
