import RuleLensNumerics

/// Greedy decoding for batches of prompts.
public enum Generate {
    /// Greedily continues each prompt (token ids, normally starting with bos) until it emits `eos`, has produced
    /// `maxNewTokens` tokens, or fills the context. Returns the generated tokens per prompt, without the `eos`.
    ///
    /// Prompts are grouped by length, so each forward runs a dense [batch, seqLen] block with no padding; every
    /// new token re-runs the forward over the whole sequence (no KV cache), and finished rows leave the batch.
    /// `hooks` (optional) run on every forward, so an intervention applies at every generated token;
    /// `willRun(rows)` is told which prompts (indices into `prompts`) the next forward's batch rows hold.
    public static func greedy(_ model: GPT, prompts: [[Int32]], maxNewTokens: Int, eos: Int32 = 2,
                              batchSize: Int = 64, hooks: HookSet? = nil,
                              willRun: ((_ rows: [Int]) -> Void)? = nil) -> [[Int32]] {
        // Inference only: let every block share one block's activation buffers while decoding.
        let retained = model.retainsActivationsForBackward
        model.retainsActivationsForBackward = false
        defer { model.retainsActivationsForBackward = retained }
        var results = [[Int32]](repeating: [], count: prompts.count)
        let nCtx = model.config.nCtx, vocab = model.config.vocabSize
        var byLength: [Int: [Int]] = [:]
        for (i, p) in prompts.enumerated() where !p.isEmpty && p.count <= nCtx { byLength[p.count, default: []].append(i) }
        for length in byLength.keys.sorted() {
            let members = byLength[length]!
            for chunkStart in stride(from: 0, to: members.count, by: max(1, batchSize)) {
                var active = Array(members[chunkStart..<min(members.count, chunkStart + max(1, batchSize))])
                var seqLen = length
                var generated = 0
                while !active.isEmpty && generated < maxNewTokens && seqLen <= nCtx {
                    // tokens: [batch, seqLen], each row its prompt plus what it generated so far.
                    var tokens = [Int32]()
                    tokens.reserveCapacity(active.count * seqLen)
                    for i in active { tokens += prompts[i]; tokens += results[i] }
                    willRun?(active)
                    let logits = model.forward(tokens: tokens, batch: active.count, seqLen: seqLen, hooks: hooks)
                    var stillActive: [Int] = []
                    for (row, i) in active.enumerated() {
                        // logits[row, seqLen-1, :] — the next-token distribution.
                        let last = logits + (row * seqLen + seqLen - 1) * vocab
                        var best = 0
                        var bestValue = last[0]
                        for v in 1..<vocab where last[v] > bestValue { best = v; bestValue = last[v] }
                        if Int32(best) == eos { continue }
                        results[i].append(Int32(best))
                        stillActive.append(i)
                    }
                    active = stillActive
                    seqLen += 1
                    generated += 1
                }
            }
        }
        return results
    }
}
