import Foundation
import Sandbox
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// SIGUSR1 and SIGUSR2 stand in for SIGINT and SIGTERM: nothing else in the test process uses them.
@Suite("Signals and stopping children")
struct SignalWaiterTests {
    /// The signals a freshly started child ignores, from its `/proc/self/status`.
    private static func signalsIgnoredByChild() async throws -> UInt64 {
        let result = try await ProcessRunner.run(
            URL(fileURLWithPath: "/bin/bash"), arguments: ["-c", "grep '^SigIgn:' /proc/self/status"])
        let field = try #require(result.standardOutput.split(separator: "\t").last)
        return try #require(UInt64(field.trimmingCharacters(in: .whitespacesAndNewlines), radix: 16))
    }

    @Test("once created, Dispatch handles the signal, so a child started at once does not inherit it ignored")
    func childrenStartWithDefaultDisposition() async throws {
        let waiter = SignalWaiter(signals: [SIGUSR2])
        #expect(SignalWaiter.disposition(of: SIGUSR2) == .handler)
        let ignored = try await Self.signalsIgnoredByChild()
        #expect(ignored & (1 << UInt64(SIGUSR2 - 1)) == 0, "the child ignores SIGUSR2: \(String(ignored, radix: 16))")
        withExtendedLifetime(waiter) {}
    }

    @Test("a second waiter for the same signal does not ignore it again, and receives it")
    func secondWaiterReceives() async throws {
        let first = SignalWaiter(signals: [SIGUSR1])
        let second = SignalWaiter(signals: [SIGUSR1])
        #expect(SignalWaiter.disposition(of: SIGUSR1) == .handler)
        let timeout = Task { try? await Task.sleep(for: .seconds(10)) }
        let received = Task { await second.next(orUntil: timeout) }
        // Dispatch registers the second source asynchronously, so a signal sent at once may reach
        // only the first: send until the second has one.
        let sender = Task {
            while !Task.isCancelled {
                kill(getpid(), SIGUSR1)
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
        #expect(await received.value == SIGUSR1)
        sender.cancel()
        await sender.value
        timeout.cancel()
        withExtendedLifetime(first) {}
    }

    @Test("a waiter that goes away cancels its sources: later signals are still handled, by nobody")
    func releasedWaiterCancelsSources() async throws {
        do {
            let waiter = SignalWaiter(signals: [SIGUSR2])
            withExtendedLifetime(waiter) {}
        }
        // Before the fix, Dispatch kept routing this signal to the released sources' memory.
        for _ in 0..<10 {
            kill(getpid(), SIGUSR2)
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(SignalWaiter.disposition(of: SIGUSR2) == .handler)
        let again = SignalWaiter(signals: [SIGUSR2])
        let timeout = Task { try? await Task.sleep(for: .seconds(10)) }
        let received = Task { await again.next(orUntil: timeout) }
        let sender = Task {
            while !Task.isCancelled {
                kill(getpid(), SIGUSR2)
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
        #expect(await received.value == SIGUSR2, "a new waiter still gets the signal")
        sender.cancel()
        await sender.value
        timeout.cancel()
    }

    @Test("stop escalates to SIGKILL of the whole group when SIGTERM is ignored, within the grace period")
    func stopEscalates() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("stop-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let childFile = directory.appendingPathComponent("child.pid")

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", "trap '' TERM INT; sleep 300 & echo $! > \(childFile.path); wait"]
        let exit = ProcessExitMonitor(process)
        try process.runWithDefaultSignalMask()
        var waited = 0
        while (try? String(contentsOf: childFile, encoding: .utf8))?.hasSuffix("\n") != true, waited < 200 {
            usleep(20_000)
            waited += 1
        }
        let child = try #require(
            Int32((try String(contentsOf: childFile, encoding: .utf8)).trimmingCharacters(in: .whitespacesAndNewlines)))

        let started = ContinuousClock.now
        let status = process.stop(exit: exit, grace: .milliseconds(500))
        let took = ContinuousClock.now - started
        #expect(status == SIGKILL)
        #expect(process.terminationReason == .uncaughtSignal)
        #expect(took >= .milliseconds(500) && took < .seconds(5), "took \(took)")
        // The background child was in the group: it is gone (or a zombie awaiting its reaper).
        var gone = false
        for _ in 0..<100 {
            let state = (try? String(contentsOfFile: "/proc/\(child)/stat", encoding: .utf8))?
                .split(separator: ")").last?.split(separator: " ").first
            if state == nil || state == "Z" {
                gone = true
                break
            }
            usleep(20_000)
        }
        #expect(gone, "the background sleep \(child) survived")
    }

    @Test("stop of a child that honours SIGTERM returns at once with its status")
    func stopGraceful() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", "trap 'exit 7' TERM; while :; do sleep 0.05; done"]
        let exit = ProcessExitMonitor(process)
        try process.runWithDefaultSignalMask()
        usleep(200_000)  // lets bash install its trap
        let started = ContinuousClock.now
        #expect(process.stop(exit: exit, grace: .seconds(30)) == 7)
        #expect(ContinuousClock.now - started < .seconds(5))
    }
}
