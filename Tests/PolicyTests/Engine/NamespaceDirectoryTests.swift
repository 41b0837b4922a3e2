import Policy
import Testing

@Suite("Namespace labels from a directory")
struct NamespaceDirectoryTests {
    typealias Base = PolicyEngineTests

    static func engine(_ directory: NamespaceDirectory) throws -> PolicyEngine {
        let policies = try PolicyLoader.parse(
            Base.policy(
                "p", match: "{namespaceSelector: {matchLabels: {env: prod}}}",
                rules: "      - {name: r, action: Deny, message: production}"),
            file: "p.yaml")
        return PolicyEngine(policies: try PolicyCompiler.compile(policies), options: .init(namespaces: directory))
    }

    @Test("the engine looks up the request's namespace: labels select, changes apply at once, unknown fails closed")
    func selectsByDirectoryLabels() throws {
        let directory = NamespaceDirectory()
        let engine = try Self.engine(directory)
        let request = Base.exec("ls", namespace: "prod")
        // Unknown to the directory: the selector cannot be checked, so the policy errs (Fail).
        #expect(engine.evaluate(request).results.first?.status == .error)

        directory.replaceAll(["prod": ["env": "prod"], "dev": ["env": "dev"]])
        #expect(engine.evaluate(request).outcome == .deny)
        #expect(engine.evaluate(Base.exec("ls", namespace: "dev")).results.isEmpty)

        directory.set("prod", labels: ["env": "staging"])
        #expect(engine.evaluate(request).results.isEmpty, "a relabelled namespace no longer matches")
        directory.remove("prod")
        #expect(engine.evaluate(request).results.first?.status == .error)
    }

    @Test("labels a request carries (an admission review's) win over the directory")
    func carriedLabelsWin() throws {
        let directory = NamespaceDirectory()
        directory.replaceAll(["prod": ["env": "dev"]])
        var request = Base.exec("ls", namespace: "prod")
        request.namespaceLabels = ["env": "prod"]
        #expect(try Self.engine(directory).evaluate(request).outcome == .deny)
    }

    @Test("a store keeps the directory across policy replacements")
    func survivesReplacement() throws {
        let directory = NamespaceDirectory()
        directory.replaceAll(["prod": ["env": "prod"]])
        let store = PolicyStore(try Self.engine(directory))
        try store.replace(
            with: try PolicyLoader.parse(Base.policy("q", rules: "      - {name: r, action: Allow}"), file: "q"))
        #expect(store.engine.options.namespaces === directory)
    }
}
