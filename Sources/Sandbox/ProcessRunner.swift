import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The result of a finished child process.
public struct ProcessResult: Sendable {
    public let exitCode: Int32
    public let standardOutput: String
    public let standardError: String

    public var succeeded: Bool { exitCode == 0 }
}

/// Runs child processes without blocking a Swift concurrency thread: output is drained on threads
/// of its own (so a chatty child never fills a pipe and stalls), and termination resumes the
/// caller.
///
/// A child never outlives the wait for it: when the calling task is cancelled (a test past its
/// time limit, a sandbox being stopped) or `timeLimit` passes, the child is stopped (SIGTERM, then
/// SIGKILL to its process group) and the call throws. Without this, one child that never exits
/// (a kubectl waiting on a session that will not end) held its caller, and a test run, forever.
public enum ProcessRunner {
    /// How long a stopped child gets between SIGTERM and SIGKILL.
    public static let stopGrace: Duration = .seconds(2)

    /// Runs `executable` to completion and captures its output.
    ///
    /// - Throws: `SandboxError` `.processTimedOut` when `timeLimit` passed first, or
    ///   `CancellationError` when the calling task was cancelled; the child is stopped either way.
    public static func run(
        _ executable: URL,
        arguments: [String],
        environment: [String: String]? = nil,
        currentDirectory: URL? = nil,
        standardInput: Data? = nil,
        timeLimit: Duration? = nil
    ) async throws -> ProcessResult {
        // Before the pipes and their reader threads: nothing would ever close them.
        try Task.checkCancellation()
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        if let environment { process.environment = environment }
        if let currentDirectory { process.currentDirectoryURL = currentDirectory }
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        let stdin = standardInput.map { _ in Pipe() }
        process.standardInput = stdin ?? FileHandle.nullDevice

        let output = Drain(stdout.fileHandleForReading)
        let errors = Drain(stderr.fileHandleForReading)
        let exit = ProcessExitMonitor(process)
        try process.runWithDefaultSignalMask()
        if let stdin, let standardInput {
            Thread.detachNewThread {
                try? stdin.fileHandleForWriting.write(contentsOf: standardInput)
                try? stdin.fileHandleForWriting.close()
            }
        }
        let stopper = ChildStopper(process, exit: exit)
        let watchdog = timeLimit.map { limit in
            Task.detached {
                try? await Task.sleep(for: limit)
                if !Task.isCancelled { stopper.stop(reason: .timedOut) }
            }
        }
        let status = await withTaskCancellationHandler {
            await exit.wait()
        } onCancel: {
            stopper.stop(reason: .cancelled)
        }
        watchdog?.cancel()
        let result = ProcessResult(
            exitCode: status,
            standardOutput: String(decoding: await output.result(), as: UTF8.self),
            standardError: String(decoding: await errors.result(), as: UTF8.self)
        )
        switch stopper.reason {
        case nil: return result
        case .cancelled: throw CancellationError()
        case .timedOut:
            throw SandboxError(
                .processTimedOut,
                "\(executable.lastPathComponent) \(arguments.joined(separator: " ")) did not exit within "
                    + "\(timeLimit ?? .zero) and was stopped; its standard error:\n\(result.standardError)")
        }
    }

    /// Looks a program up on `PATH`.
    public static func which(_ name: String, path: String? = ProcessInfo.processInfo.environment["PATH"]) -> URL? {
        for directory in (path ?? "").split(separator: ":") {
            let candidate = URL(fileURLWithPath: String(directory)).appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        return nil
    }
}

/// Reads a pipe to its end on a thread of its own. Not on a dispatch queue: each blocked read holds
/// a worker, and with dozens of children running at once the blocked reads used up dispatch's
/// shared worker threads, which Swift concurrency and everything else in the process wait on
/// (measured: 50 concurrent kubectl runs hung an in-process proxy until kubectl timed out).
private final class Drain: Sendable {
    private let done: Task<Data, Never>

    init(_ handle: FileHandle) {
        done = Task.detached {
            await withCheckedContinuation { continuation in
                Thread.detachNewThread {
                    continuation.resume(returning: handle.readDataToEndOfFile())
                }
            }
        }
    }

    func result() async -> Data { await done.value }
}

/// Stops a child once, off the caller's thread (stopping waits for the exit), and remembers why.
private final class ChildStopper: @unchecked Sendable {
    enum Reason { case cancelled, timedOut }

    // `Process` is not Sendable; it is only signalled here, which is safe from any thread.
    private let process: Process
    private let exit: ProcessExitMonitor
    private let lock = NSLock()
    private var stopped: Reason?

    init(_ process: Process, exit: ProcessExitMonitor) {
        self.process = process
        self.exit = exit
    }

    /// Why the child was stopped, or nil when it exited on its own.
    var reason: Reason? { lock.withLock { stopped } }

    func stop(reason: Reason) {
        let first = lock.withLock {
            guard stopped == nil, exit.exitStatus == nil else { return false }
            stopped = reason
            return true
        }
        guard first else { return }
        Thread.detachNewThread { [self] in
            let group = process.processIdentifier
            process.stop(exit: exit, grace: ProcessRunner.stopGrace)
            // What it left running in its group would hold its output pipes open, and the
            // caller, which reads them to their end.
            kill(-group, SIGKILL)
        }
    }
}
