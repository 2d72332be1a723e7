import Foundation

/// Latent-space and reconstruction metrics of a language VAE (as Optimus reports them).
public enum VAEMetrics {
    /// Active units: dimensions whose variance over the data of E[z|x] = μ exceeds `threshold` (0.01), with the
    /// unbiased (N − 1) variance as Optimus. mu: [N, k]. Returns the per-dimension variances too.
    public static func activeUnits(mu: [Float], n: Int, k: Int, threshold: Double = 0.01) -> (count: Int, variances: [Double]) {
        var variances = [Double](repeating: 0, count: k)
        guard n > 1 else { return (0, variances) }
        for j in 0..<k {
            var mean = 0.0
            for i in 0..<n { mean += Double(mu[i * k + j]) }
            mean /= Double(n)
            var s = 0.0
            for i in 0..<n { let x = Double(mu[i * k + j]) - mean; s += x * x }
            variances[j] = s / Double(n - 1)
        }
        return (variances.filter { $0 > threshold }.count, variances)
    }

    /// Optimus's estimate of I(x; z) with one z sample per x and the aggregate posterior q(z) = mean over the set of
    /// q(z|x): E[log q(z|x)] − E[log q(z)], where E[log q(z|x)] is the negative entropy −k/2·log 2π − ½Σ(1 + log σ²).
    /// mu, logvar, z: [N, k]. Computed in Double.
    public static func mutualInformation(mu: [Float], logvar: [Float], z: [Float], n: Int, k: Int) -> Double {
        let log2pi = Foundation.log(2 * Double.pi)
        var negEntropy = 0.0
        for i in 0..<n {
            var s = 0.0
            for j in 0..<k { s += 1 + Double(logvar[i * k + j]) }
            negEntropy += -0.5 * Double(k) * log2pi - 0.5 * s
        }
        negEntropy /= Double(n)
        var logQZ = 0.0
        var density = [Double](repeating: 0, count: n)
        let invVar = logvar.map { Foundation.exp(-Double($0)) }
        var logNorm = [Double](repeating: 0, count: n)
        for m in 0..<n {
            var s = 0.0
            for j in 0..<k { s += Double(logvar[m * k + j]) }
            logNorm[m] = -0.5 * (Double(k) * log2pi + s)
        }
        for i in 0..<n {
            for m in 0..<n {
                var s = 0.0
                for j in 0..<k { let dev = Double(z[i * k + j]) - Double(mu[m * k + j]); s += dev * dev * invVar[m * k + j] }
                density[m] = -0.5 * s + logNorm[m]
            }
            let top = density.max()!
            var sum = 0.0
            for m in 0..<n { sum += Foundation.exp(density[m] - top) }
            logQZ += top + Foundation.log(sum) - Foundation.log(Double(n))
        }
        return negEntropy - logQZ / Double(n)
    }

    /// Corpus BLEU-4 (Papineni et al.) over whitespace-separated words: geometric mean of the clipped n-gram precisions
    /// (n = 1…4, summed over the corpus) times the brevity penalty exp(1 − r/c) when c < r. No smoothing: 0 when some
    /// order has no match.
    public static func bleu(candidates: [String], references: [String]) -> Double {
        var matches = [Int](repeating: 0, count: 4), totals = [Int](repeating: 0, count: 4)
        var c = 0, r = 0
        for (cand, ref) in zip(candidates, references) {
            let cw = cand.split(separator: " ").map(String.init), rw = ref.split(separator: " ").map(String.init)
            c += cw.count; r += rw.count
            for n in 1...4 {
                func grams(_ w: [String]) -> [String: Int] {
                    var out: [String: Int] = [:]
                    if w.count >= n { for i in 0...(w.count - n) { out[w[i..<(i + n)].joined(separator: " "), default: 0] += 1 } }
                    return out
                }
                let cg = grams(cw), rg = grams(rw)
                totals[n - 1] += max(0, cw.count - n + 1)
                for (g, count) in cg { matches[n - 1] += min(count, rg[g] ?? 0) }
            }
        }
        guard c > 0, totals.allSatisfy({ $0 > 0 }), matches.allSatisfy({ $0 > 0 }) else { return 0 }
        var logP = 0.0
        for n in 0..<4 { logP += Foundation.log(Double(matches[n]) / Double(totals[n])) / 4 }
        let bp = c < r ? Foundation.exp(1 - Double(r) / Double(c)) : 1
        return bp * Foundation.exp(logP)
    }
}
