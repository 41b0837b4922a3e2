import Prometheus

/// The webhook's Prometheus metrics, served at `/metrics`.
public final class WebhookMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
    }

    /// Counts one answered review, by endpoint and outcome.
    func recordReview(endpoint: String, outcome: String, duration: Duration) {
        registry.makeCounter(
            descriptor: MetricNameDescriptor(
                namespace: "portcullis", subsystem: "webhook", metricName: "reviews", unitName: "total",
                helpText: "Admission reviews answered, by endpoint and outcome."),
            labels: [("endpoint", endpoint), ("outcome", outcome)]
        ).increment()
        registry.makeDurationHistogram(
            descriptor: MetricNameDescriptor(
                namespace: "portcullis", subsystem: "webhook", metricName: "review_duration", unitName: "seconds",
                helpText: "Time to answer an admission review."),
            labels: [("endpoint", endpoint)], buckets: Self.latencyBuckets
        ).record(duration)
    }

    /// Counts a request refused before evaluation (malformed, too large, wrong path).
    func recordRefusal(status: Int) {
        registry.makeCounter(
            descriptor: MetricNameDescriptor(
                namespace: "portcullis", subsystem: "webhook", metricName: "refused_requests", unitName: "total",
                helpText: "HTTP requests refused before evaluation, by status."),
            labels: [("status", String(status))]
        ).increment()
    }

    static let latencyBuckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2),
        .milliseconds(5), .milliseconds(10), .milliseconds(50), .milliseconds(250), .seconds(1),
    ]

    /// The Prometheus text exposition.
    public func render() -> String { registry.emitToString() }
}
