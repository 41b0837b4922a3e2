import Foundation
import Sandbox

#if canImport(Glibc)
    import Glibc
#endif

/// A long-running child (e.g. `kubectl port-forward`) whose output is collected while it runs.
public final class BackgroundProcess: @unchecked Sendable {
    private let process = Process()
    private let exit: ProcessExitMonitor
    private let lock = NSLock()
    private var output = Data()
    private var outputEnded = false

    public init(
        executable: URL, arguments: [String], environment: [String: String], currentDirectory: URL? = nil
    ) throws {
        exit = ProcessExitMonitor(process)
        process.executableURL = executable
        if let currentDirectory { process.currentDirectoryURL = currentDirectory }
        process.arguments = arguments
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        pipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard !data.isEmpty else {
                // At EOF the handler would otherwise be called again and again, spinning a core.
                handle.readabilityHandler = nil
                if let self { self.lock.withLock { self.outputEnded = true } }
                return
            }
            guard let self else { return }
            self.lock.withLock { self.output.append(data) }
        }
        try process.runWithDefaultSignalMask()
    }

    deinit { stop() }

    public var transcript: String { lock.withLock { String(decoding: output, as: UTF8.self) } }
    public var isRunning: Bool { exit.exitStatus == nil }

    /// Waits until the output has a match for `pattern` and returns the first capture group.
    public func waitForMatch(_ pattern: String, timeout: Duration = .seconds(20)) async throws -> String {
        let regex = try NSRegularExpression(pattern: pattern)
        let deadline = ContinuousClock.now + timeout
        while true {
            let text = transcript
            if let match = regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)),
                let range = Range(match.range(at: match.numberOfRanges > 1 ? 1 : 0), in: text)
            {
                return String(text[range])
            }
            if let status = exit.exitStatus {
                throw TestSupportError("process exited (\(status)) before printing /\(pattern)/:\n\(text)")
            }
            if ContinuousClock.now > deadline {
                throw TestSupportError("timed out waiting for /\(pattern)/; output:\n\(text)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Sends a signal (SIGHUP to reload, SIGTERM to stop…).
    public func signal(_ number: Int32) {
        if isRunning { kill(process.processIdentifier, number) }
    }

    /// Sends SIGINT, as Ctrl-C in a terminal would.
    public func interrupt() {
        process.interrupt()
    }

    /// Waits for the process to exit by itself and returns its exit status. The output it wrote
    /// last is in ``transcript`` by then (the pipe is read to its end, for up to two seconds more:
    /// a child that outlives the process may hold it open).
    public func waitForExit(timeout: Duration) async throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while isRunning {
            if ContinuousClock.now > deadline {
                throw TestSupportError("process did not exit within \(timeout); output:\n\(transcript)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        let drained = ContinuousClock.now + .seconds(2)
        while !lock.withLock({ outputEnded }), ContinuousClock.now < drained {
            try await Task.sleep(for: .milliseconds(20))
        }
        return exit.exitStatus ?? -1
    }

    /// Stops the process (SIGTERM, then SIGKILL to its process group after `grace`) and reaps it.
    /// Bounded, because `deinit` calls it on a thread the test run may need.
    public func stop(grace: Duration = .seconds(30)) {
        process.stop(exit: exit, grace: grace)
    }
}
