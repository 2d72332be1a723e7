import Foundation

/// The saturating curve y = a · x / (x + k) fitted to points (x > 0) by least squares — the shape of "more data helps,
/// then stops helping": `a` is the level it approaches, `k` the x at which half of it is reached. The least-squares
/// optimum (what `scipy.optimize.curve_fit` converges to) found by profiling: for a fixed k the best a is linear, so
/// only log k is searched — a scan over twelve decades around the data, then golden-section refinement.
public struct SaturatingFit: Sendable, Equatable {
    public var a: Double
    public var k: Double
    /// Sum of squared residuals at the fit.
    public var residual: Double

    /// The fitted value at x.
    public func value(_ x: Double) -> Double { a * x / (x + k) }
    /// The share of the asymptote reached at x: x / (x + k).
    public func saturation(_ x: Double) -> Double { x / (x + k) }

    /// Nil when the points cannot determine the curve (fewer than 3, a non-positive or non-finite x, a non-finite y,
    /// or a fit that does not converge).
    public static func fit(x: [Double], y: [Double]) -> SaturatingFit? {
        guard x.count == y.count, x.count >= 3, x.allSatisfy({ $0 > 0 && $0.isFinite }), y.allSatisfy(\.isFinite) else { return nil }
        // For a fixed k the best a is linear: a = Σ y·f / Σ f², f = x/(x+k); the residual is then a function of t = log k.
        func best(_ t: Double) -> (a: Double, sse: Double) {
            let k = exp(t)
            var fy = 0.0, ff = 0.0
            for (xi, yi) in zip(x, y) { let f = xi / (xi + k); fy += f * yi; ff += f * f }
            let a = ff > 0 ? fy / ff : 0
            var sse = 0.0
            for (xi, yi) in zip(x, y) { let r = yi - a * xi / (xi + k); sse += r * r }
            return (a, sse)
        }
        let lo = log(x.min()!) - 6 * log(10.0), hi = log(x.max()!) + 6 * log(10.0)
        // A coarse scan, then golden-section refinement around the best grid point.
        let grid = 400
        var bestT = lo, bestSSE = Double.infinity
        for i in 0...grid {
            let t = lo + (hi - lo) * Double(i) / Double(grid)
            let s = best(t).sse
            if s < bestSSE { bestSSE = s; bestT = t }
        }
        let step = (hi - lo) / Double(grid)
        var l = bestT - step, r = bestT + step
        let phi = (sqrt(5.0) - 1) / 2
        for _ in 0..<200 {
            let m1 = r - phi * (r - l), m2 = l + phi * (r - l)
            if best(m1).sse < best(m2).sse { r = m2 } else { l = m1 }
            if r - l < 1e-12 { break }
        }
        let t = (l + r) / 2
        let (a, sse) = best(t)
        guard a.isFinite, sse.isFinite else { return nil }
        return SaturatingFit(a: a, k: exp(t), residual: sse)
    }
}
