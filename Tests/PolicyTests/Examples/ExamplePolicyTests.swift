import Foundation
import Policy
import Testing

/// The example policies shipped in manifests/ are loaded and run against their test cases here,
/// so they cannot rot.
@Suite("Example policies in manifests/")
struct ExamplePolicyTests {
    static let root = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath().deletingLastPathComponent()
        .deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    @Test("every example policy lints clean")
    func lintClean() {
        let (count, errors) = PolicyLinter.lint(paths: [
            Self.root.appendingPathComponent("manifests/policies/examples").path
        ])
        #expect(errors.isEmpty, "\(errors.map(\.description).joined(separator: "\n"))")
        #expect(count == 8)
    }

    @Test("every example test case passes")
    func casesPass() throws {
        let files = PolicyTestSuite.discover(Self.root.appendingPathComponent("manifests/policies/tests").path)
        #expect(!files.isEmpty)
        var total = 0
        for file in files {
            let results = try PolicyTestSuite.load(file).run()
            #expect(!results.isEmpty, "\(file) has no cases")
            total += results.count
            for result in results where !result.passed {
                Issue.record("\(result.testCase.name): \(result.mismatches.joined(separator: "; "))")
            }
        }
        #expect(total >= 30)
    }
}
