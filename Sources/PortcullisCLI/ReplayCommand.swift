import ArgumentParser
import Foundation
import KubeProxy

#if canImport(Glibc)
    import Glibc
#endif

struct ReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay", abstract: "Replay a recorded session.",
        discussion: """
            On a terminal the session plays in real time; otherwise (or with --cat) its output is \
            printed at once, as `asciinema cat` does. The recordings are asciicast v2 files, so \
            `asciinema play FILE` works too.
            """)

    @Argument(help: "The session: its id, a unique prefix of it, or a recording's path.")
    var session: String

    @OptionGroup var recordings: RecordingDirectoryOption

    @Flag(help: "Print the output at once instead of playing it.")
    var cat = false

    @Flag(help: "Also show the policy and exit markers, on standard error.")
    var markers = false

    @Option(help: "Playback speed (2 plays twice as fast).")
    var speed: Double = 1

    @Option(help: "The longest pause shown, in seconds.")
    var idleLimit: Double = 2

    func validate() throws {
        guard speed > 0, speed.isFinite else { throw ValidationError("--speed must be a positive number") }
        guard idleLimit >= 0 else { throw ValidationError("--idle-limit cannot be negative") }
    }

    func run() async throws {
        let recording: AsciicastRecording
        do {
            let path = try SessionCatalog(directory: recordings.resolved).resolve(session)
            recording = try AsciicastRecording(path: path)
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
        let schedule = ReplaySchedule(
            events: recording.events, speed: speed, maximumIdle: cat || isatty(STDOUT_FILENO) == 0 ? 0 : idleLimit)
        for step in schedule.steps {
            if step.delay > 0 { try await Task.sleep(for: .seconds(step.delay)) }
            if let marker = step.marker {
                if markers { FileHandle.standardError.write(Data("[portcullis] \(marker)\n".utf8)) }
            } else {
                FileHandle.standardOutput.write(Data(step.output.utf8))
            }
        }
        if recording.isTruncated {
            printError("note: the recording ends in the middle of an event (its writer stopped); shown up to there")
        }
    }
}
