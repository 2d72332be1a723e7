import Foundation
import RuleLensNumerics

/// The statistics `expect:` checks compare: a percentile bootstrap of the mean over seed-level values and Spearman's
/// rank correlation. Deterministic: the bootstrap draws from a fixed seed, so a rerun of a spec gives the same interval.
public enum SeedStatistics {
    /// Resamples per bootstrap. With 5 seeds the Monte Carlo error of a 95% percentile bound is far below the spread
    /// between seeds; more resamples would only cost time.
    public static let resamples = 10_000
    /// Two-sided coverage of the interval: the 2.5th and 97.5th percentiles of the resampled means.
    public static let level = 0.95
    /// The bootstrap's fixed seed (the RNG stream is `SeededRNG(seed: bootstrapSeed, stream: "bootstrap")`).
    public static let bootstrapSeed: UInt64 = 20_240_601

    /// A mean with its percentile-bootstrap interval.
    public struct Interval: Equatable, Sendable {
        public var mean: Double
        public var low: Double
        public var high: Double
    }

    /// The percentile bootstrap interval of the mean of `values` (at least two): `resamples` resamples of n values drawn
    /// with replacement, the mean of each, and the `(1 − level)/2` and `(1 + level)/2` quantiles of those means
    /// (linear interpolation between order statistics, numpy's default). Values that are differences taken within each
    /// seed (a − b read in the same seed) make this the seed-level bootstrap of paired differences.
    public static func bootstrapMean(_ values: [Double], resamples: Int = resamples, level: Double = level,
                                     seed: UInt64 = bootstrapSeed) -> Interval {
        precondition(values.count >= 2 && resamples >= 1)
        let n = values.count
        var rng = SeededRNG(seed: seed, stream: "bootstrap")
        var means = [Double](repeating: 0, count: resamples)
        for b in 0..<resamples {
            var sum = 0.0
            for _ in 0..<n { sum += values[rng.int(below: n)] }
            means[b] = sum / Double(n)
        }
        means.sort()
        let tail = (1 - level) / 2
        return Interval(mean: values.reduce(0, +) / Double(n), low: quantile(sorted: means, tail),
                        high: quantile(sorted: means, 1 - tail))
    }

    /// The q-quantile of ascending `sorted` values, interpolating linearly at position q·(n − 1) (numpy's "linear").
    public static func quantile(sorted: [Double], _ q: Double) -> Double {
        precondition(!sorted.isEmpty)
        let position = q * Double(sorted.count - 1)
        let lower = Int(position.rounded(.down)), upper = min(lower + 1, sorted.count - 1)
        let fraction = position - Double(lower)
        return sorted[lower] + (sorted[upper] - sorted[lower]) * fraction
    }

    /// Sample standard deviation (n − 1 in the denominator); 0 for one value.
    public static func standardDeviation(_ values: [Double]) -> Double {
        guard values.count > 1 else { return 0 }
        let mean = values.reduce(0, +) / Double(values.count)
        return (values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count - 1)).squareRoot()
    }

    /// Ranks 1…n, ties given their average rank (as scipy.stats.rankdata).
    public static func ranks(_ values: [Double]) -> [Double] {
        let order = values.indices.sorted { values[$0] < values[$1] }
        var ranks = [Double](repeating: 0, count: values.count)
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count, values[order[j + 1]] == values[order[i]] { j += 1 }
            let average = Double(i + j) / 2 + 1
            for k in i...j { ranks[order[k]] = average }
            i = j + 1
        }
        return ranks
    }

    /// Spearman's ρ: the Pearson correlation of the ranks. nil when either side is constant (ρ is undefined).
    public static func spearman(_ x: [Double], _ y: [Double]) -> Double? {
        precondition(x.count == y.count)
        let rx = ranks(x), ry = ranks(y)
        let n = Double(x.count)
        let mx = rx.reduce(0, +) / n, my = ry.reduce(0, +) / n
        var sxy = 0.0, sxx = 0.0, syy = 0.0
        for i in rx.indices {
            sxy += (rx[i] - mx) * (ry[i] - my); sxx += (rx[i] - mx) * (rx[i] - mx); syy += (ry[i] - my) * (ry[i] - my)
        }
        guard sxx > 0, syy > 0 else { return nil }
        return sxy / (sxx * syy).squareRoot()
    }
}
