import ArgumentParser
import Foundation
import KubeProxy

struct SessionsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sessions", abstract: "List recorded exec and attach sessions.",
        discussion: "Replay one with `portcullis replay SESSION` (an id prefix is enough).")

    @OptionGroup var recordings: RecordingDirectoryOption

    @Option(help: "Only sessions of this user.")
    var user: String?

    @Option(name: .shortAndLong, help: "Only sessions in this namespace.")
    var namespace: String?

    @Option(help: "Only sessions on this pod (a trailing * matches a prefix).")
    var pod: String?

    @Option(help: "Only sessions started since: 30m, 2h, 7d, or an RFC 3339 time.")
    var since: String?

    @Option(help: "Only sessions started until: 30m, 2h, 7d ago, or an RFC 3339 time.")
    var until: String?

    @Option(name: .shortAndLong, help: "Output format: table or json.")
    var output: OutputFormat = .table

    enum OutputFormat: String, ExpressibleByArgument {
        case table, json
    }

    func validate() throws {
        for (name, value) in [("--since", since), ("--until", until)] {
            if let value, SessionFilter.time(value) == nil {
                throw ValidationError("\(name) takes 30m, 2h, 7d or an RFC 3339 time, not \(value)")
            }
        }
    }

    func run() throws {
        let filter = SessionFilter(
            user: user, namespace: namespace, pod: pod, since: since.flatMap { SessionFilter.time($0) },
            until: until.flatMap { SessionFilter.time($0) })
        let catalog = SessionCatalog(directory: recordings.resolved)
        let listing: (entries: [SessionCatalog.Entry], unreadable: [(path: String, error: String)])
        do {
            listing = try catalog.entries()
        } catch {
            printError("error: cannot list \(recordings.resolved): \(error.localizedDescription)")
            throw ExitCode(1)
        }
        let shown = listing.entries.filter { filter.matches($0.header) }
        switch output {
        case .table: print(Self.table(shown), terminator: "")
        case .json: print(Self.json(shown))
        }
        for (path, error) in listing.unreadable {
            printError("warning: \(path) is not a readable recording: \(error)")
        }
    }

    static let timeFormat: Date.ISO8601FormatStyle = .iso8601.dateSeparator(.dash).timeSeparator(.colon)

    static func table(_ entries: [SessionCatalog.Entry]) -> String {
        let rows =
            [["SESSION", "STARTED", "DURATION", "USER", "KIND", "TARGET", "COMMAND", "RESULT"]]
            + entries.map { entry in
                [
                    entry.header.session, entry.header.timestamp.formatted(timeFormat),
                    String(format: "%.1fs", entry.duration), entry.header.user, entry.header.subresource,
                    entry.header.target, entry.header.command ?? "", entry.outcome ?? "incomplete",
                ]
            }
        let widths = (0..<rows[0].count).map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            zip(row, widths).enumerated().map { index, cell in
                index == row.count - 1 ? cell.0 : cell.0.padding(toLength: cell.1, withPad: " ", startingAt: 0)
            }.joined(separator: "  ") + "\n"
        }.joined()
    }

    static func json(_ entries: [SessionCatalog.Entry]) -> String {
        let objects: [[String: Any]] = entries.map { entry in
            var object: [String: Any] = [
                "session": entry.header.session, "path": entry.path,
                "started": entry.header.timestamp.formatted(timeFormat), "durationSeconds": entry.duration,
                "user": entry.header.user, "groups": entry.header.groups, "namespace": entry.header.namespace,
                "pod": entry.header.pod, "container": entry.header.container, "kind": entry.header.subresource,
                "transport": entry.header.transport, "bytes": entry.size,
            ]
            if let command = entry.header.command { object["command"] = command }
            if let outcome = entry.outcome { object["result"] = outcome }
            return object
        }
        let data =
            (try? JSONSerialization.data(withJSONObject: objects, options: [.prettyPrinted, .sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}
