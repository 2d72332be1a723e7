import Foundation
import RuleLensNumerics

/// k-means clustering (Lloyd's algorithm) with seeded k-means++ initialisation, best of `restarts` runs by inertia.
public struct KMeans: Sendable {
    /// Cluster centres [k, d].
    public let centres: FloatMatrix
    /// Cluster of each example.
    public let assignments: [Int]
    /// Sum of squared distances of examples to their centre.
    public let inertia: Double
    /// Lloyd iterations of the winning run.
    public let iterations: Int

    /// Clusters X [n, d] into `k` clusters. Stops when the centres move less than `tolerance` × (mean column
    /// variance) in squared norm (scikit-learn's criterion), or after `maxIterations`.
    public static func fit(_ x: FloatMatrix, k: Int, seed: UInt64 = 0, restarts: Int = 4, maxIterations: Int = 300,
                           tolerance: Double = 1e-4, name: String = "data") throws -> KMeans {
        try Analysis.requireFinite(x, name)
        let n = x.rows, d = x.cols
        guard k >= 1, k <= n else {
            throw RuleLensError("\(name): k-means with k = \(k) clusters needs 1 ≤ k ≤ examples (\(n))", fix: "use fewer clusters or more examples")
        }
        // Squared distances of data far from size 1 overflow (or underflow) float32: cluster a copy scaled by a power
        // of two (exact, so the clusters are the same) and scale the centres and the inertia back.
        let largest = Analysis.largestMagnitude(x)
        if largest > 0x1p40 || (largest > 0 && largest < 0x1p-40) {
            let scale = Analysis.unitScale(largest)
            let scaled = x.copy()
            for i in 0..<scaled.count { scaled.ptr[i] *= scale }
            let r = try fit(scaled, k: k, seed: seed, restarts: restarts, maxIterations: maxIterations, tolerance: tolerance, name: name)
            let centres = r.centres.copy()
            for i in 0..<centres.count { centres.ptr[i] /= scale }
            return KMeans(centres: centres, assignments: r.assignments, inertia: r.inertia / Double(scale) / Double(scale), iterations: r.iterations)
        }
        var colMean = [Double](repeating: 0, count: d), colSq = [Double](repeating: 0, count: d)
        for i in 0..<n { for j in 0..<d { let v = Double(x.ptr[i * d + j]); colMean[j] += v; colSq[j] += v * v } }
        var meanVariance = 0.0
        for j in 0..<d { let m = colMean[j] / Double(n); meanVariance += colSq[j] / Double(n) - m * m }
        let tol = tolerance * max(meanVariance / Double(d), 0)

        var norms = [Float](repeating: 0, count: n)
        for i in 0..<n { var s: Float = 0; for j in 0..<d { s += x.ptr[i * d + j] * x.ptr[i * d + j] }; norms[i] = s }

        var best: KMeans? = nil
        for run in 0..<max(1, restarts) {
            var rng = SeededRNG(seed: seed, stream: "kmeans-\(run)")
            let centres = plusPlus(x, norms, k: k, rng: &rng)
            let result = lloyd(x, norms, centres: centres, maxIterations: maxIterations, tol: tol)
            if best == nil || result.inertia < best!.inertia { best = result }
        }
        return best!
    }

    /// k-means++: first centre uniform, then each next centre drawn with probability ∝ squared distance to the nearest chosen one.
    static func plusPlus(_ x: FloatMatrix, _ norms: [Float], k: Int, rng: inout SeededRNG) -> FloatMatrix {
        let n = x.rows, d = x.cols
        let centres = FloatMatrix(rows: k, cols: d)
        var nearest = [Double](repeating: .infinity, count: n)
        var pick = rng.int(below: n)
        for c in 0..<k {
            (centres.ptr + c * d).update(from: x.ptr + pick * d, count: d)
            let centre = centres.ptr + c * d
            var total = 0.0
            for i in 0..<n {
                var s: Float = 0
                let row = x.ptr + i * d
                for j in 0..<d { let v = row[j] - centre[j]; s += v * v }
                nearest[i] = min(nearest[i], Double(s)); total += nearest[i]
            }
            if c + 1 == k { break }
            if total <= 0 { pick = rng.int(below: n); continue }
            var target = rng.uniformDouble() * total
            pick = n - 1
            for i in 0..<n { target -= nearest[i]; if target < 0 { pick = i; break } }
        }
        return centres
    }

    static func lloyd(_ x: FloatMatrix, _ norms: [Float], centres: FloatMatrix, maxIterations: Int, tol: Double) -> KMeans {
        let n = x.rows, d = x.cols, k = centres.rows
        let dots = FloatBuffer(count: n * k)
        var assign = [Int](repeating: 0, count: n)
        var inertia = 0.0, iterations = 0
        func assignAll() -> Double {
            var cNorm = [Float](repeating: 0, count: k)
            for c in 0..<k { var s: Float = 0; for j in 0..<d { s += centres.ptr[c * d + j] * centres.ptr[c * d + j] }; cNorm[c] = s }
            BLAS.sgemm(.none, .transposed, m: n, n: k, k: d, x.ptr, centres.ptr, dots.ptr)
            var total = 0.0
            for i in 0..<n {
                var bestC = 0, bestD = Float.infinity
                for c in 0..<k {
                    let v = norms[i] + cNorm[c] - 2 * dots.ptr[i * k + c]
                    if v < bestD { bestD = v; bestC = c }
                }
                assign[i] = bestC; total += Double(max(bestD, 0))
            }
            return total
        }
        while iterations < maxIterations {
            inertia = assignAll()
            iterations += 1
            // Update step in Double; an emptied cluster keeps its centre.
            var sums = [Double](repeating: 0, count: k * d), counts = [Int](repeating: 0, count: k)
            for i in 0..<n {
                let c = assign[i]; counts[c] += 1
                for j in 0..<d { sums[c * d + j] += Double(x.ptr[i * d + j]) }
            }
            var shift = 0.0
            for c in 0..<k where counts[c] > 0 {
                for j in 0..<d {
                    let v = Float(sums[c * d + j] / Double(counts[c]))
                    let delta = Double(v - centres.ptr[c * d + j]); shift += delta * delta
                    centres.ptr[c * d + j] = v
                }
            }
            if shift <= tol { break }
        }
        inertia = assignAll()
        return KMeans(centres: centres, assignments: assign, inertia: inertia, iterations: iterations)
    }
}

extension Analysis {
    /// Normalised mutual information between two labelings with the arithmetic-mean normaliser,
    /// as scikit-learn's `normalized_mutual_info_score` (natural logs; 1 when both are a single cluster,
    /// 0 when the mutual information is 0).
    public static func normalizedMutualInformation(_ a: [Int], _ b: [Int]) -> Double {
        precondition(a.count == b.count, "NMI: labelings differ in length")
        let n = a.count
        let la = Labels(a), lb = Labels(b)
        if (la.classCount == 1 && lb.classCount == 1) || n == 0 { return 1 }
        var joint = [Int: Int]()
        for i in 0..<n { joint[la.ids[i] * lb.classCount + lb.ids[i], default: 0] += 1 }
        let pa = la.classSizes, pb = lb.classSizes, N = Double(n)
        var mi = 0.0
        for (key, count) in joint.sorted(by: { $0.key < $1.key }) {   // a fixed summation order: the same bits every run
            let i = key / lb.classCount, j = key % lb.classCount
            let c = Double(count)
            mi += c / N * (log(c * N) - log(Double(pa[i]) * Double(pb[j])))
        }
        if abs(mi) < 1e-15 { return 0 }
        func entropy(_ sizes: [Int]) -> Double { sizes.reduce(0.0) { $1 == 0 ? $0 : $0 - Double($1) / N * log(Double($1) / N) } }
        let normaliser = (entropy(pa) + entropy(pb)) / 2
        return mi / normaliser
    }
}
