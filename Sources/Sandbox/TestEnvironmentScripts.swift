import Foundation

/// The `scripts/testenv` folder of a Portcullis checkout, which knows how to build and run the
/// local cluster. The Swift side only drives it, so the same cluster is used by hand, by the
/// sandbox and by the tests.
public struct TestEnvironmentScripts: Sendable {
    public let directory: URL

    public init(directory: URL) {
        self.directory = directory
    }

    public var testenv: URL { directory.appendingPathComponent("testenv.sh") }
    public var build: URL { directory.appendingPathComponent("build.sh") }
    public var kubectlMatrix: URL { directory.appendingPathComponent("kubectl-matrix.sh") }

    /// Finds the scripts: `$PORTCULLIS_TESTENV_SCRIPTS`, else `scripts/testenv` in the current
    /// directory or one of its parents, else beside the running executable (`.build/debug/…`
    /// lives three levels below the checkout).
    public static func locate(
        environment: [String: String] = ProcessInfo.processInfo.environment,
        currentDirectory: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath),
        executable: URL? = Bundle.main.executableURL
    ) throws(SandboxError) -> TestEnvironmentScripts {
        if let explicit = environment["PORTCULLIS_TESTENV_SCRIPTS"] {
            let scripts = TestEnvironmentScripts(directory: URL(fileURLWithPath: explicit))
            guard scripts.isComplete else {
                throw SandboxError(.scriptsNotFound, "PORTCULLIS_TESTENV_SCRIPTS=\(explicit) has no testenv.sh")
            }
            return scripts
        }
        var starts = [currentDirectory]
        if let executable { starts.append(executable.resolvingSymlinksInPath().deletingLastPathComponent()) }
        for start in starts {
            var directory = start.standardizedFileURL
            while true {
                let scripts = TestEnvironmentScripts(
                    directory: directory.appendingPathComponent("scripts/testenv"))
                if scripts.isComplete { return scripts }
                let parent = directory.deletingLastPathComponent()
                if parent.path == directory.path { break }
                directory = parent
            }
        }
        throw SandboxError(
            .scriptsNotFound,
            "cannot find scripts/testenv: run from a Portcullis checkout or set PORTCULLIS_TESTENV_SCRIPTS")
    }

    private var isComplete: Bool {
        FileManager.default.fileExists(atPath: testenv.path) && FileManager.default.fileExists(atPath: build.path)
    }
}
