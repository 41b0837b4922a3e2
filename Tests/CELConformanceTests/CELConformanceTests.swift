import Foundation
import Testing

/// Known failures that remain (each is counted as failed, not skipped):
/// see `ConformanceKnownFailures.knownFailures` for the list and the reason for each.
@Suite("CEL conformance (cel-spec simple tests)")
struct CELConformanceTests {
    /// The minimum share of non-skipped tests that must pass.
    static let requiredPassRate = 0.95

    @Test("the conformance data folder exists")
    func dataFolderExists() throws {
        let directory = ConformanceRunner.dataDirectory()
        #expect(directory != nil, "CEL conformance data not found; set CEL_CONFORMANCE_DIR")
    }

    @Test("at least 95% of the protobuf-free conformance tests pass")
    func conformance() throws {
        let directory = try #require(ConformanceRunner.dataDirectory(), "CEL conformance data folder is missing")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasSuffix(".textproto") }.sorted()
        try #require(!files.isEmpty, "no .textproto files in \(directory.path)")
        let runner = ConformanceRunner()
        var passed = 0
        var failed = 0
        var skipped = 0
        var skipReasons: [ConformanceRunner.SkipReason: Int] = [:]
        var failures: [String] = []
        for file in files {
            let result = try runner.run(file: directory.appendingPathComponent(file))
            passed += result.passed
            failed += result.failed.count
            skipped += result.skippedCount
            for (reason, count) in result.skipped { skipReasons[reason, default: 0] += count }
            print("\(file): \(result.passed) passed, \(result.failed.count) failed, \(result.skippedCount) skipped")
            for (name, reason) in result.failed {
                let known = ConformanceKnownFailures.knownFailures[name] != nil ? " [known]" : ""
                failures.append("  FAIL\(known) \(name): \(reason.prefix(300))")
            }
        }
        for failure in failures { print(failure) }
        for reason in ConformanceRunner.SkipReason.allCases {
            print("  skipped (\(reason.rawValue)): \(skipReasons[reason] ?? 0)")
        }
        let total = passed + failed
        let rate = total == 0 ? 0 : Double(passed) / Double(total)
        print(
            "CEL conformance: \(passed)/\(total) non-protobuf tests passed (\(String(format: "%.1f", rate * 100))%), \(skipped) skipped"
        )
        #expect(total > 0)
        #expect(rate >= Self.requiredPassRate, "conformance pass rate \(rate) is below \(Self.requiredPassRate)")
    }
}
