import Foundation
import NIOCore
import SPDY
import Sandbox

#if canImport(Glibc)
    import Glibc
#endif

/// Runs an exec request as a local process: the "container" is this machine. Without a terminal the
/// process gets pipes; with one it gets a fresh pty as its controlling terminal, and resize events set
/// the pty's window size.
enum LocalExec {
    /// How long the fake server waits before the process starts. client-go's WebSocket executor
    /// starts reading before it has registered its stdout and stderr streams, and drops data for a
    /// stream it does not know yet ("Unknown stream id 1, discarding message"); a real apiserver
    /// first dials the kubelet, so its first bytes never come that early. Without this pause a local
    /// process answering within microseconds makes the tests flaky.
    static let startDelay: Duration = .milliseconds(150)

    static func run(_ session: RemoteCommandSession, command: [String]) async {
        try? await Task.sleep(for: startDelay)
        do {
            let code =
                try await session.options.tty ? runWithTerminal(session, command) : runWithPipes(session, command)
            await session.finish(status: .exited(Int(code)))
        } catch {
            await session.finish(status: .failure(message: "exec failed: \(error)", reason: "InternalError", code: 500))
        }
    }

    private static func runWithPipes(_ session: RemoteCommandSession, _ command: [String]) async throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = command
        let stdin = Pipe()
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardInput = session.options.stdin ? stdin : FileHandle.nullDevice
        process.standardOutput = stdout
        process.standardError = stderr
        let exit = ProcessExitMonitor(process)
        try process.runWithDefaultSignalMask()
        try? stdout.fileHandleForWriting.close()
        try? stderr.fileHandleForWriting.close()
        try? stdin.fileHandleForReading.close()

        let input = Task {
            if let source = session.stdin {
                try? await pump(source, into: stdin.fileHandleForWriting.fileDescriptor)
            }
            try? stdin.fileHandleForWriting.close()
        }
        async let out: Void = copy(from: stdout.fileHandleForReading.fileDescriptor) {
            try await session.writeStdout($0)
        }
        async let err: Void = copy(from: stderr.fileHandleForReading.fileDescriptor) {
            try await session.writeStderr($0)
        }
        _ = try await (out, err)
        let status = await exit.wait()
        input.cancel()
        return status
    }

    private static func runWithTerminal(_ session: RemoteCommandSession, _ command: [String]) async throws -> Int32 {
        let (master, slave) = try openPseudoTerminal()
        defer { close(master) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setsid")
        process.arguments = ["--ctty", "--wait", "/usr/bin/env"] + command
        process.environment = ["TERM": "xterm", "PATH": "/usr/bin:/bin", "PS1": "$ "]
        let handle = FileHandle(fileDescriptor: slave, closeOnDealloc: false)
        process.standardInput = handle
        process.standardOutput = handle
        process.standardError = handle
        let exit = ProcessExitMonitor(process)
        try process.runWithDefaultSignalMask()
        close(slave)

        let resizes = Task {
            for try await size in session.resizes {
                var window = winsize(ws_row: size.height, ws_col: size.width, ws_xpixel: 0, ws_ypixel: 0)
                _ = ioctl(master, UInt(TIOCSWINSZ), &window)
            }
        }
        let input = Task {
            if let source = session.stdin { try? await pump(source, into: master) }
        }
        try? await copy(from: master) { try await session.writeStdout($0) }
        let status = await exit.wait()
        input.cancel()
        resizes.cancel()
        return status
    }

    /// Reads `fd` on a dedicated thread until EOF (or EIO, once a pty's other side is gone).
    private static func copy(from fd: Int32, to write: (ByteBuffer) async throws -> Void) async throws {
        let chunks = AsyncStream<ByteBuffer> { continuation in
            Thread.detachNewThread {
                var buffer = [UInt8](repeating: 0, count: 32 * 1024)
                while true {
                    let count = read(fd, &buffer, buffer.count)
                    if count < 0 && errno == EINTR { continue }
                    if count <= 0 { break }
                    continuation.yield(ByteBuffer(bytes: buffer[0..<count]))
                }
                continuation.finish()
            }
        }
        for await chunk in chunks { try await write(chunk) }
    }

    /// Writes every chunk of `source` to `fd`.
    private static func pump(_ source: InboundByteStream, into fd: Int32) async throws {
        for try await chunk in source {
            let bytes = Array(chunk.readableBytesView)
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                DispatchQueue.global().async {
                    var offset = 0
                    while offset < bytes.count {
                        let written = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
                        if written < 0 && errno == EINTR { continue }
                        guard written > 0 else {
                            continuation.resume(throwing: POSIXError(.EPIPE))
                            return
                        }
                        offset += written
                    }
                    continuation.resume()
                }
            }
        }
    }

    private static func openPseudoTerminal() throws -> (master: Int32, slave: Int32) {
        // Linux's TIOCSPTLCK and TIOCGPTN (asm-generic/ioctls.h); Glibc's module does not import them.
        let setLock: UInt = 0x4004_5431
        let getNumber: UInt = 0x8004_5430
        let master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard master >= 0 else { throw POSIXError(.ENXIO) }
        var unlock: Int32 = 0
        var number: UInt32 = 0
        guard ioctl(master, setLock, &unlock) == 0, ioctl(master, getNumber, &number) == 0 else {
            close(master)
            throw POSIXError(.ENXIO)
        }
        let slave = open("/dev/pts/\(number)", O_RDWR | O_NOCTTY)
        guard slave >= 0 else {
            close(master)
            throw POSIXError(.ENXIO)
        }
        return (master, slave)
    }
}
