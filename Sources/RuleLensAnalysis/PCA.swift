import RuleLensNumerics

/// Principal component analysis, matching scikit-learn's `PCA` conventions: data centred on the column
/// means, variances with an n − 1 denominator, `explainedVarianceRatio` relative to the total variance of
/// all features, and each component's sign fixed so that its largest-magnitude entry is positive
/// (scikit-learn's `svd_flip(u_based_decision=False)`).
public struct PCA: Sendable {
    /// Column means [d] the data was centred on.
    public let mean: [Float]
    /// Principal axes, one per row: [nComponents, d], unit length, by decreasing variance.
    public let components: FloatMatrix
    /// Variance along each component (n − 1 denominator).
    public let explainedVariance: [Double]
    /// `explainedVariance` over the total variance of the data.
    public let explainedVarianceRatio: [Double]
    /// Total variance of the data (sum of per-column variances, n − 1 denominator).
    public let totalVariance: Double
    /// Number of examples the fit saw.
    public let sampleCount: Int

    public var componentCount: Int { components.rows }

    /// How the principal axes are computed.
    public enum Method: String, Sendable {
        /// Covariance XᵀX accumulated in row chunks (ssyrk, summed in Double) then a Double eigendecomposition
        /// (dsyevd). Streams; fast when n ≫ d.
        case covariance
        /// Thin SVD of the centred data (sgesdd). Needs the whole matrix in memory.
        case svd
    }

    /// Fits on an in-memory matrix X [n, d].
    public static func fit(_ x: FloatMatrix, components k: Int? = nil, method: Method = .covariance,
                           name: String = "data") throws -> PCA {
        switch method {
        // The streaming pass checks for NaN/inf itself (they propagate into its column sums).
        case .covariance: return try fit(streaming: MatrixRowSource(x), components: k, name: name)
        case .svd:
            try Analysis.requireFinite(x, name)
            return try fitSVD(x, components: k, name: name)
        }
    }

    /// Fits from a row source in two passes (column means, then the centred covariance), reading
    /// `chunkRows` rows at a time: memory is O(chunkRows·d + d²) whatever n is.
    public static func fit(streaming source: RowChunkSource, components k: Int? = nil, chunkRows: Int = 4096,
                           name: String = "data") throws -> PCA {
        let n = source.rows, d = source.cols
        try requireShape(n: n, d: d, name)
        let chunkRows = max(1, chunkRows)
        let chunk = FloatBuffer(count: min(chunkRows, n) * d)

        // Pass 1: column means in Double.
        var sum = [Double](repeating: 0, count: d)
        var start = 0
        while start < n {
            let end = min(n, start + chunkRows)
            try source.readRows(start..<end, into: chunk.ptr)
            // Column sums of the chunk in Float runs of ≤ 64 rows (vectorised), added into Double.
            var i = 0
            let m = end - start
            var partial = [Float](repeating: 0, count: d)
            while i < m {
                let runEnd = min(m, i + 64)
                for j in 0..<d { partial[j] = 0 }
                for r in i..<runEnd {
                    let row = chunk.ptr + r * d
                    for j in 0..<d { partial[j] += row[j] }
                }
                for j in 0..<d {
                    if !partial[j].isFinite { throw nonFinite(name, rows: (start + i)..<(start + runEnd)) }
                    sum[j] += Double(partial[j])
                }
                i = runEnd
            }
            start = end
        }
        let meanD = sum.map { $0 / Double(n) }
        let mean = meanD.map { Float($0) }

        // Pass 2: covariance of the centred rows; each chunk's Gram matrix (Float, BLAS) is added in Double.
        var cov = [Double](repeating: 0, count: d * d)
        let gram = FloatBuffer(count: d * d)
        start = 0
        while start < n {
            let end = min(n, start + chunkRows), m = end - start
            try source.readRows(start..<end, into: chunk.ptr)
            mean.withUnsafeBufferPointer { mp in
                Parallel.forRanges(m, minPerThread: 256) { lo, hi in
                    for i in lo..<hi { let row = chunk.ptr + i * d; for j in 0..<d { row[j] -= mp[j] } }
                }
            }
            BLAS.ssyrkTransposed(n: d, k: m, chunk.ptr, gram.ptr)
            for i in 0..<d { for j in i..<d { cov[i * d + j] += Double(gram.ptr[i * d + j]) } }
            start = end
        }
        let denom = Double(n - 1)
        for i in 0..<d { for j in i..<d { let v = cov[i * d + j] / denom; cov[i * d + j] = v; cov[j * d + i] = v } }
        var total = 0.0
        for j in 0..<d { total += cov[j * d + j] }

        let kept = min(k ?? min(n, d), d, n)
        // Only the kept eigenpairs are computed when they are a small part of the spectrum (dsyevr), else all (dsyevd).
        let (values, vectors, stride) = kept * 4 <= d
            ? try { let r = try LinearAlgebra.symmetricEigen(cov, n: d, top: kept); return (r.values, r.vectors, kept) }()
            : try { let r = try LinearAlgebra.symmetricEigen(cov, n: d); return (r.values, r.vectors, d) }()
        let components = FloatMatrix(rows: kept, cols: d)
        for c in 0..<kept { for j in 0..<d { components.ptr[c * d + j] = Float(vectors[j * stride + c]) } }
        let variance = (0..<kept).map { max(values[$0], 0) }
        return finish(mean: mean, components: components, variance: variance, total: total, n: n)
    }

    /// PCA by thin SVD of the centred matrix.
    static func fitSVD(_ x: FloatMatrix, components k: Int?, name: String) throws -> PCA {
        let n = x.rows, d = x.cols
        try requireShape(n: n, d: d, name)
        var sum = [Double](repeating: 0, count: d)
        for i in 0..<n { for j in 0..<d { sum[j] += Double(x.ptr[i * d + j]) } }
        let mean = sum.map { Float($0 / Double(n)) }
        let centred = x.copy()
        for i in 0..<n { for j in 0..<d { centred.ptr[i * d + j] -= mean[j] } }
        var total = 0.0
        for i in 0..<n { for j in 0..<d { let v = Double(centred.ptr[i * d + j]); total += v * v } }
        total /= Double(n - 1)
        let svd = try LinearAlgebra.svd(centred)
        let kept = min(k ?? svd.s.count, svd.s.count)
        let components = FloatMatrix(rows: kept, cols: d)
        components.ptr.update(from: svd.vt.ptr, count: kept * d)
        let variance = (0..<kept).map { Double(svd.s[$0]) * Double(svd.s[$0]) / Double(n - 1) }
        return finish(mean: mean, components: components, variance: variance, total: total, n: n)
    }

    static func finish(mean: [Float], components: FloatMatrix, variance: [Double], total: Double, n: Int) -> PCA {
        let d = components.cols
        // Sign convention: the largest-magnitude entry of each component is positive.
        for c in 0..<components.rows {
            let row = components.ptr + c * d
            var best = 0
            for j in 1..<max(d, 1) where abs(row[j]) > abs(row[best]) { best = j }
            if row[best] < 0 { for j in 0..<d { row[j] = -row[j] } }
        }
        // All-constant data has no variance to explain: the ratio is defined as 0 rather than 0/0.
        let ratio = variance.map { total > 0 ? $0 / total : 0 }
        return PCA(mean: mean, components: components, explainedVariance: variance, explainedVarianceRatio: ratio,
                   totalVariance: total, sampleCount: n)
    }

    /// Projects X [n, d] onto the components: (X − mean) · componentsᵀ → [n, nComponents].
    public func transform(_ x: FloatMatrix) -> FloatMatrix {
        precondition(x.cols == mean.count, "transform: data has \(x.cols) columns, PCA was fit on \(mean.count)")
        let centred = x.copy(), d = x.cols
        for i in 0..<x.rows { for j in 0..<d { centred.ptr[i * d + j] -= mean[j] } }
        let out = FloatMatrix(rows: x.rows, cols: componentCount)
        if x.rows > 0 && componentCount > 0 {
            BLAS.sgemm(.none, .transposed, m: x.rows, n: componentCount, k: d, centred.ptr, components.ptr, out.ptr)
        }
        return out
    }

    static func requireShape(n: Int, d: Int, _ name: String) throws {
        guard n >= 2, d >= 1 else {
            throw RuleLensError("\(name): PCA needs at least 2 examples and 1 feature, got \(n) × \(d)",
                                fix: "dump more examples or choose a non-empty site")
        }
    }

    static func nonFinite(_ name: String, rows: Range<Int>) -> RuleLensError {
        RuleLensError("\(name): rows \(rows.lowerBound)..<\(rows.upperBound) contain NaN or infinite values",
                      fix: "re-run the dump (the model may have diverged) or drop the affected examples")
    }
}
