import Testing

@testable import Policy

@Suite("Subject patterns")
struct SubjectPatternTests {
    @Test(
        "a serviceAccount subject matches system:serviceaccount:<namespace>:<name> and nothing else",
        arguments: [
            ("system:serviceaccount:ci:deployer", true),
            ("system:serviceaccount:ci:", true),
            ("system:serviceaccount:ci-prod:deployer", true),
            ("system:serviceaccount:prod:deployer", false),
            ("system:serviceaccount:ci", false),
            ("system:serviceaccount:ci:deployer:extra", false),
            ("system:serviceaccounts:ci:deployer", false),
            ("system:serviceaccount::deployer", false),
            ("alice", false),
            ("system:serviceaccount:ci\u{301}:deployer", true),
            ("system:serviceaccount:\u{301}ci:deployer", false),
        ])
    func serviceAccount(user: String, matches: Bool) throws {
        let subject = SubjectPattern.serviceAccount(namespace: try Glob("ci*"), name: try Glob("*"))
        #expect(subject.matches(user: user, groups: []) == matches)
    }

    @Test("user and group subjects match the name or any group by glob")
    func usersAndGroups() throws {
        #expect(SubjectPattern.user(try Glob("alice*")).matches(user: "alice@example.com", groups: []))
        #expect(!SubjectPattern.user(try Glob("alice*")).matches(user: "bob", groups: ["alice"]))
        #expect(SubjectPattern.group(try Glob("sre-*")).matches(user: "bob", groups: ["dev", "sre-oncall"]))
        #expect(!SubjectPattern.group(try Glob("sre-*")).matches(user: "sre-bob", groups: ["dev"]))
    }
}
