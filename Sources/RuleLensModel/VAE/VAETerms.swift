import Foundation
import RuleLensNumerics

extension VAE {
    /// Per-example terms of the last `forward` (in Double from its logits, μ and log σ²): reconstruction Σ CE over the
    /// counted positions, KL, KL with free bits, the classifier's cross-entropy (supervised models with labels), and
    /// the teacher-forced arg-max hits over the counted positions (token accuracy).
    public func perExampleTerms(_ batch: VAEBatch, logits: UnsafePointer<Float>) -> [ExampleTerms] {
        let c = config, V = c.vocabSize, k = c.latentSize, Td = batch.decLen
        return (0..<batch.batch).map { b in
            var rec = 0.0, hits = 0, counted = 0
            for t in 0..<Td where batch.lossMask[b * Td + t] > 0 {
                let row = logits + (b * Td + t) * V
                var best = 0
                var m = -Double.infinity
                for v in 0..<V { m = max(m, Double(row[v])); if row[v] > row[best] { best = v } }
                var sum = 0.0
                for v in 0..<V { sum += Foundation.exp(Double(row[v]) - m) }
                let target = Int(batch.decTargets[b * Td + t])
                rec += m + Foundation.log(sum) - Double(row[target])
                counted += 1
                if best == target { hits += 1 }
            }
            var kl = 0.0, klFB = 0.0
            for j in 0..<k {
                let mu = Double(self.mu.ptr[b * k + j]), lv = Double(self.logvar.ptr[b * k + j])
                let value = 0.5 * (mu * mu + Foundation.exp(lv) - lv - 1)
                kl += value
                if Float(value) > c.freeBits { klFB += value }
            }
            var cls: Double? = nil
            var predicted: Int? = nil
            if c.supervised {
                let C = c.nClasses, row = classLogits.ptr + b * C
                var m = -Double.infinity, best = 0
                for i in 0..<C { m = max(m, Double(row[i])); if row[i] > row[best] { best = i } }
                predicted = best
                if let labels = batch.labels {
                    var sum = 0.0
                    for i in 0..<C { sum += Foundation.exp(Double(row[i]) - m) }
                    cls = m + Foundation.log(sum) - Double(row[Int(labels[b])])
                }
            }
            return ExampleTerms(reconstruction: rec, kl: kl, klFreeBits: klFB, classifierLoss: cls, predictedClass: predicted,
                                tokenHits: hits, tokensCounted: counted)
        }
    }

    public struct ExampleTerms: Sendable {
        public var reconstruction: Double, kl: Double, klFreeBits: Double
        public var classifierLoss: Double?
        public var predictedClass: Int?
        public var tokenHits: Int, tokensCounted: Int
        public var elbo: Double { -(reconstruction + kl) }
    }
}
