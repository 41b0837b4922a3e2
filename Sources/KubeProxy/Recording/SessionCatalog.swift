import Foundation

/// The recordings in a directory, summarized for `portcullis sessions` without reading them whole:
/// a recording of `head -c 512M` is as large as its output, but its header is the first line and its
/// outcome the last marker.
public struct SessionCatalog: Sendable {
    /// One recording as listed.
    public struct Entry: Sendable, Equatable {
        public var path: String
        public var header: SessionRecordingHeader
        /// Seconds from the start to the last complete event.
        public var duration: Double
        /// The final marker (`exit 0`, `exit 3`, `error: …`), or nil while the session runs or when
        /// the writer stopped before writing it.
        public var outcome: String?
        public var size: Int
    }

    /// How much of a file's end is read to find its outcome: the final marker is one short line.
    static let tailLength = 64 * 1024
    /// A header is one line of a few hundred bytes; anything past this is not one of ours.
    static let maximumHeaderLength = 1024 * 1024

    public let directory: String

    public init(directory: String) {
        self.directory = directory
    }

    /// Every readable recording, oldest first; files that are not recordings are reported apart so
    /// a listing never hides them.
    public func entries() throws -> (entries: [Entry], unreadable: [(path: String, error: String)]) {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory)
        var entries: [Entry] = []
        var unreadable: [(String, String)] = []
        for name in names.sorted() where name.hasSuffix(".cast") {
            let path = URL(fileURLWithPath: directory).appendingPathComponent(name).path
            do {
                entries.append(try Self.entry(path: path))
            } catch {
                unreadable.append((path, "\(error)"))
            }
        }
        entries.sort { ($0.header.timestamp, $0.header.session) < ($1.header.timestamp, $1.header.session) }
        return (entries, unreadable)
    }

    /// The recording a user named: a path, a session id, or a prefix of one that is unique.
    public func resolve(_ name: String) throws(SessionLookupError) -> String {
        if name.contains("/") || name.hasSuffix(".cast") {
            guard FileManager.default.fileExists(atPath: name) else { throw .notFound(name, directory: directory) }
            return name
        }
        let exact = URL(fileURLWithPath: directory).appendingPathComponent("\(name).cast").path
        if FileManager.default.fileExists(atPath: exact) { return exact }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        let matches = names.filter { $0.hasPrefix(name) && $0.hasSuffix(".cast") }.sorted()
        switch matches.count {
        case 0: throw .notFound(name, directory: directory)
        case 1: return URL(fileURLWithPath: directory).appendingPathComponent(matches[0]).path
        default: throw .ambiguous(name, candidates: matches.map { String($0.dropLast(".cast".count)) })
        }
    }

    static func entry(path: String) throws -> Entry {
        guard let file = FileHandle(forReadingAtPath: path) else {
            throw AsciicastFormatError(line: 0, reason: "cannot open \(path)")
        }
        defer { try? file.close() }
        let size = Int(try file.seekToEnd())
        try file.seek(toOffset: 0)
        let head = try file.read(upToCount: min(size, maximumHeaderLength)) ?? Data()
        guard let newline = head.firstIndex(of: UInt8(ascii: "\n")) else {
            throw AsciicastFormatError(line: 1, reason: "no complete header line")
        }
        let header = try SessionRecordingHeader(line: head[..<newline], lineNumber: 1)
        let tailStart = max(newline + 1, size - tailLength)
        try file.seek(toOffset: UInt64(tailStart))
        let tail = try file.readToEnd() ?? Data()
        let (duration, outcome) = lastEvents(tail, startsAtLineBoundary: tailStart == newline + 1)
        return Entry(path: path, header: header, duration: duration, outcome: outcome, size: size)
    }

    /// The time of the last complete event and the final marker, from the end of a file.
    static func lastEvents(_ tail: Data, startsAtLineBoundary: Bool) -> (duration: Double, outcome: String?) {
        var lines = tail.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true)
        if !startsAtLineBoundary, !lines.isEmpty { lines.removeFirst() }  // the cut-off end of a line
        var duration: Double?
        for line in lines.reversed() {
            guard let event = try? AsciicastRecording.event(Data(line), lineNumber: 0) else { continue }
            if duration == nil { duration = event.time }
            if event.code == "m" {
                let isFinal = event.data.hasPrefix("exit ") || event.data.hasPrefix("error: ")
                return (duration ?? event.time, isFinal ? event.data : nil)
            }
            // Only markers after the last output can be the final one.
            return (duration ?? event.time, nil)
        }
        return (duration ?? 0, nil)
    }
}

/// Which sessions a listing shows; every field left nil matches everything.
public struct SessionFilter: Sendable, Equatable {
    public var user: String?
    public var namespace: String?
    /// A pod name, or a prefix of one ending in `*` (`web-*`).
    public var pod: String?
    public var since: Date?
    public var until: Date?

    public init(
        user: String? = nil, namespace: String? = nil, pod: String? = nil, since: Date? = nil, until: Date? = nil
    ) {
        self.user = user
        self.namespace = namespace
        self.pod = pod
        self.since = since
        self.until = until
    }

    public func matches(_ header: SessionRecordingHeader) -> Bool {
        if let user, header.user != user { return false }
        if let namespace, header.namespace != namespace { return false }
        if let pod {
            if pod.hasSuffix("*") {
                if !header.pod.hasPrefix(pod.dropLast()) { return false }
            } else if header.pod != pod {
                return false
            }
        }
        if let since, header.timestamp < since { return false }
        if let until, header.timestamp > until { return false }
        return true
    }

    /// `30m`, `2h`, `7d` back from `now`, or an RFC 3339 time.
    public static func time(_ text: String, now: Date = Date()) -> Date? {
        if let unit = text.last, let amount = Double(text.dropLast()), amount >= 0 {
            let seconds: Double? =
                switch unit {
                case "s": 1
                case "m": 60
                case "h": 3600
                case "d": 86400
                default: nil
                }
            if let seconds { return now.addingTimeInterval(-amount * seconds) }
        }
        let formatter = ISO8601DateFormatter()
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text)
    }
}

/// A session name that names no recording, or several.
public enum SessionLookupError: Error, Sendable, Equatable, CustomStringConvertible {
    case notFound(String, directory: String)
    case ambiguous(String, candidates: [String])

    public var description: String {
        switch self {
        case .notFound(let name, let directory):
            "no recording named \(name) in \(directory) (list them with `portcullis sessions`)"
        case .ambiguous(let name, let candidates):
            "\(name) names several recordings: \(candidates.joined(separator: ", "))"
        }
    }
}
