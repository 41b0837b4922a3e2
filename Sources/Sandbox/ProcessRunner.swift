import Foundation

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
public enum ProcessRunner {
    /// Runs `executable` to completion and captures its output.
    public static func run(
        _ executable: URL,
        arguments: [String],
        environment: [String: String]? = nil,
        currentDirectory: URL? = nil,
        standardInput: Data? = nil
    ) async throws -> ProcessResult {
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
        let status = await exit.wait()
        return ProcessResult(
            exitCode: status,
            standardOutput: String(decoding: await output.result(), as: UTF8.self),
            standardError: String(decoding: await errors.result(), as: UTF8.self)
        )
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
