import ArgumentParser
import Foundation
import Sandbox

#if canImport(Glibc)
    import Glibc
#endif

struct SandboxCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sandbox",
        abstract: "Run a local Kubernetes cluster with Portcullis in front of it.",
        discussion: """
            Starts etcd, kube-apiserver and a node agent on 127.0.0.1 and writes what you need to \
            .sandbox/ in the current directory. The first start builds kube-apiserver from Debian's \
            source package (about 8 minutes); later starts take seconds.
            """,
        subcommands: [Start.self, Down.self, Status.self],
        defaultSubcommand: Start.self
    )

    struct Options: ParsableArguments {
        @Option(help: "Where the sandbox keeps its files.")
        var directory: String = ".sandbox"

        func sandbox() throws -> PortcullisSandbox {
            PortcullisSandbox(
                directory: URL(fileURLWithPath: directory), scripts: try TestEnvironmentScripts.locate(),
                executable: try runningExecutable())
        }
    }

    struct Start: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "start", abstract: "Start the sandbox (the default).")

        @OptionGroup var options: Options

        @Flag(help: "Return once everything is ready; stop it later with `portcullis sandbox down`.")
        var detach = false

        func run() async throws {
            let sandbox = try options.sandbox()
            let (cluster, settings) = try await sandbox.prepare()
            if detach {
                let description = try await cluster.startDetached()
                try await sandbox.configure(for: description, settings: settings)
                print(sandbox.welcome(for: description, settings: settings, detached: true))
                return
            }
            try await runInForeground(sandbox, cluster: cluster, settings: settings)
        }

        /// Runs until SIGINT/SIGTERM, then stops everything it started.
        private func runInForeground(
            _ sandbox: PortcullisSandbox, cluster: LocalCluster, settings: SandboxSettings
        ) async throws {
            let stopSignals = SignalWaiter(signals: [SIGINT, SIGTERM])
            print("Starting the sandbox (logs: \(cluster.stateDirectory.path)/logs) ...")
            fflush(nil)
            let supervised = try await cluster.startSupervised()
            guard let description = supervised.description else { return }
            do {
                try await sandbox.configure(for: description, settings: settings)
            } catch {
                supervised.stop()
                throw error
            }
            print(sandbox.welcome(for: description, settings: settings, detached: false))
            fflush(nil)  // a pipe would otherwise hold the message until exit

            let supervisorExit = Task { await supervised.exitStatus() }
            let signal = await stopSignals.next(orUntil: supervisorExit)
            sandbox.removeFiles()
            if let signal {
                print("\nReceived signal \(signal); stopping the sandbox ...")
                supervised.stop()
                print("Stopped.")
            } else {
                let status = await supervisorExit.value
                throw SandboxError(
                    .scriptFailed,
                    "the sandbox stopped unexpectedly (exit \(status)); see \(sandbox.cluster.stateDirectory.path)/supervisor.log"
                )
            }
        }
    }

    struct Down: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "down", abstract: "Stop a sandbox started with --detach.")

        @OptionGroup var options: Options

        func run() async throws {
            let sandbox = try options.sandbox()
            try await sandbox.cluster.stop()
            sandbox.removeFiles()
            print("The sandbox is stopped.")
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "status", abstract: "Show whether the sandbox is running.")

        @OptionGroup var options: Options

        func run() async throws {
            let (ready, report) = try await options.sandbox().cluster.status()
            print(report, terminator: "")
            if !ready { throw ExitCode(3) }
        }
    }
}

/// The binary this process runs from, so the sandbox's proxy and webhook are the same build.
func runningExecutable() throws -> URL {
    let path =
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
        ?? Bundle.main.executablePath
    guard let path else { throw ValidationError("cannot tell where the portcullis binary is") }
    return URL(fileURLWithPath: path)
}
