import Foundation

/// Percentiles of a set of latencies (nearest rank).
struct LatencySummary {
    let count: Int
    let p50: Duration
    let p99: Duration
    let max: Duration

    init(_ latencies: [Duration]) {
        let sorted = latencies.sorted()
        func rank(_ fraction: Double) -> Duration {
            guard !sorted.isEmpty else { return .zero }
            return sorted[Swift.max(0, Int((Double(sorted.count) * fraction).rounded(.up)) - 1)]
        }
        count = sorted.count
        p50 = rank(0.50)
        p99 = rank(0.99)
        max = sorted.last ?? .zero
    }
}

extension Duration {
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }

    /// Milliseconds with two decimals, for the tables.
    var milliseconds: String { String(format: "%.2f", seconds * 1000) }
}
