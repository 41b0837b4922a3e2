import Foundation
import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

/// Writes one port-forward connection's bytes, as forwarded, to a pcap file
/// (`<session>-<request id>.pcap` in the recordings directory), handed to a
/// ``RecordingFileWriter`` as they cross: written in order, behind the connection, with a bounded
/// backlog.
actor PortForwardCapture {
    nonisolated var path: String { writer.path }
    private let writer: RecordingFileWriter
    private var encoder: PacketCaptureEncoder

    /// Creates the file (mode 0600, never overwriting one that exists) and writes its header and
    /// the connection's opening.
    init(
        directory: String, sessionID: String, requestID: String, port: UInt16, threadPool: NIOThreadPool = .singleton
    ) async throws {
        let safeRequestID = String(requestID.map { $0.isLetter || $0.isNumber || $0 == "-" ? $0 : "_" })
        let path = URL(fileURLWithPath: directory).appendingPathComponent("\(sessionID)-\(safeRequestID).pcap").path
        self.writer = try RecordingFileWriter(path: path, kind: "capture", threadPool: threadPool)
        self.encoder = PacketCaptureEncoder(podPort: port)
        await enqueue(encoder.start(time: Date()))
    }

    /// Whether a write failed (the capture is incomplete from then on).
    var hasFailed: Bool { writer.hasFailed }

    func record(_ bytes: ByteBuffer, direction: PortForwardDirection) async {
        await enqueue(encoder.data(bytes.readableBytesView, direction: direction, time: Date()))
    }

    /// Ends both directions (FINs) and syncs the file to disk.
    func close() async {
        let now = Date()
        await enqueue(
            encoder.finish(direction: .clientToPod, time: now) + encoder.finish(direction: .podToClient, time: now))
        await writer.synchronize()
    }

    /// Hands `bytes` to the writer after everything before it; waits only while its backlog is full.
    private func enqueue(_ bytes: [UInt8]) async {
        writer.enqueue(bytes)
        await writer.waitForSpace()
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
