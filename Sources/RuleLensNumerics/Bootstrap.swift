/// A mean with its 95% percentile-bootstrap interval (nil bounds when no resampling was asked for).
public struct Estimate: Sendable, Equatable {
    public var value: Double
    public var lower: Double?
    public var upper: Double?
    public init(value: Double, lower: Double? = nil, upper: Double? = nil) { self.value = value; self.lower = lower; self.upper = upper }
}

/// The percentile bootstrap over examples.
///
/// A plan draws its resamples once: resample b is `n` indices drawn uniformly with replacement from a seeded
/// stream that depends only on (seed, stream name). Every statistic computed with one plan sees the same draws,
/// so paired quantities (ablated − clean, attention − FFN) stay paired. The interval is the 2.5th and 97.5th
/// percentile of the resampled means (linear interpolation between order statistics, numpy's default).
public struct BootstrapPlan: Sendable {
    public let n: Int
    public let resamples: Int
    /// [resamples × n] example indices.
    private let draws: [Int32]

    public init(n: Int, resamples: Int, seed: UInt64, stream: String) {
        self.n = n; self.resamples = max(0, resamples)
        var rng = SeededRNG(seed: seed, stream: "bootstrap:" + stream)
        var d = [Int32](repeating: 0, count: self.resamples * n)
        if n > 0 { for i in d.indices { d[i] = Int32(rng.int(below: n)) } }
        draws = d
    }

    /// The mean of `values` (n of them) with its 95% interval (no interval without resamples or values).
    public func mean(_ values: [Double]) -> Estimate {
        precondition(values.count == n, "BootstrapPlan.mean: \(values.count) values for a plan over \(n)")
        guard n > 0 else { return Estimate(value: .nan) }
        let mean = values.reduce(0, +) / Double(n)
        guard resamples > 0 else { return Estimate(value: mean) }
        var means = [Double](repeating: 0, count: resamples)
        values.withUnsafeBufferPointer { v in
            draws.withUnsafeBufferPointer { d in
                for b in 0..<resamples {
                    var sum = 0.0
                    let base = b * n
                    for i in 0..<n { sum += v[Int(d[base + i])] }
                    means[b] = sum / Double(n)
                }
            }
        }
        means.sort()
        return Estimate(value: mean, lower: Self.quantile(means, 0.025), upper: Self.quantile(means, 0.975))
    }

    /// Any statistic of the examples with its 95% interval: `statistic(indices)` computes it on a list of example
    /// indices (0..<n for the value itself, each resample's draws for the interval). Non-finite resampled values
    /// (a resample too degenerate for the statistic) are dropped; none left gives no interval.
    public func estimate(_ statistic: ([Int32]) -> Double) -> Estimate {
        let value = statistic((0..<Int32(n)).map { $0 })
        guard resamples > 0, n > 0 else { return Estimate(value: value) }
        var values = (0..<resamples).map { b in statistic(Array(draws[(b * n)..<((b + 1) * n)])) }.filter(\.isFinite)
        guard !values.isEmpty else { return Estimate(value: value) }
        values.sort()
        return Estimate(value: value, lower: Self.quantile(values, 0.025), upper: Self.quantile(values, 0.975))
    }

    /// Quantile q of sorted values, linear interpolation (numpy `percentile` default).
    public static func quantile(_ sorted: [Double], _ q: Double) -> Double {
        guard !sorted.isEmpty else { return .nan }
        let h = Double(sorted.count - 1) * q
        let lo = Int(h.rounded(.down)), hi = min(sorted.count - 1, lo + 1)
        return sorted[lo] + (h - Double(lo)) * (sorted[hi] - sorted[lo])
    }
}
