import Foundation
import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

/// Writes one port-forward connection's bytes, as forwarded, to a pcap file
/// (`<session>-<request id>.pcap` in the recordings directory), appended as they cross so that a
/// crash loses at most the chunk being written. Writes go through NIO's blocking-I/O pool in the
/// order the chunks were encoded, never on an event loop or the cooperative pool.
actor PortForwardCapture {
    nonisolated let path: String
    private let file: FileHandle
    private var encoder: PacketCaptureEncoder
    private let threadPool: NIOThreadPool
    private var lastWrite: Task<Bool, Never>?
    private var failed = false

    /// Creates the file (mode 0600, never overwriting one that exists) and writes its header and
    /// the connection's opening.
    init(
        directory: String, sessionID: String, requestID: String, port: UInt16, threadPool: NIOThreadPool = .singleton
    ) async throws {
        let safeRequestID = String(requestID.map { $0.isLetter || $0.isNumber || $0 == "-" ? $0 : "_" })
        let path = URL(fileURLWithPath: directory).appendingPathComponent("\(sessionID)-\(safeRequestID).pcap").path
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw SessionRecorder.RecordingError(
                description: "cannot create the capture \(path): \(String(cString: strerror(errno)))")
        }
        self.path = path
        self.file = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        self.encoder = PacketCaptureEncoder(podPort: port)
        self.threadPool = threadPool
        await enqueue(encoder.start(time: Date()))
    }

    /// Whether a write failed (the capture is incomplete from then on).
    var hasFailed: Bool { failed }

    func record(_ bytes: ByteBuffer, direction: PortForwardDirection) async {
        await enqueue(encoder.data(bytes.readableBytesView, direction: direction, time: Date()))
    }

    /// Ends both directions (FINs) and syncs the file to disk.
    func close() async {
        let now = Date()
        await enqueue(
            encoder.finish(direction: .clientToPod, time: now) + encoder.finish(direction: .podToClient, time: now))
        let file = self.file
        _ = try? await threadPool.runIfActive { try file.synchronize() }
    }

    /// Appends `bytes` after every write enqueued before it, and waits for it.
    private func enqueue(_ bytes: [UInt8]) async {
        guard !bytes.isEmpty, !failed else { return }
        let previous = lastWrite
        let file = self.file
        let threadPool = self.threadPool
        let data = Data(bytes)
        let write = Task<Bool, Never> {
            guard await previous?.value ?? true else { return false }
            do {
                try await threadPool.runIfActive { try file.write(contentsOf: data) }
                return true
            } catch {
                return false
            }
        }
        lastWrite = write
        if await !write.value { failed = true }
    }
}

/// An inspector that writes what another lets through to a ``PortForwardCapture``: the file holds
/// the bytes as they were forwarded, after any protocol inspector's changes.
struct CapturingInspector: PortForwardInspector {
    let inner: any PortForwardInspector
    let capture: PortForwardCapture

    var name: String { inner.name }

    func inspect(_ bytes: ByteBuffer, direction: PortForwardDirection) async -> PortForwardInspection {
        let inspection = await inner.inspect(bytes, direction: direction)
        if case .forward(let forwarded) = inspection, forwarded.readableBytes > 0 {
            await capture.record(forwarded, direction: direction)
        }
        return inspection
    }
}
