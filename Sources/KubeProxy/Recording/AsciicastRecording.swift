import Foundation

/// A recorded session read back from its asciicast v2 file: the header, the identity the proxy
/// stored under `portcullis`, and the events in order.
///
/// A recording is appended event by event, so one cut short by a crash ends in a partial line:
/// that line is dropped and ``isTruncated`` says so, because everything before it is still a
/// faithful record. A malformed line anywhere else is an error naming its line number.
public struct AsciicastRecording: Sendable {
    public struct Event: Sendable, Equatable {
        /// Seconds since the session started.
        public var time: Double
        /// `o` output, `i` input, `r` resize, `m` marker.
        public var code: String
        public var data: String

        public init(time: Double, code: String, data: String) {
            self.time = time
            self.code = code
            self.data = data
        }
    }

    public var header: SessionRecordingHeader
    public var events: [Event]
    /// Whether the last line was incomplete (the writer stopped mid-event) and was left out.
    public var isTruncated: Bool

    /// Parses a whole recording.
    public init(contents: Data) throws(AsciicastFormatError) {
        var lines = contents.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        let endsWithNewline = contents.last == UInt8(ascii: "\n")
        if endsWithNewline { lines.removeLast() }
        guard let first = lines.first, !first.isEmpty else {
            throw AsciicastFormatError(line: 1, reason: "the file is empty; a recording starts with its header")
        }
        header = try SessionRecordingHeader(line: Data(first), lineNumber: 1)
        events = []
        isTruncated = false
        for (index, line) in lines.enumerated().dropFirst() {
            let isLast = index == lines.count - 1
            do {
                events.append(try Self.event(Data(line), lineNumber: index + 1))
            } catch {
                // Only the final line of a file without its newline can be a write cut short.
                guard isLast, !endsWithNewline else { throw error }
                isTruncated = true
            }
        }
    }

    /// Reads and parses the file at `path`.
    public init(path: String) throws(AsciicastFormatError) {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw AsciicastFormatError(line: 0, reason: "cannot read \(path): \(error.localizedDescription)")
        }
        try self.init(contents: data)
    }

    /// Everything the terminal received, in order: what `asciinema cat` prints.
    public var output: String {
        events.lazy.filter { $0.code == "o" }.map(\.data).joined()
    }

    /// The marker labels, in order (policy decisions, the exit status).
    public var markers: [String] {
        events.filter { $0.code == "m" }.map(\.data)
    }

    /// Seconds from the start to the last event.
    public var duration: Double { events.last?.time ?? 0 }

    /// Parses one event line, `[time, "code", "data"]`.
    static func event(_ line: Data, lineNumber: Int) throws(AsciicastFormatError) -> Event {
        guard let array = try? JSONSerialization.jsonObject(with: line) as? [Any], array.count == 3,
            let time = (array[0] as? NSNumber)?.doubleValue, time >= 0,
            let code = array[1] as? String, let data = array[2] as? String
        else {
            throw AsciicastFormatError(
                line: lineNumber, reason: "an event must be a JSON array [seconds, \"code\", \"data\"]")
        }
        return Event(time: time, code: code, data: data)
    }
}

/// The header of a recording: asciicast's own fields and what Portcullis adds under `portcullis`.
public struct SessionRecordingHeader: Sendable, Equatable {
    public var width: Int
    public var height: Int
    /// When the session started.
    public var timestamp: Date
    public var command: String?
    public var title: String?
    /// The proxy's session id (the audit id of the request that opened it).
    public var session: String
    public var user: String
    public var groups: [String]
    public var namespace: String
    public var pod: String
    public var container: String
    /// `exec`, `attach`, or what a later stream kind records.
    public var subresource: String
    public var transport: String

    init(line: Data, lineNumber: Int) throws(AsciicastFormatError) {
        guard let object = try? JSONSerialization.jsonObject(with: line) as? [String: Any] else {
            throw AsciicastFormatError(line: lineNumber, reason: "the header must be a JSON object")
        }
        guard (object["version"] as? NSNumber)?.intValue == 2 else {
            throw AsciicastFormatError(line: lineNumber, reason: "only asciicast version 2 is supported")
        }
        width = (object["width"] as? NSNumber)?.intValue ?? 80
        height = (object["height"] as? NSNumber)?.intValue ?? 24
        timestamp = Date(timeIntervalSince1970: (object["timestamp"] as? NSNumber)?.doubleValue ?? 0)
        command = object["command"] as? String
        title = object["title"] as? String
        let fields = object["portcullis"] as? [String: Any] ?? [:]
        session = fields["session"] as? String ?? ""
        user = fields["user"] as? String ?? ""
        groups = fields["groups"] as? [String] ?? []
        namespace = fields["namespace"] as? String ?? ""
        pod = fields["pod"] as? String ?? ""
        container = fields["container"] as? String ?? ""
        subresource = fields["subresource"] as? String ?? ""
        transport = fields["transport"] as? String ?? ""
    }

    /// `namespace/pod/container`, leaving out what is empty.
    public var target: String {
        [namespace, pod, container].filter { !$0.isEmpty }.joined(separator: "/")
    }
}

/// A recording that cannot be read, with the line at fault (0: the file itself).
public struct AsciicastFormatError: Error, Sendable, Equatable, CustomStringConvertible {
    public var line: Int
    public var reason: String

    public var description: String { line > 0 ? "line \(line): \(reason)" : reason }
}
