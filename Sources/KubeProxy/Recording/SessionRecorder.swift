import Foundation
import NIOCore
import NIOPosix
import SPDY

#if canImport(Glibc)
    import Glibc
#endif

/// Where and how exec and attach sessions (and, optionally, port-forward connections) are recorded
/// (`recordings:` in the configuration).
public struct SessionRecordingSettings: Sendable, Equatable {
    /// One asciicast file per session is created here, named after the session id.
    public var directory: String
    /// Whether stdin is recorded too (`i` events): keystrokes may include passwords.
    public var recordInput: Bool
    /// Refuse a session whose recording cannot be opened (otherwise it runs unrecorded, and the audit
    /// record says so).
    public var failClosed: Bool
    /// Whether each port-forward connection's bytes are written too, as a pcap file (see
    /// ``PacketCaptureEncoder``); `failClosed` then refuses a connection whose file cannot be opened.
    public var capturePortForwards: Bool

    public init(
        directory: String, recordInput: Bool = false, failClosed: Bool = false, capturePortForwards: Bool = false
    ) {
        self.directory = directory
        self.recordInput = recordInput
        self.failClosed = failClosed
        self.capturePortForwards = capturePortForwards
    }
}

/// Records one exec or attach session as an asciicast v2 file, handing each event to a
/// ``RecordingFileWriter`` as it happens: written in order, behind the session, with a bounded
/// backlog.
///
/// The header needs the terminal size, which a terminal session sends as its first resize: the
/// header is written at the first event that is not a marker (a first resize sets the size;
/// anything else means 80x24), or at the end. Markers before that wait in memory (the policy
/// decision). Events are built and handed over without suspending in between, so the file's order is
/// the order of events however calls from several streams interleave on this actor.
actor SessionRecorder: RemoteCommandObserver {
    /// Used when no resize arrives before the first output.
    static let defaultSize = TerminalSize(width: 80, height: 24)

    nonisolated var path: String { writer.path }
    private let writer: RecordingFileWriter
    private let recordInput: Bool
    private let started: ContinuousClock.Instant
    private var header: AsciicastEncoder.Header?
    private var pendingMarkers: [(Double, String)] = []
    private var encoder = AsciicastEncoder()

    /// Creates the file (mode 0600, never overwriting one that exists).
    init(
        settings: SessionRecordingSettings, sessionID: String, header: AsciicastEncoder.Header,
        threadPool: NIOThreadPool = .singleton
    ) throws {
        let path = URL(fileURLWithPath: settings.directory).appendingPathComponent("\(sessionID).cast").path
        self.writer = try RecordingFileWriter(path: path, kind: "recording", threadPool: threadPool)
        self.recordInput = settings.recordInput
        self.header = header
        self.started = .now
    }

    struct RecordingError: Error, CustomStringConvertible {
        let description: String
    }

    /// Whether a write failed (the recording is incomplete from then on).
    var hasFailed: Bool { writer.hasFailed }

    private var elapsed: Double {
        let duration = ContinuousClock.now - started
        return Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    func marker(_ label: String) async {
        if header != nil {
            pendingMarkers.append((elapsed, label))
        } else {
            await enqueue(AsciicastEncoder.eventLine(time: elapsed, code: .marker, data: label))
        }
    }

    /// Writes the header now, at the default size: a session without a terminal sends no resize,
    /// and its markers (a `kubectl cp`'s entries) should reach the disk as they happen.
    func writeHeader() async {
        await enqueue(headerIfNeeded(size: nil))
    }

    func stdin(_ data: ByteBuffer) async {
        guard recordInput else { return }
        await record(data, code: .input, source: .stdin)
    }

    func output(_ data: ByteBuffer, stream: RemoteCommandStreamType) async {
        await record(data, code: .output, source: stream == .stderr ? .stderr : .stdout)
    }

    private func record(_ data: ByteBuffer, code: AsciicastEncoder.EventCode, source: AsciicastEncoder.Source) async {
        let time = elapsed
        writer.enqueue(Array(headerIfNeeded(size: nil).utf8))
        // ASCII (nearly all output) is escaped straight into the memory it is written from.
        let built = data.withUnsafeReadableBytes { raw -> Bool in
            let bytes = raw.assumingMemoryBound(to: UInt8.self)
            guard let line = encoder.asciiLine(time: time, code: code, source: source, bytes: bytes) else {
                return false
            }
            writer.enqueue(count: line.count, scratch: JSONStringEscaping.slack, build: line.write(to:))
            return true
        }
        if !built {
            writer.enqueue(encoder.bytesLine(time: time, code: code, source: source, bytes: data.readableBytesView))
        }
        await writer.waitForSpace()
    }

    func resize(_ size: TerminalSize) async {
        let time = elapsed
        if header != nil {
            await enqueue(headerIfNeeded(size: size))  // the first size is the header's
        } else {
            await enqueue(AsciicastEncoder.eventLine(time: time, code: .resize, data: "\(size.width)x\(size.height)"))
        }
    }

    /// Returns once every event so far is in the file (written, not synced): what a reader of an
    /// open session's recording finds a moment later anyway.
    func flush() async {
        await writer.flush()
    }

    /// Writes what is left and the final marker, and syncs the file to disk.
    func finish(marker label: String) async {
        let time = elapsed
        var text = headerIfNeeded(size: nil)
        text += encoder.flushLines(time: time).joined()
        text += AsciicastEncoder.eventLine(time: time, code: .marker, data: label)
        await enqueue(text)
        await writer.synchronize()
    }

    /// The header line and the markers held for it, the first time; then nothing.
    private func headerIfNeeded(size: TerminalSize?) -> String {
        guard var header else { return "" }
        self.header = nil
        let size = size ?? Self.defaultSize
        header.width = Int(size.width)
        header.height = Int(size.height)
        var text = AsciicastEncoder.headerLine(header)
        for (time, label) in pendingMarkers {
            text += AsciicastEncoder.eventLine(time: time, code: .marker, data: label)
        }
        pendingMarkers = []
        return text
    }

    /// Hands `text` to the writer after everything before it; waits only while its backlog is full.
    private func enqueue(_ text: String) async {
        writer.enqueue(Array(text.utf8))
        await writer.waitForSpace()
    }
}
