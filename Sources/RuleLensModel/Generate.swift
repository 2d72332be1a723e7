import RuleLensNumerics

/// Greedy decoding for batches of prompts.
public enum Generate {
    /// Greedily continues each prompt (token ids, normally starting with bos) until it emits `eos`, has produced
    /// `maxNewTokens` tokens, or fills the context. Returns the generated tokens per prompt, without the `eos`.
    ///
    /// Prompts are grouped by length, so each forward runs a dense [batch, seqLen] block with no padding, and finished
    /// rows leave the batch. With `cached` (the default; GPT-2 and the Llama/Qwen2 family without injections or hooks) the
    /// prompt runs once and every new token is one position attending to a key/value cache (`KVCache`,
    /// `CachedDecoder.decode`); otherwise every new token
    /// re-runs the forward over the whole sequence. Both give the same tokens (logits agree to rounding).
    /// `hooks` (optional) run on every forward, so an intervention applies at every generated token: cached when every
    /// site they touch is one a cached step fires (`CachedDecoder.decodeHookSites`: block residuals, z, attn_out,
    /// mlp_out; the callbacks then see the new positions only, from `HookSet.firstPosition` on), else uncached;
    /// `willRun(rows)` is told which prompts (indices into `prompts`) the next forward's batch rows hold;
    /// `progress(done)` is called after each batch of prompts is decoded, with the number of prompts done.
    public static func greedy(_ model: any LanguageModel, prompts: [[Int32]], maxNewTokens: Int, eos: Int32 = 2,
                              batchSize: Int = 64, hooks: HookSet? = nil,
                              willRun: ((_ rows: [Int]) -> Void)? = nil, cached: Bool = true,
                              progress: ((Int) -> Void)? = nil) -> [[Int32]] {
        if cached, let decoder = model as? any CachedDecoder, decoder.supportsCachedDecoding,
           hooks?.touchesOnly(decoder.decodeHookSites, sites: decoder.hookSites) ?? true {
            return greedyCached(decoder, prompts: prompts, maxNewTokens: maxNewTokens, eos: eos, batchSize: batchSize,
                                hooks: hooks, willRun: willRun, progress: progress)
        }
        // Inference only: let every block share one block's activation buffers while decoding.
        let retained = model.retainsActivationsForBackward
        model.retainsActivationsForBackward = false
        defer { model.retainsActivationsForBackward = retained }
        var results = [[Int32]](repeating: [], count: prompts.count)
        let nCtx = model.contextLength, vocab = model.vocabSize
        var byLength: [Int: [Int]] = [:]
        for (i, p) in prompts.enumerated() where !p.isEmpty && p.count <= nCtx { byLength[p.count, default: []].append(i) }
        // Prompts that cannot be decoded (empty, or filling the context) count as done from the start.
        var done = prompts.count - byLength.values.reduce(0) { $0 + $1.count }
        for length in byLength.keys.sorted() {
            let members = byLength[length]!
            for chunkStart in stride(from: 0, to: members.count, by: max(1, batchSize)) {
                var active = Array(members[chunkStart..<min(members.count, chunkStart + max(1, batchSize))])
                defer { done += min(members.count, chunkStart + max(1, batchSize)) - chunkStart; progress?(done) }
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

    /// `greedy` with a key/value cache: per group, one pass over the prompts, then one position per step.
    static func greedyCached(_ model: any CachedDecoder, prompts: [[Int32]], maxNewTokens: Int, eos: Int32, batchSize: Int,
                             hooks: HookSet? = nil, willRun: ((_ rows: [Int]) -> Void)? = nil,
                             progress: ((Int) -> Void)? = nil) -> [[Int32]] {
        var results = [[Int32]](repeating: [], count: prompts.count)
        let nCtx = model.contextLength, vocab = model.vocabSize, batchSize = max(1, batchSize)
        var byLength: [Int: [Int]] = [:]
        for (i, p) in prompts.enumerated() where !p.isEmpty && p.count <= nCtx { byLength[p.count, default: []].append(i) }
        // Prompts that cannot be decoded (empty, or filling the context) count as done from the start.
        var done = prompts.count - byLength.values.reduce(0) { $0 + $1.count }
        guard maxNewTokens > 0, let longest = byLength.keys.max() else { return results }
        // One cache for every group: rows for the largest group (at most 1 GiB of keys and values), positions for the
        // longest prompt and its continuation.
        let capacity = min(nCtx, longest + maxNewTokens)
        let rowsInBudget = max(1, (1 << 28) / (model.cacheFloatsPerPosition * capacity))
        let rows = min(batchSize, rowsInBudget, byLength.values.map(\.count).max()!)
        let cache = model.makeKVCache(batch: rows, capacity: capacity)
        for length in byLength.keys.sorted() {
            let members = byLength[length]!
            for chunkStart in stride(from: 0, to: members.count, by: rows) {
                var active = Array(members[chunkStart..<min(members.count, chunkStart + rows)])
                defer { done += min(members.count, chunkStart + rows) - chunkStart; progress?(done) }
                cache.reset(batch: active.count)
                willRun?(active)
                var logits = model.decode(tokens: active.flatMap { prompts[$0] }, batch: active.count, seqLen: length, cache: cache, hooks: hooks)
                var generated = 0
                while true {
                    // logits[row, :] predict position cache.length of each active row.
                    var kept: [Int] = [], stillActive: [Int] = []
                    for (row, i) in active.enumerated() {
                        let last = logits + row * vocab
                        var best = 0
                        var bestValue = last[0]
                        for v in 1..<vocab where last[v] > bestValue { best = v; bestValue = last[v] }
                        if Int32(best) == eos { continue }
                        results[i].append(Int32(best))
                        kept.append(row); stillActive.append(i)
                    }
                    generated += 1
                    // Same stopping rule as the uncached loop: at most maxNewTokens, and no position past the context.
                    if stillActive.isEmpty || generated >= maxNewTokens || cache.length >= nCtx { break }
                    if kept.count < active.count { cache.keep(rows: kept) }
                    active = stillActive
                    willRun?(active)
                    logits = model.decode(tokens: active.map { results[$0].last! }, batch: active.count, seqLen: 1, cache: cache, hooks: hooks)
                }
            }
        }
        return results
    }
}
