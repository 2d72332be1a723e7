import Foundation
import RuleLensNumerics

/// The statistics `expect:` checks compare over seeds: the percentile bootstrap of the mean of seed-level values
/// (`BootstrapPlan`), their standard deviation, and Spearman's rank correlation (`RankCorrelation`). Deterministic:
/// the bootstrap draws from a fixed seed, so a rerun of a spec gives the same interval.
public enum SeedStatistics {
    /// Resamples per bootstrap. With 5 seeds the Monte Carlo error of a 95% percentile bound is far below the spread
    /// between seeds; more resamples would only cost time.
    public static let resamples = 10_000
    /// Two-sided coverage of the interval (BootstrapPlan's): the 2.5th and 97.5th percentiles of the resampled means.
    public static let level = 0.95
    /// The bootstrap's fixed seed (the draws are `BootstrapPlan(n:resamples:seed:stream: "seeds")`'s).
    public static let bootstrapSeed: UInt64 = 20_240_601

    /// A mean with its percentile-bootstrap interval.
    public struct Interval: Equatable, Sendable {
        public var mean: Double
        public var low: Double
        public var high: Double
    }

    /// The 95% percentile-bootstrap interval of the mean of `values` (at least two): `resamples` resamples of n values
    /// drawn with replacement, the mean of each, and the 2.5th and 97.5th percentiles of those means (linear
    /// interpolation, numpy's default). Values that are differences taken within each seed (a − b read in the same
    /// seed) make this the seed-level bootstrap of paired differences.
    public static func bootstrapMean(_ values: [Double], resamples: Int = resamples) -> Interval {
        precondition(values.count >= 2 && resamples >= 1)
        let e = BootstrapPlan(n: values.count, resamples: resamples, seed: bootstrapSeed, stream: "seeds").mean(values)
        return Interval(mean: e.value, low: e.lower!, high: e.upper!)
    }

    /// Sample standard deviation (n − 1 in the denominator); 0 for one value.
    public static func standardDeviation(_ values: [Double]) -> Double {
        guard values.count > 1 else { return 0 }
        let mean = values.reduce(0, +) / Double(values.count)
        return (values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count - 1)).squareRoot()
    }

    /// Spearman's ρ (scipy's, average ranks for ties); nil when either side is constant (ρ is undefined).
    public static func spearman(_ x: [Double], _ y: [Double]) -> Double? {
        let rho = RankCorrelation.spearman(x, y)
        return rho.isFinite ? rho : nil
    }
}
