import Foundation
import Yams

/// Policy test cases written as YAML, run with `portcullis policy test DIR` (like `kyverno test`):
/// a `PolicyTest` names policy files and, per case, a request and the decision expected for it.
///
/// ```yaml
/// apiVersion: portcullis.dev/v1alpha1
/// kind: PolicyTest
/// metadata: {name: exec-guardrails}
/// policies: [../../examples/exec-guardrails.yaml]   # relative to this file
/// defaultOutcome: Allow
/// cases:
/// - name: rm -rf is blocked in prod
///   request:
///     user: {name: alice, groups: [developers]}
///     verb: create
///     resource: pods/exec                # resource[.group][/subresource]
///     namespace: prod
///     exec: {command: [sh], line: "rm -rf /"}
///   expect: {outcome: Deny, rule: exec-guardrails/no-recursive-delete}
/// ```
public struct PolicyTestSuite: Sendable {
    public var name: String
    public var file: String
    public var policyPaths: [String]
    public var defaultOutcome: Decision.Outcome
    public var cases: [Case]

    public struct Case: Sendable {
        public var name: String
        public var location: SourceLocation
        public var request: RequestAttributes
        public var expectation: Expectation
    }

    /// What a case expects; only the given parts are checked.
    public struct Expectation: Sendable, Hashable {
        public var outcome: Decision.Outcome
        /// `policy/rule` that must decide.
        public var rule: String?
        public var messageContains: String?
        /// Substrings every one of which some warning must contain.
        public var warnings: [String]?
        /// `policy/rule` of every mask that must apply, in order.
        public var masks: [String]?
    }

    /// The file name test suites use inside a directory.
    public static let fileName = "portcullis-test.yaml"

    /// Finds `portcullis-test.yaml` files under `directory` (or takes the file itself).
    public static func discover(_ path: String) -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return [] }
        guard isDirectory.boolValue else { return [path] }
        let found = FileManager.default.enumerator(atPath: path)?.compactMap { $0 as? String } ?? []
        return found.filter { URL(fileURLWithPath: $0).lastPathComponent == fileName }.sorted()
            .map { URL(fileURLWithPath: path).appendingPathComponent($0).path }
    }

    /// Reads a suite file strictly (unknown keys are errors, as in policies).
    public static func load(_ file: String) throws(PolicyLoadErrors) -> PolicyTestSuite {
        let start = SourceLocation(file: file, line: 1, column: 1)
        guard let data = FileManager.default.contents(atPath: file), let text = String(data: data, encoding: .utf8)
        else {
            throw PolicyLoadErrors([PolicyLoadError(.unreadableFile, at: start, "cannot read the test file")])
        }
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw PolicyLoadErrors([PolicyLoadError(.invalidValue, at: start, "the test file is empty")])
            }
            root = node
        } catch let errors as PolicyLoadErrors {
            throw errors
        } catch {
            throw PolicyLoadErrors([PolicyLoadError(.yamlSyntax, at: start, "YAML syntax: \(error)")])
        }
        var errors: [PolicyLoadError] = []
        let reader = YAMLNodeReader(file: file, node: root, path: "", text: text)
        let suite = decode(reader, errors: &errors)
        guard errors.isEmpty, let suite else { throw PolicyLoadErrors(errors) }
        return suite
    }

    static func decode(_ reader: YAMLNodeReader, errors: inout [PolicyLoadError]) -> PolicyTestSuite? {
        guard
            let map = reader.mapping(
                allowed: ["apiVersion", "kind", "metadata", "policies", "defaultOutcome", "cases"], errors: &errors)
        else { return nil }
        if let kind = map.required("kind", errors: &errors), let text = kind.string(errors: &errors),
            text != "PolicyTest"
        {
            errors.append(kind.error(.invalidValue, "kind \"\(text)\" is not PolicyTest"))
        }
        let name =
            map.value("metadata")?.mapping(allowed: ["name"], errors: &errors)?.string("name", errors: &errors)
            ?? URL(fileURLWithPath: reader.file).deletingLastPathComponent().lastPathComponent
        let base = URL(fileURLWithPath: reader.file).deletingLastPathComponent()
        let policies = (map.required("policies", errors: &errors)?.strings(errors: &errors) ?? []).map {
            $0.value.hasPrefix("/") ? $0.value : base.appendingPathComponent($0.value).standardizedFileURL.path
        }
        var defaultOutcome = Decision.Outcome.allow
        if let node = map.value("defaultOutcome"), let text = node.string(errors: &errors) {
            if let outcome = Decision.Outcome(rawValue: text) {
                defaultOutcome = outcome
            } else {
                errors.append(node.enumError("defaultOutcome", text, ["Allow", "Deny", "Review"]))
            }
        }
        let cases = (map.required("cases", errors: &errors)?.sequence(errors: &errors) ?? []).compactMap {
            decodeCase($0, errors: &errors)
        }
        return PolicyTestSuite(
            name: name, file: reader.file, policyPaths: policies, defaultOutcome: defaultOutcome, cases: cases)
    }

    private static func decodeCase(_ reader: YAMLNodeReader, errors: inout [PolicyLoadError]) -> Case? {
        guard let map = reader.mapping(allowed: ["name", "request", "expect"], errors: &errors),
            let name = map.required("name", errors: &errors)?.string(errors: &errors),
            let requestNode = map.required("request", errors: &errors),
            let request = decodeRequest(requestNode, errors: &errors),
            let expectNode = map.required("expect", errors: &errors),
            let expect = expectNode.mapping(
                allowed: ["outcome", "rule", "messageContains", "warnings", "masks"], errors: &errors),
            let outcomeNode = expect.required("outcome", errors: &errors),
            let outcomeText = outcomeNode.string(errors: &errors)
        else { return nil }
        guard let outcome = Decision.Outcome(rawValue: outcomeText) else {
            errors.append(outcomeNode.enumError("outcome", outcomeText, ["Allow", "Deny", "Review"]))
            return nil
        }
        let expectation = Expectation(
            outcome: outcome, rule: expect.string("rule", errors: &errors),
            messageContains: expect.string("messageContains", errors: &errors),
            warnings: expect.value("warnings")?.strings(errors: &errors)?.map(\.value),
            masks: expect.value("masks")?.strings(errors: &errors)?.map(\.value))
        return Case(name: name, location: reader.location, request: request, expectation: expectation)
    }

    private static func decodeRequest(_ reader: YAMLNodeReader, errors: inout [PolicyLoadError]) -> RequestAttributes? {
        guard
            let map = reader.mapping(
                allowed: [
                    "user", "verb", "operation", "resource", "version", "namespace", "name", "source",
                    "namespaceLabels", "object", "oldObject", "exec", "portForward", "sql",
                ], errors: &errors)
        else { return nil }
        var user = RequestAttributes.UserInfo(name: "")
        if let userMap = map.required("user", errors: &errors)?.mapping(
            allowed: ["name", "uid", "groups"], errors: &errors)
        {
            user.name = userMap.required("name", errors: &errors)?.string(errors: &errors) ?? ""
            user.uid = userMap.string("uid", errors: &errors) ?? ""
            user.groups = userMap.value("groups")?.strings(errors: &errors)?.map(\.value) ?? []
        }
        guard let resourceNode = map.required("resource", errors: &errors),
            let resourceText = resourceNode.string(errors: &errors)
        else { return nil }
        // resource[.group][/subresource], as in policies.
        let (main, subresource) = resourceText.splitOnce("/")
        let (resource, group) = main.splitOnce(".")
        var request = RequestAttributes(
            user: user, verb: map.required("verb", errors: &errors)?.string(errors: &errors) ?? "", group: group,
            version: map.string("version", errors: &errors) ?? "v1", resource: resource, subresource: subresource,
            namespace: map.string("namespace", errors: &errors) ?? "", name: map.string("name", errors: &errors) ?? "")
        if let node = map.value("operation"), let text = node.string(errors: &errors) {
            request.operation = AccessPolicy.Operation(rawValue: text)
            if request.operation == nil {
                errors.append(node.enumError("operation", text, AccessPolicy.Operation.allCases.map(\.rawValue)))
            }
        }
        if let node = map.value("source"), let text = node.string(errors: &errors) {
            request.source = RequestAttributes.Source(rawValue: text) ?? .proxy
        }
        if let node = map.value("namespaceLabels"), case .mapping(let labels) = node.node {
            request.namespaceLabels = Dictionary(
                labels.compactMap { key, value in key.string.flatMap { k in value.string.map { (k, $0) } } },
                uniquingKeysWith: { _, last in last })
        }
        request.object = map.value("object").map { CELValue(yaml: $0.node) }
        request.oldObject = map.value("oldObject").map { CELValue(yaml: $0.node) }
        if let exec = map.value("exec")?.mapping(
            allowed: ["command", "container", "tty", "stdin", "line"], errors: &errors)
        {
            request.exec = .init(
                command: exec.value("command")?.strings(errors: &errors)?.map(\.value) ?? [],
                container: exec.string("container", errors: &errors) ?? "",
                tty: exec.value("tty")?.node.bool ?? false, stdin: exec.value("stdin")?.node.bool ?? false,
                line: exec.string("line", errors: &errors) ?? "")
        }
        if let forward = map.value("portForward")?.mapping(allowed: ["port", "protocol"], errors: &errors) {
            request.portForward = .init(
                port: forward.value("port")?.node.int ?? 0,
                protocol: forward.string("protocol", errors: &errors) ?? "tcp")
        }
        if let sql = map.value("sql")?.mapping(allowed: ["statement", "command", "user", "database"], errors: &errors) {
            request.sql = .init(
                statement: sql.string("statement", errors: &errors) ?? "",
                command: sql.string("command", errors: &errors) ?? "",
                user: sql.string("user", errors: &errors) ?? "", database: sql.string("database", errors: &errors) ?? ""
            )
        }
        return request
    }

    /// One case's outcome.
    public struct CaseResult: Sendable {
        public var suite: String
        public var testCase: Case
        public var decision: Decision
        /// Empty when the case passed; otherwise what differed.
        public var mismatches: [String]
        public var passed: Bool { mismatches.isEmpty }
    }

    /// Loads the suite's policies and runs every case.
    public func run(now: Date = Date()) throws(PolicyLoadErrors) -> [CaseResult] {
        let engine = PolicyEngine(
            policies: try PolicyCompiler.compile(try PolicyLoader.load(paths: policyPaths)),
            options: .init(defaultOutcome: defaultOutcome))
        return cases.map { testCase in
            let decision = engine.evaluate(testCase.request, now: now)
            return CaseResult(
                suite: name, testCase: testCase, decision: decision,
                mismatches: testCase.expectation.mismatches(decision))
        }
    }
}

extension PolicyTestSuite.Expectation {
    func mismatches(_ decision: Decision) -> [String] {
        var problems: [String] = []
        if decision.outcome != outcome {
            problems.append("outcome \(decision.outcome.rawValue), expected \(outcome.rawValue)")
        }
        if let rule, decision.decidedBy?.description != rule {
            problems.append("decided by \(decision.decidedBy?.description ?? "no rule"), expected \(rule)")
        }
        if let messageContains, !decision.message.contains(messageContains) {
            problems.append("message \"\(decision.message)\" does not contain \"\(messageContains)\"")
        }
        for expected in warnings ?? [] where !decision.warnings.contains(where: { $0.contains(expected) }) {
            problems.append("no warning contains \"\(expected)\" (warnings: \(decision.warnings))")
        }
        if let masks, decision.masks.map(\.rule.description) != masks {
            problems.append("masks \(decision.masks.map(\.rule.description)), expected \(masks)")
        }
        return problems
    }
}

extension StringProtocol {
    /// The text before and after the first `separator` (empty when absent).
    fileprivate func splitOnce(_ separator: Character) -> (String, String) {
        guard let index = firstIndex(of: separator) else { return (String(self), "") }
        return (String(self[..<index]), String(self[self.index(after: index)...]))
    }
}
