import Foundation
import Sandbox
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A child that never exits must not hold its caller: past the time limit, or when the caller is
/// cancelled, it is stopped and the call throws.
@Suite("Running children to completion")
struct ProcessRunnerTests {
    private static let bash = URL(fileURLWithPath: "/bin/bash")

    /// A script that writes its process id to a fresh file, then runs `body`.
    private static func script(_ body: String) throws -> (arguments: [String], pidFile: URL) {
        let pidFile = FileManager.default.temporaryDirectory.appendingPathComponent("runner-\(UUID().uuidString).pid")
        return (["-c", "echo $$ > \(pidFile.path); \(body)"], pidFile)
    }

    /// The child's process id, once it has written it.
    private static func childPID(_ pidFile: URL) async throws -> pid_t {
        for _ in 0..<500 {
            if let text = try? String(contentsOf: pidFile, encoding: .utf8),
                let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines))
            {
                return pid
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw CancellationError()
    }

    /// Whether a process with this id still exists (reaped children do not).
    private static func exists(_ pid: pid_t) -> Bool {
        kill(pid, 0) == 0 || errno != ESRCH
    }

    @Test("a child that finishes in time gives its output and exit status")
    func finishesInTime() async throws {
        let result = try await ProcessRunner.run(
            Self.bash, arguments: ["-c", "echo out; echo err >&2; exit 7"], timeLimit: .seconds(30))
        #expect(result.exitCode == 7)
        #expect(result.standardOutput == "out\n")
        #expect(result.standardError == "err\n")
    }

    @Test(
        "a child past its time limit is stopped, with what it left running, and the call throws processTimedOut with its stderr"
    )
    func timeLimit() async throws {
        // The background sleep holds the output pipes: the call returns only once it is gone too.
        let (arguments, pidFile) = try Self.script("echo waiting >&2; sleep 60 & exec sleep 60")
        defer { try? FileManager.default.removeItem(at: pidFile) }
        let clock = ContinuousClock()
        let start = clock.now
        let error = await #expect(throws: SandboxError.self) {
            try await ProcessRunner.run(Self.bash, arguments: arguments, timeLimit: .milliseconds(500))
        }
        #expect(error?.kind == .processTimedOut)
        #expect(error?.message.contains("did not exit within") == true)
        #expect(error?.message.contains("waiting") == true, "\(error?.message ?? "")")
        #expect(clock.now - start < .seconds(10))
        #expect(!Self.exists(try await Self.childPID(pidFile)))
    }

    @Test("a child that ignores SIGTERM is killed after the grace period")
    func ignoresTerminate() async throws {
        let (arguments, pidFile) = try Self.script("trap '' TERM; while :; do sleep 0.1; done")
        defer { try? FileManager.default.removeItem(at: pidFile) }
        let clock = ContinuousClock()
        let start = clock.now
        await #expect(throws: SandboxError.self) {
            try await ProcessRunner.run(Self.bash, arguments: arguments, timeLimit: .milliseconds(300))
        }
        let elapsed = clock.now - start
        #expect(elapsed >= ProcessRunner.stopGrace, "SIGKILL came before the grace period: \(elapsed)")
        #expect(elapsed < .seconds(15))
        #expect(!Self.exists(try await Self.childPID(pidFile)))
    }

    @Test("cancelling the caller stops the child and the call throws CancellationError")
    func cancellation() async throws {
        let (arguments, pidFile) = try Self.script("exec sleep 60")
        defer { try? FileManager.default.removeItem(at: pidFile) }
        let run = Task { try await ProcessRunner.run(Self.bash, arguments: arguments) }
        let pid = try await Self.childPID(pidFile)
        #expect(Self.exists(pid))
        run.cancel()
        await #expect(throws: CancellationError.self) { try await run.value }
        #expect(!Self.exists(pid))
    }
}
