import Foundation
import Sandbox

/// A real kubectl binary of a given minor version, run with its own scratch `HOME` (kubectl
/// caches discovery under `$HOME/.kube`, which must not leak between tests).
public struct Kubectl: Sendable, CustomStringConvertible {
    public let minor: String
    public let path: URL

    public var description: String { "kubectl \(minor)" }

    /// The versions every stream scenario is run with: the oldest and newest clients, plus the
    /// ones where the transports changed (1.30: WebSocket exec; 1.31+: port-forward tunnel).
    public static let baselineMinors = ["1.20", "1.27", "1.30", "1.33", "1.37"]

    /// Every kubectl on this machine, as listed by `scripts/testenv/kubectl-matrix.sh`.
    /// Stderr without client-go's own klog lines (`E1128 12:00:00.000000 123 file.go:1] …`): e.g.
    /// "Unknown stream id 1, discarding message" when a server's connected marker (protocols.md
    /// §4.2) beats the WebSocket client's stream registration, which real apiservers cause too.
    public static func withoutClientLog(_ text: String) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false)
            .filter { $0.firstMatch(of: /^[EWI]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ \S+\.go:\d+\]/) == nil }
            .joined(separator: "\n")
    }

    public static func all() throws -> [Kubectl] {
        try Matrix.shared.get()
    }

    /// The kubectl of one minor version; a missing one is an error, never a skipped test.
    public static func named(_ minor: String) throws -> Kubectl {
        let available = try all()
        guard let kubectl = available.first(where: { $0.minor == minor }) else {
            throw TestSupportError(
                "kubectl \(minor) is not installed; found \(available.map(\.minor)). "
                    + "Run scripts/testenv/build.sh deps (1.20, 1.37) or install the image's kubectl.1.x packages.")
        }
        return kubectl
    }

    /// How long one kubectl run may take before it is stopped and its test fails: far above the
    /// longest run a test makes (a 66-second session), so only a session that never ends hits it.
    public static let timeLimit: Duration = .seconds(150)

    /// Runs kubectl to completion; stopped (and an error thrown) past `timeLimit` or when the
    /// test is cancelled, so a session that never ends fails its test instead of hanging the run.
    public func run(
        _ arguments: [String],
        kubeconfig: URL,
        home: URL,
        environment: [String: String] = [:],
        standardInput: Data? = nil,
        timeLimit: Duration = Kubectl.timeLimit
    ) async throws -> ProcessResult {
        try await ProcessRunner.run(
            path, arguments: ["--kubeconfig", kubeconfig.path] + arguments,
            environment: Self.environment(home: home, extra: environment),
            standardInput: standardInput, timeLimit: timeLimit)
    }

    /// A clean environment: only what kubectl needs, so the developer's own settings cannot leak in.
    public static func environment(home: URL, extra: [String: String] = [:]) -> [String: String] {
        var environment = [
            "HOME": home.path,
            "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
            "LANG": "C.UTF-8",
        ]
        environment.merge(extra) { _, new in new }
        return environment
    }

    private final class Matrix: @unchecked Sendable {
        static let shared = Matrix()
        private let lock = NSLock()
        private var cached: [Kubectl]?

        func get() throws -> [Kubectl] {
            lock.lock()
            defer { lock.unlock() }
            if let cached { return cached }
            let scripts = try TestCluster.scripts()
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/bash")
            process.arguments = [scripts.kubectlMatrix.path]
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.runWithDefaultSignalMask()
            let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            let found = output.split(separator: "\n").compactMap { line -> Kubectl? in
                let fields = line.split(separator: " ", maxSplits: 1)
                guard fields.count == 2 else { return nil }
                return Kubectl(minor: String(fields[0]), path: URL(fileURLWithPath: String(fields[1])))
            }
            cached = found
            return found
        }
    }
}

/// A test-environment problem (a missing binary, a server that did not start), reported loudly.
public struct TestSupportError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
