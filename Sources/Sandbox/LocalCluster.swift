import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A local test cluster kept in one state directory (PKI, logs, kubeconfigs, `cluster.env`).
///
/// Two ways to run it:
/// - ``startDetached()`` / ``stop()``: the cluster outlives this process (`sandbox --detach`);
/// - ``startSupervised(owner:readyTimeout:)``: the cluster's supervisor is this process's child and
///   stops with it (foreground sandbox, tests). The child also watches the owner PID, so a crashed
///   owner does not leak a cluster.
public struct LocalCluster: Sendable {
    public let stateDirectory: URL
    public let scripts: TestEnvironmentScripts
    /// Extra processes the supervisor runs once the cluster is seeded (the sandbox's proxy and
    /// webhook), waited for on their port and stopped first.
    public var components: [Component]
    /// Manifests (files or directories) applied as cluster-admin once the CRDs are established and
    /// before the components start: the sandbox's AccessPolicies.
    public var manifests: [URL] = []

    public struct Component: Sendable {
        public var name: String
        public var command: String
        public var port: Int?

        public init(name: String, command: String, port: Int? = nil) {
            self.name = name
            self.command = command
            self.port = port
        }
    }

    public init(stateDirectory: URL, scripts: TestEnvironmentScripts, components: [Component] = []) {
        self.stateDirectory = stateDirectory.standardizedFileURL
        self.scripts = scripts
        self.components = components
    }

    var componentArguments: [String] {
        components.flatMap { component in
            ["--component", "\(component.name)=\(component.command)"]
                + (component.port.map { ["--component-port", "\(component.name)=\($0)"] } ?? [])
        } + manifests.flatMap { ["--apply", $0.path] }
    }

    var descriptionFile: URL { stateDirectory.appendingPathComponent("cluster.env") }
    var readyMarker: URL { stateDirectory.appendingPathComponent("run/ready") }
    var failedMarker: URL { stateDirectory.appendingPathComponent("run/failed") }

    /// Starts the cluster in the background (`testenv.sh up`) or finds it already running.
    public func startDetached() async throws -> ClusterDescription {
        let result = try await runScript(scripts.testenv, ["up", "--dir", stateDirectory.path] + componentArguments)
        guard result.succeeded else {
            throw SandboxError(.scriptFailed, "testenv.sh up failed:\n\(result.standardError)")
        }
        return try ClusterDescription(contentsOf: descriptionFile)
    }

    /// Stops a cluster started with ``startDetached()``; succeeds when none is running.
    public func stop() async throws {
        let result = try await runScript(scripts.testenv, ["down", "--dir", stateDirectory.path])
        guard result.succeeded else {
            throw SandboxError(.scriptFailed, "testenv.sh down failed:\n\(result.standardError)")
        }
    }

    /// The script's status report, and whether the cluster is ready.
    public func status() async throws -> (ready: Bool, report: String) {
        let result = try await runScript(scripts.testenv, ["status", "--dir", stateDirectory.path])
        return (result.succeeded, result.standardOutput + result.standardError)
    }

    /// Starts the cluster's supervisor as a child of this process and waits until it is ready.
    public func startSupervised(
        owner: Int32 = getpid(),
        readyTimeout: Duration = .seconds(900),
        output: FileHandle? = nil
    ) async throws -> SupervisedCluster {
        try? FileManager.default.removeItem(at: readyMarker)
        try FileManager.default.createDirectory(at: stateDirectory, withIntermediateDirectories: true)
        let logFile = stateDirectory.appendingPathComponent("supervisor.log")
        guard FileManager.default.createFile(atPath: logFile.path, contents: nil) else {
            throw SandboxError(.scriptFailed, "cannot create \(logFile.path)")
        }
        let log = try FileHandle(forWritingTo: logFile)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments =
            [scripts.testenv.path, "run", "--dir", stateDirectory.path, "--owner-pid", "\(owner)"] + componentArguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = output ?? log
        process.standardError = output ?? log
        let exit = ProcessExitMonitor(process)
        try process.runWithDefaultSignalMask()
        let supervised = SupervisedCluster(process: process, exit: exit, stateDirectory: stateDirectory)

        let clock = ContinuousClock()
        let deadline = clock.now + readyTimeout
        while !FileManager.default.fileExists(atPath: readyMarker.path) {
            if exit.exitStatus != nil {
                let tail = (try? String(contentsOf: logFile, encoding: .utf8))?.split(separator: "\n").suffix(15)
                throw SandboxError(
                    .scriptFailed,
                    "the test cluster failed to start (log: \(logFile.path)):\n"
                        + (tail?.joined(separator: "\n") ?? ""))
            }
            if clock.now > deadline {
                supervised.stop()
                throw SandboxError(.startTimedOut, "the test cluster was not ready within \(readyTimeout)")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        supervised.description = try ClusterDescription(contentsOf: descriptionFile)
        return supervised
    }

    private func runScript(_ script: URL, _ arguments: [String]) async throws -> ProcessResult {
        try await ProcessRunner.run(URL(fileURLWithPath: "/bin/bash"), arguments: [script.path] + arguments)
    }
}

/// A cluster whose supervisor is a child of this process.
public final class SupervisedCluster: @unchecked Sendable {
    // Written once before the object is handed out; `process` is only signalled afterwards.
    public internal(set) var description: ClusterDescription?
    public let stateDirectory: URL
    private let process: Process
    private let exit: ProcessExitMonitor

    init(process: Process, exit: ProcessExitMonitor, stateDirectory: URL) {
        self.process = process
        self.exit = exit
        self.stateDirectory = stateDirectory
    }

    public var processIdentifier: Int32 { process.processIdentifier }
    public var isRunning: Bool { exit.exitStatus == nil }

    /// How long the supervisor gets to stop everything before its whole process group is killed.
    /// It gives each component up to 10 s itself, so this is only reached when it cannot act
    /// on the signal at all.
    public static let stopGracePeriod: Duration = .seconds(90)

    /// Stops the cluster and waits for the supervisor, which stops and reaps everything it started.
    public func stop() {
        process.stop(exit: exit, grace: Self.stopGracePeriod)
    }

    /// Waits until the supervisor exits (it was stopped, or a component died).
    public func exitStatus() async -> Int32 {
        await exit.wait()
    }
}
