import Policy
import Testing

@Suite("Globs")
struct GlobTests {
    @Test(
        "match as a shell would",
        arguments: [
            ("prod-*", "prod-eu", true), ("prod-*", "prod-", true), ("prod-*", "staging", false),
            ("*", "", true), ("a?c", "abc", true), ("a?c", "ac", false), ("*-db-*", "eu-db-1", true),
            ("[a-c]x", "bx", true), ("[a-c]x", "dx", false), ("[!a-c]x", "dx", true), ("\\*", "*", true),
            ("\\*", "a", false), ("a*b*c", "aXbYbZc", true), ("a*b*c", "aXbYbZ", false), ("system:*", "system:x", true),
        ])
    func matching(pattern: String, name: String, expected: Bool) throws {
        #expect(try Glob(pattern).matches(name) == expected)
    }

    @Test("reject malformed patterns with the column", arguments: [("ab[cd", 3), ("x[]", 2), ("a\\", 2), ("[z-a]", 2)])
    func malformed(pattern: String, column: Int) {
        #expect {
            try Glob(pattern)
        } throws: { error in
            (error as? Glob.SyntaxError)?.column == column
        }
    }

    @Test("literal patterns expose their text for indexing")
    func literal() throws {
        #expect(try Glob("pods").literal == "pods")
        #expect(try Glob("p*").literal == nil)
        #expect(Glob.exactly("a*b").matches("a*b"))
        #expect(!Glob.exactly("a*b").matches("axb"))
    }
}

@Suite("Resource patterns")
struct ResourcePatternTests {
    @Test(
        "match group, resource and subresource like RBAC",
        arguments: [
            ("pods", "", "pods", "", true), ("pods", "", "pods", "exec", false),
            ("pods/exec", "", "pods", "exec", true),
            ("pods/*", "", "pods", "log", true), ("pods/*", "", "pods", "", false),
            ("deployments.apps", "apps", "deployments", "", true),
            ("deployments.apps", "", "deployments", "", false), ("*", "apps", "deployments", "", true),
            ("*", "", "pods", "exec", false),
            ("*/*", "", "pods", "exec", true), ("*.apps", "apps", "statefulsets", "", true),
            ("secrets", "", "secrets", "", true),
            ("ingresses.networking.k8s.io", "networking.k8s.io", "ingresses", "", true),
        ])
    func matching(pattern: String, group: String, resource: String, subresource: String, expected: Bool) throws {
        #expect(
            try ResourcePattern(pattern).matches(group: group, resource: resource, subresource: subresource) == expected
        )
    }

    @Test("a well-known resource without its group gets a hint")
    func missingGroupHint() {
        #expect {
            try ResourcePattern("deployments")
        } throws: { error in
            (error as? ResourcePattern.SyntaxError)?.hint == "write deployments.apps"
        }
    }

    @Test("upper case and empty parts are rejected", arguments: ["Pods", "pods/", ".apps", "pods//exec"])
    func invalid(pattern: String) {
        #expect(throws: ResourcePattern.SyntaxError.self) { try ResourcePattern(pattern) }
    }
}

@Suite("Field paths for masking")
struct FieldPathTests {
    @Test("parse keys, wildcards, indexes and quoted keys")
    func parse() throws {
        #expect(try FieldPath("data.*").segments == [.key("data"), .anyKey])
        #expect(
            try FieldPath("spec.containers[*].env[0].value").segments == [
                .key("spec"), .key("containers"), .anyElement, .key("env"), .element(0), .key("value"),
            ])
        #expect(
            try FieldPath("metadata.annotations['a.b/c']").segments == [
                .key("metadata"), .key("annotations"), .key("a.b/c"),
            ])
    }

    @Test("reject malformed paths", arguments: ["", "data.", ".data", "a..b", "a[x]", "a[*"])
    func malformed(path: String) {
        #expect(throws: FieldPath.SyntaxError.self) { try FieldPath(path) }
    }
}
