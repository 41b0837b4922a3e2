import Foundation
import Policy
import Testing

/// Each file in Fixtures/broken holds one kind of mistake; its `.expected` file is the exact
/// error report, so a change in a position or message shows up in review. Regenerate with
/// `UPDATE_GOLDEN=1` and read the diff before committing.
@Suite("Broken policies are reported precisely")
struct BrokenPolicyTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/broken")

    static let fixtures: [String] = {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? [])
            .filter { $0.hasSuffix(".yaml") }.sorted()
    }()

    @Test("there are fixtures for at least ten kinds of mistake")
    func enoughFixtures() {
        #expect(Self.fixtures.count >= 10)
    }

    @Test("each broken policy gives its expected report", arguments: fixtures)
    func report(fixture: String) throws {
        let file = Self.directory.appendingPathComponent(fixture)
        let (_, errors) = PolicyLinter.lint(paths: [file.path])
        let report =
            errors.isEmpty
            ? "(no errors)"
            : errors.map(\.description).joined(separator: "\n").replacingOccurrences(
                of: Self.directory.path + "/", with: "")
        let expectedFile = file.deletingPathExtension().appendingPathExtension("expected")
        if ProcessInfo.processInfo.environment["UPDATE_GOLDEN"] == "1" {
            try (report + "\n").write(to: expectedFile, atomically: true, encoding: .utf8)
        }
        let expected = try String(contentsOf: expectedFile, encoding: .utf8)
        #expect(report + "\n" == expected)
    }
}
