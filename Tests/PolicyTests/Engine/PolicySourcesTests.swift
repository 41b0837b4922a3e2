import Foundation
import Policy
import Testing

@Suite("Policies from files and from the cluster")
struct PolicySourcesTests {
    typealias Base = PolicyEngineTests

    static func parse(_ name: String, rules: String) throws -> [AccessPolicy] {
        try PolicyLoader.parse(Base.policy(name, rules: rules), file: "\(name).yaml")
    }

    static let deny = "      - {name: r, action: Deny, message: no}"

    static func names(_ store: PolicyStore) -> [String] { store.engine.policies.map(\.policy.name).sorted() }

    /// A directory holding one policy file, for reloads.
    static func directory(with policy: String) throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sources-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try policy.write(to: directory.appendingPathComponent("p.yaml"), atomically: true, encoding: .utf8)
        return directory
    }

    @Test("the cluster's objects join the files' policies, and a file reload keeps them")
    func unionSurvivesReload() throws {
        let directory = try Self.directory(with: Base.policy("from-file", rules: Self.deny))
        defer { try? FileManager.default.removeItem(at: directory) }
        let files = try PolicyLoader.load(paths: [directory.path])
        let store = PolicyStore(PolicyEngine(policies: try PolicyCompiler.compile(files)))
        let sources = PolicySources(store: store, files: files)

        try sources.replaceClusterPolicies(try Self.parse("from-cluster", rules: Self.deny))
        #expect(Self.names(store) == ["from-cluster", "from-file"])

        try Base.policy("renamed-file", rules: Self.deny).write(
            to: directory.appendingPathComponent("p.yaml"), atomically: true, encoding: .utf8)
        try sources.reloadFiles(paths: [directory.path])
        #expect(Self.names(store) == ["from-cluster", "renamed-file"])

        try sources.replaceClusterPolicies([])
        #expect(Self.names(store) == ["renamed-file"])
    }

    @Test("an object named like a file's policy is refused, and the previous set stays in force")
    func nameClashKeepsPreviousSet() throws {
        let files = try Self.parse("shared-name", rules: Self.deny)
        let store = PolicyStore(PolicyEngine(policies: try PolicyCompiler.compile(files)))
        let sources = PolicySources(store: store, files: files)
        try sources.replaceClusterPolicies(try Self.parse("first", rules: Self.deny))

        let error = #expect(throws: PolicyLoadErrors.self) {
            try sources.replaceClusterPolicies(try Self.parse("shared-name", rules: "      - {name: r, action: Allow}"))
        }
        #expect(error?.description.contains("duplicate AccessPolicy name \"shared-name\"") == true)
        #expect(Self.names(store) == ["first", "shared-name"])
        #expect(store.engine.evaluate(Base.exec("ls")).outcome == .deny)
    }

    @Test("an object that does not compile leaves the previous set, and a later good set applies")
    func brokenObjectKeepsPreviousSet() throws {
        let store = PolicyStore(PolicyEngine(policies: []))
        let sources = PolicySources(store: store, files: [])
        try sources.replaceClusterPolicies(try Self.parse("good", rules: Self.deny))
        let broken = try Self.parse(
            "broken", rules: "      - {name: r, action: Deny, expression: \"request.verb ==\", message: no}")
        #expect(throws: PolicyLoadErrors.self) { try sources.replaceClusterPolicies(broken) }
        #expect(Self.names(store) == ["good"])

        try sources.replaceClusterPolicies(try Self.parse("next", rules: "      - {name: r, action: Allow}"))
        #expect(Self.names(store) == ["next"])
        #expect(store.engine.evaluate(Base.exec("ls")).outcome == .allow)
    }
}
