import ArgumentParser
import Foundation

/// Where `sessions` and `replay` look for recordings: the proxy's `recordings.directory`.
struct RecordingDirectoryOption: ParsableArguments {
    /// The sandbox's proxy records here, so the commands work there without options.
    static let sandboxDirectory = ".sandbox/recordings"

    @Option(
        name: .customLong("dir"),
        help: "The recordings directory (default: $PORTCULLIS_RECORDINGS, then \(sandboxDirectory)).")
    var directory: String?

    var resolved: String {
        directory ?? ProcessInfo.processInfo.environment["PORTCULLIS_RECORDINGS"] ?? Self.sandboxDirectory
    }
}
