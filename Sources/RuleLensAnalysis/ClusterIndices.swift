import RuleLensNumerics

/// Per-class means and sizes in Double, shared by the scatter-based indices.
struct ClassMoments {
    let d: Int
    let sizes: [Int]
    let classMeans: [[Double]]   // [k][d]
    let globalMean: [Double]     // [d]

    init(_ x: FloatMatrix, _ labels: Labels) {
        let n = x.rows, d = x.cols, k = labels.classCount
        var sums = [[Double]](repeating: [Double](repeating: 0, count: d), count: k)
        var global = [Double](repeating: 0, count: d)
        for i in 0..<n {
            let c = labels.ids[i], row = x.ptr + i * d
            for j in 0..<d { let v = Double(row[j]); sums[c][j] += v; global[j] += v }
        }
        let sizes = labels.classSizes
        self.d = d; self.sizes = sizes
        classMeans = (0..<k).map { c in sums[c].map { $0 / Double(max(sizes[c], 1)) } }
        globalMean = global.map { $0 / Double(max(n, 1)) }
    }
}

extension Analysis {
    /// Davies–Bouldin index, as scikit-learn's `davies_bouldin_score` (lower = better separated):
    /// mean over classes of max over other classes of (Sᵢ + Sⱼ) / ‖μᵢ − μⱼ‖, Sᵢ the mean distance of class i's
    /// examples to its centroid. Documented value 0 when all intra-class spreads or all centroid distances are 0
    /// (as scikit-learn). Needs 2 ≤ classes ≤ examples − 1.
    public static func daviesBouldin(_ x: FloatMatrix, _ labels: Labels, name: String = "data") throws -> Double {
        try requireFinite(x, name)
        try requireClasses(labels, name, maxClassesBelowN: true)
        let m = ClassMoments(x, labels), k = labels.classCount, d = x.cols
        var spread = [Double](repeating: 0, count: k)
        for i in 0..<x.rows {
            let c = labels.ids[i], row = x.ptr + i * d
            var s = 0.0
            for j in 0..<d { let v = Double(row[j]) - m.classMeans[c][j]; s += v * v }
            spread[c] += s.squareRoot()
        }
        for c in 0..<k { spread[c] /= Double(m.sizes[c]) }
        var centroidDistance = [[Double]](repeating: [Double](repeating: 0, count: k), count: k)
        var allZero = true
        for a in 0..<k { for b in 0..<k where a != b {
            var s = 0.0
            for j in 0..<d { let v = m.classMeans[a][j] - m.classMeans[b][j]; s += v * v }
            centroidDistance[a][b] = s.squareRoot()
            if s.squareRoot() > 1e-8 { allZero = false }
        } }
        if spread.allSatisfy({ abs($0) <= 1e-8 }) || allZero { return 0 }
        var total = 0.0
        for a in 0..<k {
            var worst = 0.0
            for b in 0..<k where b != a {
                let dist = centroidDistance[a][b]
                if dist > 0 { worst = max(worst, (spread[a] + spread[b]) / dist) }
            }
            total += worst
        }
        return total / Double(k)
    }

    /// Calinski–Harabasz index, as scikit-learn's `calinski_harabasz_score` (higher = better separated):
    /// [tr(B) / (k − 1)] / [tr(W) / (n − k)]. Documented value 1 when every class is a single point (tr W = 0),
    /// as scikit-learn. Needs 2 ≤ classes ≤ examples − 1.
    public static func calinskiHarabasz(_ x: FloatMatrix, _ labels: Labels, name: String = "data") throws -> Double {
        try requireFinite(x, name)
        try requireClasses(labels, name, maxClassesBelowN: true)
        let m = ClassMoments(x, labels), k = labels.classCount, d = x.cols, n = x.rows
        var between = 0.0, within = 0.0
        for c in 0..<k {
            var s = 0.0
            for j in 0..<d { let v = m.classMeans[c][j] - m.globalMean[j]; s += v * v }
            between += Double(m.sizes[c]) * s
        }
        for i in 0..<n {
            let c = labels.ids[i], row = x.ptr + i * d
            for j in 0..<d { let v = Double(row[j]) - m.classMeans[c][j]; within += v * v }
        }
        if within == 0 { return 1 }
        return between * Double(n - k) / (within * Double(k - 1))
    }

    /// Fisher's discriminant ratio tr(S_w⁻¹ S_b) and the ridge that was needed to compute it.
    public struct FisherRatio: Sendable, Codable, Equatable {
        /// tr((S_w + ridge·I)⁻¹ S_b).
        public let value: Double
        /// 0 when S_w was well conditioned; otherwise the ridge added to its diagonal.
        public let ridge: Double
        /// Condition number of S_w, largest / smallest eigenvalue (+inf when S_w is singular), before any ridge.
        public let condition: Double
        /// Above this condition number the ratio is dominated by S_w's smallest directions and flagged as unreliable.
        public static let illConditioned = 1e6
        /// Whether S_w's condition number exceeds `illConditioned` (the value may be inflated by noise directions).
        public var isIllConditioned: Bool { !(condition <= Self.illConditioned) }

        public init(value: Double, ridge: Double, condition: Double) {
            self.value = value; self.ridge = ridge; self.condition = condition
        }
    }

    /// Fisher's ratio tr(S_w⁻¹ S_b) with the scatter matrices S_w = Σ_c Σ_{i∈c} (xᵢ − μ_c)(xᵢ − μ_c)ᵀ and
    /// S_b = Σ_c n_c (μ_c − μ)(μ_c − μ)ᵀ (unnormalised sums, as in Fisher's LDA), computed in Double through the
    /// eigendecomposition S_w = V Λ Vᵀ: tr = Σᵢ (vᵢᵀ S_b vᵢ) / (λᵢ + ridge).
    ///
    /// Ridge (documented): when S_w is singular or nearly so — smallest eigenvalue < 1e−8 × largest, as happens
    /// with constant or duplicate columns or with d ≥ n − k — ridge = 1e−3 × tr(S_w) / d is added to every
    /// eigenvalue, and reported. With S_w = 0 (every class a single point) the ratio is undefined: an error.
    public static func fisherRatio(_ x: FloatMatrix, _ labels: Labels, name: String = "data") throws -> FisherRatio {
        try requireFinite(x, name)
        try requireClasses(labels, name)
        let m = ClassMoments(x, labels), k = labels.classCount, d = x.cols, n = x.rows
        // S_w via dgemm of the class-centred data.
        var centred = [Double](repeating: 0, count: n * d)
        for i in 0..<n {
            let c = labels.ids[i], row = x.ptr + i * d
            for j in 0..<d { centred[i * d + j] = Double(row[j]) - m.classMeans[c][j] }
        }
        var sw = [Double](repeating: 0, count: d * d)
        centred.withUnsafeBufferPointer { cp in
            sw.withUnsafeMutableBufferPointer { BLAS.dgemm(.transposed, .none, m: d, n: d, k: n, cp.baseAddress!, cp.baseAddress!, $0.baseAddress!) }
        }
        // S_b = Σ_c n_c δ_c δ_cᵀ, kept as the k weighted difference vectors √n_c δ_c [k][d].
        let deltas: [[Double]] = (0..<k).map { c in
            let w = Double(m.sizes[c]).squareRoot()
            return (0..<d).map { w * (m.classMeans[c][$0] - m.globalMean[$0]) }
        }
        var traceW = 0.0
        for j in 0..<d { traceW += sw[j * d + j] }
        guard traceW > 0 else {
            throw RuleLensError("\(name): the within-class scatter is zero (every class is a single repeated point), so tr(S_w⁻¹ S_b) is undefined",
                                fix: "use more examples per class")
        }
        let (values, vectors) = try LinearAlgebra.symmetricEigen(sw, n: d)
        let largest = values.first ?? 0, smallest = values.last ?? 0
        let ridge = smallest < 1e-8 * largest ? 1e-3 * traceW / Double(d) : 0
        var value = 0.0
        for e in 0..<d {
            var projected = 0.0 // vₑᵀ S_b vₑ = Σ_c (vₑ · √n_c δ_c)²
            for c in 0..<k {
                var dot = 0.0
                for j in 0..<d { dot += vectors[j * d + e] * deltas[c][j] }
                projected += dot * dot
            }
            value += projected / (max(values[e], 0) + ridge)
        }
        return FisherRatio(value: value, ridge: ridge, condition: smallest > 0 ? largest / smallest : .infinity)
    }
}
