// Policy engine benchmark: 100 AccessPolicies with 300 rules (the shipped examples in
// manifests/policies/examples, the rest generated in their image) loaded from YAML through
// PolicyLoader and PolicyCompiler, evaluated against 100,000 generated requests; plus one compiled
// comparison against a hand-written closure. Run in release from the repository:
//   swift build -c release --product PolicyBenchmark && .build/release/PolicyBenchmark [--by-kind]
// Every evaluation is timed on its own with CLOCK_MONOTONIC. Allocations are counted by re-running
// this program under glibc's mtrace (libc_malloc_debug.so), which logs every malloc, realloc and
// free made between mtrace() and muntrace(). Inputs come from a fixed seed, so runs are comparable.
import Foundation
import Policy

// MARK: - Deterministic input

/// SplitMix64: a small, fixed-seed generator, so every run sees the same policies and requests.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Draws the benchmark's policies and requests from one seeded generator.
struct InputGenerator {
    var random = SeededGenerator(state: 0x5EED_2026)

    mutating func pick<T>(_ items: [T]) -> T { items[Int.random(in: 0..<items.count, using: &random)] }
    mutating func chance(_ probability: Double) -> Bool { Double.random(in: 0..<1, using: &random) < probability }
    mutating func number(below bound: Int) -> Int { Int.random(in: 0..<bound, using: &random) }
}

// MARK: - Policies

/// One policy's match block and the kinds of rule that make sense for it.
struct MatchShape {
    let yaml: String
    let ruleKinds: [RuleKind]
}

enum RuleKind: CaseIterable {
    case execLine, execCommand, objectLabel, objectTemplate, groups, namespace, secretMask, warn, allow
}

let matchShapes: [MatchShape] = [
    MatchShape(
        yaml:
            #"{subjects: [{group: developers}, {user: "alice*"}], namespaces: ["prod-*", prod], resources: ["pods/exec"], verbs: [create]}"#,
        ruleKinds: [.execLine, .execCommand, .groups, .warn, .allow]),
    MatchShape(
        yaml: #"{subjects: [{serviceAccount: "ci/*"}], resources: ["pods/exec", "pods/attach"]}"#,
        ruleKinds: [.execLine, .execCommand, .namespace]),
    MatchShape(
        yaml: #"{namespaces: ["prod*"], resources: [secrets], verbs: [get, list, watch]}"#,
        ruleKinds: [.secretMask, .groups, .namespace, .warn]),
    MatchShape(
        yaml: #"{resources: ["deployments.apps"], operations: [CREATE, UPDATE]}"#,
        ruleKinds: [.objectLabel, .objectTemplate, .groups, .allow]),
    MatchShape(
        yaml: #"{namespaces: ["team-?-*", staging], resources: [configmaps], verbs: ["*"]}"#,
        ruleKinds: [.objectLabel, .namespace, .warn, .allow]),
    MatchShape(
        yaml: #"{subjects: [{group: "sre-*"}], resources: ["*"]}"#, ruleKinds: [.groups, .namespace, .warn, .allow]),
    MatchShape(
        yaml: #"{subjects: [{group: contractors}], namespaces: ["prod-*"], resources: ["*.apps", pods]}"#,
        ruleKinds: [.groups, .namespace, .objectLabel]),
    MatchShape(yaml: #"{resources: ["pods/log"], verbs: [get]}"#, ruleKinds: [.namespace, .warn, .allow]),
]

let teams = ["payments", "search", "platform", "identity", "ledger"]
let dangerousCommands = ["rm", "shred", "dd", "mkfs", "psql", "mysql", "curl", "wget", "nc"]

extension InputGenerator {
    /// A rule of `kind` as a YAML flow mapping; `index` keeps names unique within the policy.
    mutating func rule(_ kind: RuleKind, index: Int) -> String {
        let name = "r\(index)"
        switch kind {
        case .execLine:
            let command = pick(dangerousCommands)
            if chance(0.5) {
                return
                    #"{name: \#(name), action: Deny, expression: "exec.line.matches('^\\\\s*\#(command)\\\\s+-[a-z]*f')", message: "\#(command) -f is not allowed here"}"#
            }
            return
                #"{name: \#(name), action: Review, expression: "exec.line.startsWith('\#(command)') && variables.isProd", messageExpression: "'\#(command) in ' + request.namespace + ' needs approval'", review: {approvers: {groups: [sre, "dba-*"]}, grantFor: 1h}}"#
        case .execCommand:
            return
                #"{name: \#(name), action: Deny, expression: "exec.command.exists(c, c in ['nsenter', 'chroot']) || (exec.tty && exec.command.size() == 1 && exec.command[0] == 'bash' && !variables.isSRE)", message: no interactive root shells}"#
        case .objectLabel:
            let team = pick(teams)
            return
                #"{name: \#(name), action: Deny, expression: "object != null && has(object.metadata.labels) && 'team' in object.metadata.labels && object.metadata.labels.team != '\#(team)' && variables.isProd", message: "only \#(team) may change this"}"#
        case .objectTemplate:
            return
                #"{name: \#(name), action: Deny, expression: "object != null && has(object.spec.template) && object.spec.template.spec.containers.exists(c, !c.image.startsWith('registry.example.com/'))", message: images must come from the internal registry}"#
        case .groups:
            if chance(0.5) {
                return
                    #"{name: \#(name), action: Allow, expression: "request.user.groups.exists(g, g.startsWith('sre'))"}"#
            }
            return
                #"{name: \#(name), action: Review, expression: "!request.user.groups.exists(g, g.startsWith('sre')) && request.verb in ['delete', 'deletecollection', 'patch']", message: changes need an SRE, review: {approvers: {groups: ["sre-*"], users: [oncall]}, grantFor: 30m}}"#
        case .namespace:
            return
                #"{name: \#(name), action: Deny, expression: "request.namespace in ['kube-system', 'kube-public'] && !variables.isSRE", message: system namespaces are off limits}"#
        case .secretMask:
            return
                #"{name: \#(name), action: Mask, mask: {fields: ["data.*", "stringData.*"], replacement: "[redacted]"}}"#
        case .warn:
            return
                #"{name: \#(name), action: Warn, expression: "request.namespace.startsWith('prod')", messageExpression: "'you are in ' + request.namespace"}"#
        case .allow:
            return "{name: \(name), action: Allow}"
        }
    }

    /// 100 policies with 300 rules in all (one to five each), as one YAML stream.
    mutating func policyYAML(count: Int, totalRules: Int) -> String {
        var ruleCounts = [Int](repeating: 1, count: count)
        var remaining = totalRules - count
        while remaining > 0 {
            let position = number(below: count)
            if ruleCounts[position] < 5 {
                ruleCounts[position] += 1
                remaining -= 1
            }
        }
        var yaml = ""
        for (position, rules) in ruleCounts.enumerated() {
            let shape = pick(matchShapes)
            let mode = chance(0.8) ? "Enforce" : pick(["Warn", "Audit"])
            let failurePolicy = chance(0.85) ? "Fail" : "Ignore"
            yaml += """
                apiVersion: portcullis.dev/v1alpha1
                kind: AccessPolicy
                metadata: {name: policy-\(position), labels: {team: \(pick(teams))}}
                spec:
                  mode: \(mode)
                  failurePolicy: \(failurePolicy)
                  match: \(shape.yaml)

                """
            if chance(0.3) {
                yaml += "  matchConditions:\n"
                yaml += "  - {name: not-break-glass, expression: \"!('break-glass' in request.user.groups)\"}\n"
            }
            yaml += """
                  variables:
                  - {name: isProd, expression: "request.namespace == 'prod' || request.namespace.startsWith('prod-')"}
                  - {name: isSRE, expression: "request.user.groups.exists(g, g.startsWith('sre'))"}
                  rules:

                """
            for index in 0..<rules { yaml += "  - \(rule(pick(shape.ruleKinds), index: index))\n" }
            yaml += "---\n"
        }
        return yaml
    }
}

// MARK: - Requests

let users: [RequestAttributes.UserInfo] = [
    .init(name: "alice@example.com", uid: "1001", groups: ["developers", "system:authenticated"]),
    .init(name: "bob@example.com", uid: "1002", groups: ["developers", "payments", "system:authenticated"]),
    .init(name: "carol@example.com", uid: "1003", groups: ["sre-oncall", "sre", "system:authenticated"]),
    .init(name: "dave@example.com", uid: "1004", groups: ["contractors", "system:authenticated"]),
    .init(name: "erin@example.com", uid: "1005", groups: ["dba-team", "developers", "system:authenticated"]),
    .init(name: "system:serviceaccount:ci:deployer", uid: "2001", groups: ["system:serviceaccounts"]),
    .init(name: "frank@example.com", uid: "1006", groups: ["developers", "break-glass", "system:authenticated"]),
]
let namespaces = ["prod", "prod-eu", "prod-us", "staging", "dev", "team-a-web", "team-b-api", "kube-system"]
let execLines = [
    "ls -la /var/log", "rm -rf /tmp/cache", "psql -h db -c 'select count(*) from orders'", "cat /etc/hosts",
    "curl -s http://localhost:8080/healthz", "shred -fu secrets.txt", "tail -n 100 app.log", "df -h",
    "mysql -e 'DROP TABLE sessions'", "ps aux", "", "kill -9 1", "env | grep -i token", "dd if=/dev/zero of=x bs=1M",
]

/// A few Kubernetes objects, as the webhook receives them.
func deployment(team: String, image: String, replicas: Int) -> CELValue {
    try! CELValue(
        json: Data(
            """
            {"apiVersion": "apps/v1", "kind": "Deployment",
             "metadata": {"name": "web-\(team)", "namespace": "prod", "labels": {"team": "\(team)", "tier": "frontend"},
                          "annotations": {"deployment.kubernetes.io/revision": "7"}},
             "spec": {"replicas": \(replicas), "selector": {"matchLabels": {"app": "web"}},
                      "template": {"metadata": {"labels": {"app": "web"}},
                                   "spec": {"containers": [
                                     {"name": "app", "image": "\(image)", "ports": [{"containerPort": 8080}],
                                      "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}}},
                                     {"name": "proxy", "image": "registry.example.com/envoy:1.30"}]}}}}
            """.utf8))
}

func configMap(team: String) -> CELValue {
    try! CELValue(
        json: Data(
            """
            {"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": "settings", "namespace": "staging", "labels": {"team": "\(team)"}},
             "data": {"LOG_LEVEL": "info", "FEATURE_X": "true"}}
            """.utf8))
}

let objects: [CELValue] =
    teams.flatMap { team in
        [
            deployment(team: team, image: "registry.example.com/\(team)/web:1.4.2", replicas: 3),
            deployment(team: team, image: "docker.io/library/nginx:latest", replicas: 1),
            configMap(team: team),
        ]
    }

extension InputGenerator {
    mutating func makeRequest() -> RequestAttributes {
        let user = pick(users)
        let namespace = pick(namespaces)
        switch number(below: 100) {
        case 0..<30:  // an interactive exec line, or the initial exec check
            return RequestAttributes(
                user: user, verb: "create", resource: "pods", subresource: "exec", namespace: namespace, name: "web-0",
                exec: .init(
                    command: chance(0.7) ? ["bash"] : ["sh", "-c", "ls"], container: "app", tty: true, stdin: true,
                    line: pick(execLines)))
        case 30..<55:  // reads through the proxy
            return RequestAttributes(
                user: user, verb: pick(["get", "list", "watch"]),
                resource: pick(["pods", "secrets", "configmaps", "services"]),
                namespace: namespace, name: chance(0.5) ? "" : "item-\(number(below: 50))")
        case 55..<75:  // admission of a deployment, with the object
            return RequestAttributes(
                user: user, verb: pick(["create", "update", "patch"]), operation: pick([.create, .update]),
                group: "apps", resource: "deployments", namespace: namespace, name: "web", source: .webhook,
                namespaceLabels: ["env": namespace.hasPrefix("prod") ? "prod" : "dev"], object: pick(Array(objects)))
        case 75..<85:  // admission of a config map
            return RequestAttributes(
                user: user, verb: "update", operation: .update, resource: "configmaps", namespace: namespace,
                name: "settings", source: .webhook, object: objects[2], oldObject: objects[5])
        case 85..<93:
            return RequestAttributes(
                user: user, verb: "get", resource: "pods", subresource: "log", namespace: namespace, name: "web-0")
        default:
            return RequestAttributes(
                user: user, verb: pick(["delete", "patch"]), resource: pick(["pods", "services", "secrets"]),
                namespace: namespace, name: "item")
        }
    }
}

// MARK: - Measurement

@inline(__always)
func monotonicNanoseconds() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
}

@inline(never)
func blackHole<T>(_ value: T) {
    withExtendedLifetime(value) {}
}

/// Nanoseconds of each evaluation, in request order.
func timeEach(_ engine: PolicyEngine, _ requests: [RequestAttributes], now: Date) -> [UInt64] {
    var samples = [UInt64](repeating: 0, count: requests.count)
    for (index, request) in requests.enumerated() {
        let start = monotonicNanoseconds()
        let decision = engine.evaluate(request, now: now)
        samples[index] = monotonicNanoseconds() - start
        blackHole(decision)
    }
    return samples
}

struct Summary {
    let p50: Double
    let p90: Double
    let p99: Double
    let max: Double
    let mean: Double

    init(_ samples: [UInt64]) {
        let sorted = samples.sorted()
        func at(_ fraction: Double) -> Double { Double(sorted[Int(Double(sorted.count - 1) * fraction)]) }
        p50 = at(0.50)
        p90 = at(0.90)
        p99 = at(0.99)
        max = Double(sorted.last ?? 0)
        mean = Double(sorted.reduce(0, +)) / Double(sorted.count)
    }
}

func format(_ nanoseconds: Double) -> String {
    nanoseconds >= 10_000 ? String(format: "%.1f µs", nanoseconds / 1000) : String(format: "%.0f ns", nanoseconds)
}

// MARK: - Allocation counting (child process under mtrace)

typealias TraceFunction = @convention(c) () -> Void

/// glibc's versioned `dlsym`, which the Glibc module does not import.
@_silgen_name("dlvsym")
func dlvsym(
    _ handle: UnsafeMutableRawPointer?, _ symbol: UnsafePointer<CChar>, _ version: UnsafePointer<CChar>
) -> UnsafeMutableRawPointer?

func countAllocations(iterations: Int, _ body: () -> Void) -> Double {
    let path = ProcessInfo.processInfo.environment["MALLOC_TRACE"]!
    // The debug library's mtrace is a non-default symbol version: plain dlsym finds glibc's stub,
    // which does nothing.
    guard let library = dlopen("libc_malloc_debug.so.0", RTLD_NOW | RTLD_NOLOAD),
        let start = dlvsym(library, "mtrace", "GLIBC_2.2.5"), let stop = dlvsym(library, "muntrace", "GLIBC_2.2.5")
    else {
        print("mtrace unavailable")
        exit(2)
    }
    try? FileManager.default.removeItem(atPath: path)
    unsafeBitCast(start, to: TraceFunction.self)()
    body()
    unsafeBitCast(stop, to: TraceFunction.self)()
    let trace = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    guard trace.hasPrefix("= Start") else {
        print("mtrace wrote no trace")
        exit(2)
    }
    // "+ addr size" is a malloc (or calloc, memalign), "> addr size" the new block of a realloc.
    let allocations = trace.split(separator: "\n").filter { $0.contains(" + ") || $0.contains(" > ") }.count
    return Double(allocations) / Double(iterations)
}

// MARK: - Setup

let now = Date(timeIntervalSince1970: 1_750_000_000)
var inputs = InputGenerator()
let loadStart = monotonicNanoseconds()
// The shipped examples are part of the set, so the regexes and variables users start from are
// measured too; generated policies make up the rest.
let examplesDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../../manifests/policies/examples").standardized.path
let examples = try PolicyLoader.load(paths: [examplesDirectory])
let yaml = inputs.policyYAML(
    count: 100 - examples.count, totalRules: 300 - examples.reduce(0) { $0 + $1.rules.count })
let policies = try examples + PolicyLoader.parse(yaml, file: "generated.yaml")
let compiled = try PolicyCompiler.compile(policies)
let loadNanoseconds = monotonicNanoseconds() - loadStart
precondition(compiled.count == 100 && compiled.reduce(0) { $0 + $1.policy.rules.count } == 300)
let engine = PolicyEngine(policies: compiled)
let emptyEngine = PolicyEngine(policies: [])
let requests = (0..<100_000).map { _ in inputs.makeRequest() }

let comparison = try CELEnvironment.portcullisPolicy.compile("request.namespace == 'prod'")
let comparisonActivation = CELActivation([
    "request": [
        "user": ["name": "alice@example.com", "groups": ["developers"]], "verb": "get", "namespace": "prod",
        "resource": ["group": "", "version": "v1", "resource": "pods"], "name": "web-0",
    ]
])
/// What the compiled expression does, written by hand against the same activation.
let handWritten: (CELActivation) -> Bool = { activation in
    guard case .map(let request)? = activation["request"], case .string(let namespace)? = request[field: "namespace"]
    else { return false }
    return namespace == "prod"
}

let allocationSampleSize = 300

if CommandLine.arguments.contains("--count-allocations") {
    // mtrace resolves the caller of every allocation, a few milliseconds each in a large binary:
    // a sample of the requests (the first ones, drawn like the rest) keeps this to a minute or two.
    let sample = Array(requests.prefix(allocationSampleSize))
    for request in sample { blackHole(engine.evaluate(request, now: now)) }  // warm lazy state
    let perRequest = countAllocations(iterations: sample.count) {
        for request in sample { blackHole(engine.evaluate(request, now: now)) }
    }
    let perEmpty = countAllocations(iterations: sample.count) {
        for request in sample { blackHole(emptyEngine.evaluate(request, now: now)) }
    }
    let perComparison = countAllocations(iterations: 1000) {
        for _ in 0..<1000 { blackHole(try! comparison.evaluate(comparisonActivation)) }
    }
    print("ALLOC \(perRequest) \(perEmpty) \(perComparison)")
    exit(0)
}

// `--evaluate-only N`: the first N requests evaluated twice (the first pass fills lazy state),
// nothing timed or printed, for instruction counts (`valgrind --tool=callgrind
// --toggle-collect='*PolicyEngine*evaluate*'`), which the machine's load does not change.
if let flag = CommandLine.arguments.firstIndex(of: "--evaluate-only"), flag + 1 < CommandLine.arguments.count,
    let count = Int(CommandLine.arguments[flag + 1])
{
    let sample = requests.prefix(count)
    for request in sample { blackHole(engine.evaluate(request, now: now)) }
    for request in sample { blackHole(engine.evaluate(request, now: now)) }
    exit(0)
}

// MARK: - Run

_ = timeEach(engine, Array(requests.prefix(10_000)), now: now)  // warm-up
_ = timeEach(emptyEngine, Array(requests.prefix(10_000)), now: now)

let wallStart = monotonicNanoseconds()
let samples = timeEach(engine, requests, now: now)
let wallNanoseconds = monotonicNanoseconds() - wallStart
let emptySamples = timeEach(emptyEngine, requests, now: now)

var outcomes: [Decision.Outcome: Int] = [:]
var rulesLookedAt = 0
for request in requests {
    let decision = engine.evaluate(request, now: now)
    outcomes[decision.outcome, default: 0] += 1
    rulesLookedAt += decision.results.count
}

let comparisonIterations = 1_000_000
func timeLoop(_ body: () -> Void) -> Double {
    var best = Double.infinity
    for _ in 0..<3 {
        let start = monotonicNanoseconds()
        body()
        best = min(best, Double(monotonicNanoseconds() - start) / Double(comparisonIterations))
    }
    return best
}
var truths = 0
let celNanoseconds = timeLoop {
    for _ in 0..<comparisonIterations {
        if case .bool(true)? = try? comparison.evaluate(comparisonActivation) { truths &+= 1 }
    }
}
let closureNanoseconds = timeLoop {
    for _ in 0..<comparisonIterations where handWritten(comparisonActivation) { truths &+= 1 }
}
blackHole(truths)

let engineSummary = Summary(samples)
let emptySummary = Summary(emptySamples)
print(
    "Policy engine benchmark: \(compiled.count) policies, \(compiled.reduce(0) { $0 + $1.policy.rules.count }) rules "
        + "(\(examples.count) shipped examples and \(yaml.utf8.count / 1024) KiB of generated YAML, loaded and "
        + "compiled in \(format(Double(loadNanoseconds)))), "
        + "\(requests.count) requests")
print(
    "  outcomes: \(outcomes[.allow, default: 0]) allow, \(outcomes[.deny, default: 0]) deny, "
        + "\(outcomes[.review, default: 0]) review; \(String(format: "%.1f", Double(rulesLookedAt) / Double(requests.count))) rule results per request"
)
print("  per request evaluation        p50       p90       p99       max      mean")
func row(_ label: String, _ summary: Summary) {
    print(
        label.padding(toLength: 28, withPad: " ", startingAt: 0)
            + [summary.p50, summary.p90, summary.p99, summary.max, summary.mean].map {
                format($0).leftPadding(to: 10)
            }.joined())
}
row("    300 rules", engineSummary)
row("    0 policies (baseline)", emptySummary)
print(
    String(
        format: "    ratio to baseline        %8.1fx %8.1fx %8.1fx", engineSummary.p50 / emptySummary.p50,
        engineSummary.p90 / emptySummary.p90, engineSummary.p99 / emptySummary.p99))
print(
    String(
        format: "  throughput: %.0f requests/s on one thread (%.0f with 0 policies)",
        Double(requests.count) / (Double(wallNanoseconds) / 1e9), 1e9 / emptySummary.mean))
print(
    String(
        format:
            "  `request.namespace == 'prod'`: %.1f ns/op compiled CEL, %.1f ns/op hand-written closure (%.1fx), %d evaluations",
        celNanoseconds, closureNanoseconds, celNanoseconds / closureNanoseconds, comparisonIterations))

// `--by-kind`: the median depends on the mix, and each kind's own median shows which kinds sit
// near it (exec lines and pod logs here; reads are faster, admissions slower).
if CommandLine.arguments.contains("--by-kind") {
    var samplesByKind: [String: [UInt64]] = [:]
    var resultsByKind: [String: Int] = [:]
    for (request, sample) in zip(requests, samples) {
        let kind =
            request.exec != nil
            ? "exec" : request.object != nil ? "admit \(request.resource)" : "\(request.verb) \(request.resource)"
        let label = request.subresource.isEmpty || request.exec != nil ? kind : "\(kind)/\(request.subresource)"
        samplesByKind[label, default: []].append(sample)
        resultsByKind[label, default: 0] += engine.evaluate(request, now: now).results.count
    }
    print("  by kind of request            count       p50       p90       p99")
    for (kind, kindSamples) in samplesByKind.sorted(by: { $0.value.count > $1.value.count })
    where kindSamples.count >= 5000 {
        let summary = Summary(kindSamples)
        let results = Double(resultsByKind[kind, default: 0]) / Double(kindSamples.count)
        print(
            "    \(kind.padding(toLength: 24, withPad: " ", startingAt: 0))\(String(kindSamples.count).leftPadding(to: 8))"
                + [summary.p50, summary.p90, summary.p99].map { format($0).leftPadding(to: 10) }.joined()
                + String(format: "  %.1f rule results", results))
    }
}

// Allocations: re-run this binary under mtrace.
let debugMalloc = "/lib/x86_64-linux-gnu/libc_malloc_debug.so.0"
if FileManager.default.fileExists(atPath: debugMalloc) {
    let child = Process()
    child.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    child.arguments = ["--count-allocations"]
    var environment = ProcessInfo.processInfo.environment
    environment["LD_PRELOAD"] = debugMalloc
    environment["MALLOC_TRACE"] = NSTemporaryDirectory() + "policy-benchmark-mtrace-\(getpid()).log"
    child.environment = environment
    let pipe = Pipe()
    child.standardOutput = pipe
    try child.run()
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    child.waitUntilExit()
    try? FileManager.default.removeItem(atPath: environment["MALLOC_TRACE"]!)
    let fields = output.split(whereSeparator: \.isWhitespace)
    if fields.count >= 4, fields[0] == "ALLOC", let request = Double(fields[1]), let empty = Double(fields[2]),
        let single = Double(fields[3])
    {
        print(
            String(
                format:
                    "  allocations (glibc mtrace, first %d requests): %.1f per request (%.1f with 0 policies), "
                    + "%.1f per comparison", allocationSampleSize, request, empty, single))
    } else {
        print("  allocation count failed: \(output)")
    }
} else {
    print("  allocations: not measured (\(debugMalloc) missing)")
}
print(
    "  targets: p50 < 10 µs \(engineSummary.p50 < 10_000 ? "met" : "MISSED"), "
        + "comparison < 1 µs \(celNanoseconds < 1000 ? "met" : "MISSED")")

extension String {
    func leftPadding(to length: Int) -> String {
        count >= length ? self : String(repeating: " ", count: length - count) + self
    }
}
