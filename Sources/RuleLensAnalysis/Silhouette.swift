import RuleLensNumerics

extension Analysis {
    /// Mean silhouette coefficient with Euclidean distances, as scikit-learn's `silhouette_score`:
    /// s(i) = (b − a) / max(a, b) with a the mean distance to the rest of i's class and b the smallest mean
    /// distance to another class; s(i) = 0 for an example alone in its class (and where a = b = 0).
    ///
    /// Exact over all n² pairs (BLAS, in blocks of rows). With `sampleSize`, the score is computed on that many
    /// examples drawn without replacement with `seed` (as scikit-learn's `sample_size` does; the draw differs).
    /// Needs 2 ≤ classes ≤ examples − 1.
    public static func silhouette(_ x: FloatMatrix, _ labels: Labels, sampleSize: Int? = nil, seed: UInt64 = 0,
                                  name: String = "data") throws -> Double {
        precondition(x.rows == labels.count, "silhouette: \(x.rows) rows but \(labels.count) labels")
        try requireFinite(x, name)
        var data = x, labs = labels
        if let s = sampleSize, s < x.rows {
            guard s >= 2 else { throw RuleLensError("silhouette sample size \(s) is too small", fix: "use a sample size of at least 2") }
            var rng = SeededRNG(seed: seed, stream: "silhouette")
            var idx = Array(0..<x.rows)
            rng.shuffle(&idx)
            let chosen = Array(idx.prefix(s))
            data = x.selectingRows(chosen); labs = labels.subset(chosen)
        }
        try requireClasses(labs, name, minClasses: 2, maxClassesBelowN: true)
        return silhouetteSamples(data, labs).reduce(0, +) / Double(labs.count)
    }

    /// Per-example silhouette values (same definition as `silhouette`), in the order of the rows of `x`.
    public static func silhouetteSamples(_ x: FloatMatrix, _ labels: Labels) -> [Double] {
        let n = x.rows, k = labels.classCount
        // Sort rows by class so each class is a contiguous column range of a distance row.
        let order = (0..<n).sorted { (labels.ids[$0], $0) < (labels.ids[$1], $1) }
        let sorted = x.selectingRows(order)
        let sortedIds = order.map { labels.ids[$0] }
        var bounds = [Int](repeating: 0, count: k + 1)
        for id in sortedIds { bounds[id + 1] += 1 }
        for c in 0..<k { bounds[c + 1] += bounds[c] }
        let sizes = labels.classSizes

        var result = [Double](repeating: 0, count: n)
        let distances = PairwiseDistances(sorted)
        result.withUnsafeMutableBufferPointer { out in
            distances.forEachBlock { start, end, block in
                Parallel.forRanges(end - start, minPerThread: 8) { lo, hi in
                    var sums = [Double](repeating: 0, count: k)
                    for r in lo..<hi {
                        let row = block + r * n
                        for c in 0..<k {
                            // Float partial sums over short runs (vectorised), totals in Double.
                            var total = 0.0
                            var j = bounds[c]
                            let e = bounds[c + 1]
                            while j < e {
                                let runEnd = min(e, j + 512)
                                var s0: Float = 0, s1: Float = 0, s2: Float = 0, s3: Float = 0
                                while j + 4 <= runEnd { s0 += row[j]; s1 += row[j + 1]; s2 += row[j + 2]; s3 += row[j + 3]; j += 4 }
                                while j < runEnd { s0 += row[j]; j += 1 }
                                total += Double(s0) + Double(s1) + Double(s2) + Double(s3)
                            }
                            sums[c] = total
                        }
                        let own = sortedIds[start + r]
                        var value = 0.0
                        if sizes[own] > 1 {
                            let a = sums[own] / Double(sizes[own] - 1)
                            var b = Double.infinity
                            for c in 0..<k where c != own && sizes[c] > 0 { b = min(b, sums[c] / Double(sizes[c])) }
                            let m = max(a, b)
                            value = m > 0 && b.isFinite ? (b - a) / m : 0
                        }
                        out[order[start + r]] = value
                    }
                }
            }
        }
        return result
    }
}
