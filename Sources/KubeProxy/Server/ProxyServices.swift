import Foundation
import Prometheus

/// What every connection shares besides the gate: the audit log, metrics and session recordings.
final class ProxyServices: Sendable {
    let audit: AuditLog
    let metrics: ProxyMetrics
    /// nil: exec and attach sessions are not recorded.
    let recordings: SessionRecordingSettings?
    let lineChecks: LineCheckSettings
    /// Exec, attach and port-forward sessions open now, for a shutdown to end.
    let sessions = ActiveSessions()

    init(
        audit: AuditLog, metrics: ProxyMetrics, recordings: SessionRecordingSettings? = nil,
        lineChecks: LineCheckSettings = LineCheckSettings()
    ) {
        self.audit = audit
        self.metrics = metrics
        self.recordings = recordings
        self.lineChecks = lineChecks
    }

    /// Records a finished request in the audit log and the metrics.
    func record(_ record: AuditRecord) {
        let now = Date()
        audit.write(record, completedAt: now)
        metrics.recordRequest(
            decision: record.decision?.outcome.rawValue ?? (record.user == nil ? "Unauthenticated" : "None"),
            code: record.responseCode, duration: .milliseconds(Int64(now.timeIntervalSince(record.receivedAt) * 1000)))
    }
}

/// The proxy's Prometheus metrics.
public final class ProxyMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry

    /// Made once: it has no labels, and every request records into it.
    private let requestDuration: DurationHistogram

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        requestDuration = registry.makeDurationHistogram(
            descriptor: MetricNameDescriptor(
                namespace: "portcullis", subsystem: "proxy", metricName: "request_duration", unitName: "seconds",
                helpText: "Time from a request's arrival to the end of its response."),
            labels: [], buckets: Self.latencyBuckets)
    }

    func recordRequest(decision: String, code: Int, duration: Duration) {
        registry.makeCounter(
            descriptor: MetricNameDescriptor(
                namespace: "portcullis", subsystem: "proxy", metricName: "requests", unitName: "total",
                helpText: "Requests answered, by policy decision and HTTP status."),
            labels: [("decision", decision), ("code", String(code))]
        ).increment()
        requestDuration.record(duration)
    }

    /// One finished exec or attach session: `outcome` is `success`, `exit-code` (the command
    /// failed) or `error` (the session itself failed, e.g. the upstream connection was lost).
    func recordSession(subresource: String, transport: String, outcome: String, duration: Duration) {
        registry.makeCounter(
            descriptor: MetricNameDescriptor(
                namespace: "portcullis", subsystem: "proxy", metricName: "sessions", unitName: "total",
                helpText: "Exec and attach sessions that ran, by transport and outcome."),
            labels: [("subresource", subresource), ("transport", transport), ("outcome", outcome)]
        ).increment()
        registry.makeDurationHistogram(
            descriptor: MetricNameDescriptor(
                namespace: "portcullis", subsystem: "proxy", metricName: "session_duration", unitName: "seconds",
                helpText: "Length of exec and attach sessions, from the 101 to the status."),
            labels: [], buckets: Self.sessionBuckets
        ).record(duration)
    }

    /// The command lines checked in one finished session, by outcome.
    func recordLines(_ counts: StdinLineGuard.Counts) {
        let outcomes = [
            ("allowed", counts.checked - counts.blocked - counts.approved), ("blocked", counts.blocked),
            ("approved", counts.approved),
        ]
        for (outcome, count) in outcomes where count > 0 {
            registry.makeCounter(
                descriptor: MetricNameDescriptor(
                    namespace: "portcullis", subsystem: "proxy", metricName: "exec_lines", unitName: "total",
                    helpText: "Command lines typed into exec and attach sessions and checked, by outcome."),
                labels: [("outcome", outcome)]
            ).increment(by: Int64(count))
        }
    }

    static let sessionBuckets: [Duration] = [
        .seconds(1), .seconds(10), .seconds(60), .seconds(600), .seconds(3600), .seconds(4 * 3600),
    ]

    func recordUpstreamError() {
        registry.makeCounter(
            descriptor: MetricNameDescriptor(
                namespace: "portcullis", subsystem: "proxy", metricName: "upstream_errors", unitName: "total",
                helpText: "Failures to reach or read from the Kubernetes API server."),
            labels: []
        ).increment()
    }

    /// A TLS connection opened to the apiserver: for HTTP requests (then pooled) or raw, for an upgrade.
    func recordUpstreamConnection(http: Bool) {
        registry.makeCounter(
            descriptor: MetricNameDescriptor(
                namespace: "portcullis", subsystem: "proxy", metricName: "upstream_connections_opened",
                unitName: "total", helpText: "TLS connections opened to the Kubernetes API server, by use."),
            labels: [("use", http ? "requests" : "upgrade")]
        ).increment()
    }

    /// An exec, attach or port-forward upgrade toward the apiserver, on a pooled connection or a new one.
    func recordUpstreamUpgrade(pooled: Bool) {
        registry.makeCounter(
            descriptor: MetricNameDescriptor(
                namespace: "portcullis", subsystem: "proxy", metricName: "upstream_upgrades", unitName: "total",
                helpText: "Upgrades (exec, attach, port-forward) sent to the Kubernetes API server, by connection."),
            labels: [("connection", pooled ? "pooled" : "new")]
        ).increment()
    }

    static let latencyBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .seconds(1), .seconds(5), .seconds(30),
    ]

    public func render() -> String { registry.emitToString() }
}
