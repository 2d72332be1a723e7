import RuleLensNumerics

extension Analysis {
    /// Leave-one-out k-nearest-neighbour accuracy: each example is classified by a majority vote of its `k`
    /// nearest other examples (Euclidean); ties in the vote go to the smallest class id, as scikit-learn's
    /// `KNeighborsClassifier` (uniform weights). Distances come from blocked BLAS products.
    public static func knnAccuracy(_ x: FloatMatrix, _ labels: Labels, k: Int = 5, name: String = "data") throws -> Double {
        try requireFinite(x, name)
        try requireClasses(labels, name)
        let n = x.rows
        guard k >= 1, k <= n - 1 else {
            throw RuleLensError("\(name): k-NN with k = \(k) needs 1 ≤ k ≤ examples − 1 = \(n - 1)", fix: "choose a smaller --k or dump more examples")
        }
        let classes = labels.classCount
        var correct = [Int](repeating: 0, count: n)
        let distances = PairwiseDistances(x)
        correct.withUnsafeMutableBufferPointer { out in
            distances.forEachBlock(squared: true) { start, end, block in
                Parallel.forRanges(end - start, minPerThread: 8) { lo, hi in
                    var bestD = [Float](repeating: 0, count: k), bestI = [Int](repeating: 0, count: k)
                    var votes = [Int](repeating: 0, count: classes)
                    for r in lo..<hi {
                        let i = start + r, row = block + r * n
                        var filled = 0
                        for j in 0..<n where j != i {
                            let v = row[j]
                            if filled == k && v >= bestD[k - 1] { continue }
                            // insertion into the sorted top-k (ties keep the lower index first)
                            var p = filled < k ? filled : k - 1
                            while p > 0 && bestD[p - 1] > v { bestD[p] = bestD[p - 1]; bestI[p] = bestI[p - 1]; p -= 1 }
                            bestD[p] = v; bestI[p] = j
                            if filled < k { filled += 1 }
                        }
                        for c in 0..<classes { votes[c] = 0 }
                        for t in 0..<k { votes[labels.ids[bestI[t]]] += 1 }
                        var winner = 0
                        for c in 1..<classes where votes[c] > votes[winner] { winner = c }
                        out[i] = winner == labels.ids[i] ? 1 : 0
                    }
                }
            }
        }
        return Double(correct.reduce(0, +)) / Double(n)
    }
}
