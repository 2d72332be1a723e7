import Foundation
import RuleLensModel
import RuleLensTasks

extension EvalJob {
    /// Exact match without decoding: one teacher-forced forward pass per example, correct when the argmax at every
    /// target position (and at eos) is the target token. This is the same verdict as greedy decoding's exact match
    /// — greedy reproduces the target exactly when each of its steps, given the right prefix, picks the right
    /// token — at the cost of one forward instead of one per generated token (long rule-following traces).
    public static func teacherForcedExactMatch(_ model: any LanguageModel, items: [TokenizedExample], batchSize: Int) -> [Bool] {
        let vocab = model.vocabSize
        let retained = model.retainsActivationsForBackward
        model.retainsActivationsForBackward = false   // forward only
        defer { model.retainsActivationsForBackward = retained }
        var out = [Bool](repeating: false, count: items.count)
        // Similar lengths together, so little padding is computed.
        let order = items.indices.sorted { items[$0].tokens.count < items[$1].tokens.count }
        for start in stride(from: 0, to: order.count, by: max(1, batchSize)) {
            let rows = Array(order[start..<min(order.count, start + max(1, batchSize))])
            let batch = Batching.makeBatch(rows.map { items[$0] }, lossOn: .target)
            // logits: [batch, seqLen, vocab]
            let logits = model.forward(tokens: batch.inputs, batch: batch.batch, seqLen: batch.seqLen, hooks: nil)
            for (r, index) in rows.enumerated() {
                var ok = true
                for t in 0..<batch.seqLen where batch.lossMask[r * batch.seqLen + t] > 0 {
                    let z = logits + (r * batch.seqLen + t) * vocab
                    var best = 0
                    var bestValue = z[0]
                    for v in 1..<vocab where z[v] > bestValue { best = v; bestValue = z[v] }
                    if Int32(best) != batch.targets[r * batch.seqLen + t] { ok = false; break }
                }
                out[index] = ok
            }
        }
        return out
    }
}
