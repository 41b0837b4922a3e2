import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A program run on a fresh pseudo-terminal, driven like a person at a keyboard: what
/// `kubectl exec -it` needs to believe it has a terminal (raw mode, window size, SIGWINCH).
///
/// The program becomes a session leader with the pty as its controlling terminal (`setsid -c`),
/// so resizing the terminal delivers SIGWINCH exactly as a terminal emulator would.
public final class TerminalSession: @unchecked Sendable {
    private let process = Process()
    private let master: Int32
    private let lock = NSLock()
    private var output = Data()
    private var readerDone = false

    public init(
        executable: URL,
        arguments: [String],
        environment: [String: String],
        rows: UInt16 = 24,
        columns: UInt16 = 80
    ) throws {
        let (master, slave) = try Self.openPseudoTerminal()
        self.master = master
        defer { close(slave) }
        var size = winsize(ws_row: rows, ws_col: columns, ws_xpixel: 0, ws_ypixel: 0)
        _ = ioctl(master, UInt(TIOCSWINSZ), &size)

        process.executableURL = URL(fileURLWithPath: "/usr/bin/setsid")
        process.arguments = ["--ctty", "--wait", executable.path] + arguments
        process.environment = environment.merging(["TERM": "xterm"]) { old, _ in old }
        let handle = FileHandle(fileDescriptor: slave, closeOnDealloc: false)
        process.standardInput = handle
        process.standardOutput = handle
        process.standardError = handle
        try process.runWithDefaultSignalMask()

        Thread.detachNewThread { [self] in
            var buffer = [UInt8](repeating: 0, count: 16 * 1024)
            while true {
                let count = read(master, &buffer, buffer.count)
                if count <= 0 { break }  // EIO once the program and its children closed the pty
                lock.withLock { output.append(contentsOf: buffer[0..<count]) }
            }
            lock.withLock { readerDone = true }
        }
    }

    // Linux's pty ioctls (asm-generic/ioctls.h); Glibc's module does not import the macros.
    private static let getPTYNumber: UInt = 0x8004_5430  // TIOCGPTN
    private static let setPTYLock: UInt = 0x4004_5431  // TIOCSPTLCK

    private static func openPseudoTerminal() throws -> (master: Int32, slave: Int32) {
        let master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard master >= 0 else { throw TestSupportError("cannot open /dev/ptmx: errno \(errno)") }
        var unlock: Int32 = 0
        var number: UInt32 = 0
        guard ioctl(master, setPTYLock, &unlock) == 0, ioctl(master, getPTYNumber, &number) == 0 else {
            close(master)
            throw TestSupportError("cannot set up the pseudo-terminal: errno \(errno)")
        }
        let slave = open("/dev/pts/\(number)", O_RDWR | O_NOCTTY)
        guard slave >= 0 else {
            close(master)
            throw TestSupportError("cannot open /dev/pts/\(number): errno \(errno)")
        }
        return (master, slave)
    }

    deinit {
        if process.isRunning { process.terminate() }
        close(master)
    }

    /// Types `text` into the terminal.
    public func send(_ text: String) {
        let bytes = Array(text.utf8)
        bytes.withUnsafeBytes { _ = write(master, $0.baseAddress, $0.count) }
    }

    /// Changes the window size (the program gets SIGWINCH).
    public func resize(rows: UInt16, columns: UInt16) {
        var size = winsize(ws_row: rows, ws_col: columns, ws_xpixel: 0, ws_ypixel: 0)
        _ = ioctl(master, UInt(TIOCSWINSZ), &size)
    }

    /// Everything the program has written so far.
    public var transcript: String { lock.withLock { String(decoding: output, as: UTF8.self) } }

    /// Waits until the transcript contains `text`.
    public func waitFor(_ text: String, timeout: Duration = .seconds(20)) async throws {
        let deadline = ContinuousClock.now + timeout
        while !transcript.contains(text) {
            if ContinuousClock.now > deadline {
                throw TestSupportError("timed out waiting for \(text.debugDescription); got:\n\(transcript)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Types `text` every 2 s until the transcript contains `expected`: for a command whose answer
    /// depends on something that arrives on its own schedule, such as the terminal size kubectl
    /// sends on its resize stream while the shell may already be reading.
    public func send(_ text: String, until expected: String, timeout: Duration = .seconds(20)) async throws {
        let deadline = ContinuousClock.now + timeout
        while !transcript.contains(expected) {
            if ContinuousClock.now > deadline {
                throw TestSupportError("timed out waiting for \(expected.debugDescription); got:\n\(transcript)")
            }
            send(text)
            let retry = ContinuousClock.now + .seconds(2)
            while !transcript.contains(expected), ContinuousClock.now < retry {
                try await Task.sleep(for: .milliseconds(50))
            }
        }
    }

    /// Waits for the program to exit and returns its exit code.
    public func waitForExit(timeout: Duration = .seconds(30)) async throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now > deadline {
                process.terminate()
                throw TestSupportError("the program did not exit within \(timeout); transcript:\n\(transcript)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        // Let the reader collect what was written just before the exit.
        for _ in 0..<40 where !lock.withLock({ readerDone }) {
            try await Task.sleep(for: .milliseconds(25))
        }
        return process.terminationStatus
    }
}
