import Foundation
import NIOCore
import SPDY
import Testing

@testable import KubeProxy

@Suite("Reading recordings back: sessions and replay")
struct SessionCatalogTests {
    static func directory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cat-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    static func header(user: String, pod: String, started: Date) -> AsciicastEncoder.Header {
        .init(
            width: 80, height: 24, timestamp: started, command: "sh", title: "t",
            portcullis: [
                "session": .string(""), "user": .string(user), "groups": .array([.string("dev")]),
                "namespace": .string("dev"), "pod": .string(pod), "container": .string("app"),
                "subresource": .string("exec"), "transport": .string("spdy"),
            ])
    }

    /// A recording written by the proxy's own recorder, so reader and writer are tested together.
    static func record(
        in directory: URL, id: String, user: String = "alice", pod: String = "web",
        started: Date = Date(timeIntervalSince1970: 1_800_000_000), output: [String] = ["hello "],
        end: String? = "exit 0"
    ) async throws -> String {
        var header = header(user: user, pod: pod, started: started)
        header.portcullis["session"] = .string(id)
        let recorder = try SessionRecorder(
            settings: .init(directory: directory.path), sessionID: id, header: header)
        await recorder.marker("policy: Allow by p/r")
        for chunk in output { await recorder.output(ByteBuffer(string: chunk), stream: .stdout) }
        if let end {
            await recorder.finish(marker: end)
        } else {
            await recorder.flush()  // an open session: its events so far are written behind it
        }
        return recorder.path
    }

    @Test("a recording reads back with its identity, its output byte for byte and its markers")
    func roundTrip() async throws {
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        // A character split across chunks and control bytes survive the trip.
        let path = try await Self.record(
            in: directory, id: "s-1", output: ["caf\u{00E9} \u{1B}[1m", "bold\r\n", "\u{2603}"])
        let recording = try AsciicastRecording(path: path)
        #expect(recording.header.session == "s-1")
        #expect(recording.header.user == "alice")
        #expect(recording.header.groups == ["dev"])
        #expect(recording.header.target == "dev/web/app")
        #expect(recording.header.timestamp == Date(timeIntervalSince1970: 1_800_000_000))
        #expect(recording.output == "caf\u{00E9} \u{1B}[1mbold\r\n\u{2603}")
        #expect(recording.markers == ["policy: Allow by p/r", "exit 0"])
        #expect(!recording.isTruncated)
    }

    @Test("a last line cut short is left out and reported; a bad line elsewhere names its line")
    func damagedFiles() throws {
        let header = #"{"version":2,"width":80,"height":24,"timestamp":1,"portcullis":{"session":"x"}}"#
        let cut = try AsciicastRecording(contents: Data((header + "\n[0.1,\"o\",\"ab\"]\n[0.2,\"o\",\"c").utf8))
        #expect(cut.isTruncated)
        #expect(cut.output == "ab")

        #expect(
            throws: AsciicastFormatError(line: 2, reason: "an event must be a JSON array [seconds, \"code\", \"data\"]")
        ) {
            try AsciicastRecording(contents: Data((header + "\n[0.1,\"o\"]\n[0.2,\"o\",\"c\"]\n").utf8))
        }
        // A complete final line that does not parse is damage, not a cut-off write.
        #expect(throws: AsciicastFormatError.self) {
            try AsciicastRecording(contents: Data((header + "\n[0.1,\"o\",\"a\"]\nnot json\n").utf8))
        }
        #expect(throws: AsciicastFormatError(line: 1, reason: "only asciicast version 2 is supported")) {
            try AsciicastRecording(contents: Data(#"{"version":1}"#.utf8))
        }
        #expect(throws: AsciicastFormatError(line: 1, reason: "the file is empty; a recording starts with its header"))
        {
            try AsciicastRecording(contents: Data())
        }
    }

    @Test("the catalog lists sessions oldest first with duration and outcome, and reports foreign files")
    func listing() async throws {
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        _ = try await Self.record(in: directory, id: "b", started: Date(timeIntervalSince1970: 1_800_000_100))
        _ = try await Self.record(
            in: directory, id: "a", user: "bob", started: Date(timeIntervalSince1970: 1_800_000_200), end: "exit 3")
        _ = try await Self.record(in: directory, id: "c", started: Date(timeIntervalSince1970: 1_800_000_000), end: nil)
        try Data("garbage".utf8).write(to: directory.appendingPathComponent("junk.cast"))
        try Data("ignored".utf8).write(to: directory.appendingPathComponent("notes.txt"))

        let (entries, unreadable) = try SessionCatalog(directory: directory.path).entries()
        #expect(entries.map(\.header.session) == ["c", "b", "a"])
        #expect(entries.map(\.outcome) == [nil, "exit 0", "exit 3"])
        #expect(entries.allSatisfy { $0.size > 0 && $0.duration >= 0 })
        #expect(unreadable.map { URL(fileURLWithPath: $0.path).lastPathComponent } == ["junk.cast"])
    }

    @Test("a recording larger than the tail window still shows its outcome and duration")
    func largeRecording() async throws {
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let chunk = String(repeating: "x", count: 10_000)
        let path = try await Self.record(
            in: directory, id: "big", output: Array(repeating: chunk, count: 40), end: "error: upstream lost")
        let entry = try SessionCatalog.entry(path: path)
        #expect(entry.size > SessionCatalog.tailLength * 5)
        #expect(entry.outcome == "error: upstream lost")
        #expect(entry.header.session == "big")
        #expect(entry.duration == (try AsciicastRecording(path: path).duration))
    }

    @Test("filters select by user, namespace, pod (with a prefix) and start time")
    func filters() {
        let data = Data(
            #"{"version":2,"width":80,"height":24,"timestamp":1800000000,"portcullis":{"user":"alice","namespace":"dev","pod":"web-7f"}}"#
                .utf8)
        let header = try? SessionRecordingHeader(line: data, lineNumber: 1)
        guard let header else {
            Issue.record("the header did not parse")
            return
        }
        #expect(SessionFilter().matches(header))
        #expect(SessionFilter(user: "alice", namespace: "dev", pod: "web-*").matches(header))
        #expect(!SessionFilter(user: "bob").matches(header))
        #expect(!SessionFilter(namespace: "prod").matches(header))
        #expect(!SessionFilter(pod: "web").matches(header))
        #expect(SessionFilter(pod: "web-7f").matches(header))
        #expect(SessionFilter(since: Date(timeIntervalSince1970: 1_799_999_999)).matches(header))
        #expect(!SessionFilter(since: Date(timeIntervalSince1970: 1_800_000_001)).matches(header))
        #expect(!SessionFilter(until: Date(timeIntervalSince1970: 1_799_999_999)).matches(header))
    }

    @Test("times are durations back from now or RFC 3339; anything else is refused")
    func times() {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        #expect(SessionFilter.time("30m", now: now) == now.addingTimeInterval(-1800))
        #expect(SessionFilter.time("2h", now: now) == now.addingTimeInterval(-7200))
        #expect(SessionFilter.time("7d", now: now) == now.addingTimeInterval(-7 * 86400))
        #expect(SessionFilter.time("2027-01-15T06:00:00Z") == Date(timeIntervalSince1970: 1_799_992_800))
        #expect(SessionFilter.time("2027-01-15T06:00:00.500Z") == Date(timeIntervalSince1970: 1_799_992_800.5))
        #expect(SessionFilter.time("yesterday") == nil)
        #expect(SessionFilter.time("-3h") == nil)
        #expect(SessionFilter.time("5w") == nil)
    }

    @Test("a session is named by id, unique prefix or path; unknown and ambiguous names are explained")
    func lookup() async throws {
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let first = try await Self.record(in: directory, id: "7a1-one")
        _ = try await Self.record(in: directory, id: "7a2-two")
        let catalog = SessionCatalog(directory: directory.path)
        #expect(try catalog.resolve("7a1-one") == first)
        #expect(try catalog.resolve("7a1") == first)
        #expect(try catalog.resolve(first) == first)
        #expect(throws: SessionLookupError.ambiguous("7a", candidates: ["7a1-one", "7a2-two"])) {
            try catalog.resolve("7a")
        }
        #expect(throws: SessionLookupError.notFound("zz", directory: directory.path)) { try catalog.resolve("zz") }
    }

    @Test("playback keeps the recorded gaps, divided by the speed and cut at the idle limit")
    func schedule() {
        let events: [AsciicastRecording.Event] = [
            .init(time: 0.5, code: "m", data: "policy: Allow"), .init(time: 1, code: "o", data: "a"),
            .init(time: 1.5, code: "i", data: "typed"), .init(time: 2, code: "r", data: "100x30"),
            .init(time: 31, code: "o", data: "b"), .init(time: 32, code: "m", data: "exit 0"),
        ]
        let real = ReplaySchedule(events: events)
        #expect(real.steps.map(\.delay) == [0.5, 0.5, 30, 1])
        #expect(real.steps.map(\.output) == ["", "a", "b", ""])
        #expect(real.steps.map(\.marker) == ["policy: Allow", nil, nil, "exit 0"])
        let fast = ReplaySchedule(events: events, speed: 2, maximumIdle: 2)
        #expect(fast.steps.map(\.delay) == [0.25, 0.25, 2, 0.5])
        #expect(fast.duration == 3)
        #expect(ReplaySchedule(events: events, maximumIdle: 0).duration == 0)
    }
}
