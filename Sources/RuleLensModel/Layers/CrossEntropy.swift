import Foundation
import RuleLensNumerics

/// Softmax cross-entropy over the vocabulary with a per-position weight mask.
enum CrossEntropy {
    /// loss = Σₙ wₙ·(−log softmax(logits[n])[target[n]]) / Σₙ wₙ over rows with wₙ > 0 (0 if none), and
    /// dlogits[n, :] = wₙ/Σw · (softmax(logits[n]) − onehot(target[n])). logits, dlogits [N, V]; targets, weights [N].
    /// Per-row losses are summed in row order in Double (deterministic).
    static func forwardBackward(dlogits: UnsafeMutablePointer<Float>, logits: UnsafePointer<Float>,
                                targets: UnsafePointer<Int32>, weights: UnsafePointer<Float>, rows N: Int, vocab V: Int) -> Float {
        var weightSum: Double = 0
        for n in 0..<N where weights[n] > 0 { weightSum += Double(weights[n]) }
        let rowLoss = FloatBuffer(count: N)
        let rl = rowLoss.ptr
        let invWeightSum = weightSum > 0 ? Float(1 / weightSum) : 0
        Parallel.forRanges(N, minPerThread: 16) { r0, r1 in
            for n in r0..<r1 {
                let z = logits + n * V, dz = dlogits + n * V
                let w = weights[n]
                guard w > 0 else { dz.update(repeating: 0, count: V); continue }
                var maxLogit = -Float.infinity
                for v in 0..<V { maxLogit = max(maxLogit, z[v]) }
                var sum: Float = 0
                for v in 0..<V { let e = Foundation.exp(z[v] - maxLogit); dz[v] = e; sum += e }
                let target = Int(targets[n])
                rl[n] = w * (Foundation.log(sum) - (z[target] - maxLogit))
                let scale = w * invWeightSum / sum
                for v in 0..<V { dz[v] *= scale }
                dz[target] -= w * invWeightSum
            }
        }
        guard weightSum > 0 else { return 0 }
        var total: Double = 0
        for n in 0..<N where weights[n] > 0 { total += Double(rl[n]) }
        return Float(total / weightSum)
    }
}
