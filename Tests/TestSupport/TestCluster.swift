import Foundation
import Sandbox

#if canImport(Glibc)
    import Glibc
#endif

/// The one test cluster shared by every integration test in this process.
///
/// The first caller starts it (or attaches to the one named by `PORTCULLIS_TEST_CLUSTER`, a state
/// directory whose cluster is already running); later callers get the same description. The
/// cluster's supervisor is a child of the test process and watches it, so the cluster stops when
/// the tests end, however they end. A cluster that cannot start fails the test loudly.
public enum TestCluster {
    public static func shared() async throws -> ClusterDescription {
        try await Shared.instance.description()
    }

    /// The checkout's `scripts/testenv`.
    public static func scripts() throws -> TestEnvironmentScripts {
        try TestEnvironmentScripts.locate(currentDirectory: Paths.packageRoot)
    }

    private actor Shared {
        static let instance = Shared()
        private var starting: Task<ClusterDescription, any Error>?

        func description() async throws -> ClusterDescription {
            if let starting { return try await starting.value }
            let task = Task { try await Self.start() }
            starting = task
            return try await task.value
        }

        private static func start() async throws -> ClusterDescription {
            if let existing = ProcessInfo.processInfo.environment["PORTCULLIS_TEST_CLUSTER"] {
                return try ClusterDescription(
                    contentsOf: URL(fileURLWithPath: existing).appendingPathComponent("cluster.env"))
            }
            let directory = Paths.scratchRoot.appendingPathComponent("cluster-\(getpid())")
            let cluster = LocalCluster(stateDirectory: directory, scripts: try TestCluster.scripts())
            let supervised = try await cluster.startSupervised()
            ShutdownHook.register(supervised)
            guard let description = supervised.description else {
                throw SandboxError(.notRunning, "the test cluster started without a description")
            }
            return description
        }
    }
}

/// Stops the supervised cluster when the test process exits normally; the supervisor's owner
/// watch covers abnormal exits.
private enum ShutdownHook {
    nonisolated(unsafe) private static var cluster: SupervisedCluster?

    static func register(_ supervised: SupervisedCluster) {
        cluster = supervised
        atexit {
            ShutdownHook.cluster?.stop()
        }
    }
}
