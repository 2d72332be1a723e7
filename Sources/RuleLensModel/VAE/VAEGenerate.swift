import RuleLensNumerics

extension VAE {
    /// Greedy decoding from latents z [B·k]: each row starts from its prompt (`[bos]` when autoencoding, `[bos] + prompt`
    /// with decode `target`) and grows by the arg-max token until `eos`, `maxNewTokens` or the context is reached.
    /// Returns the generated tokens of each row (eos excluded). Rows are right-padded; attention is causal, so padding
    /// never affects a row's own next token.
    public func greedy(z: [Float], prompts: [[Int32]], maxNewTokens: Int) -> [[Int32]] {
        let B = prompts.count, V = config.vocabSize, ctx = config.nPositions
        precondition(B > 0 && prompts.allSatisfy { !$0.isEmpty && $0.count <= ctx }, "greedy: prompts must be non-empty and fit the context")
        let retained = retainsActivationsForBackward
        retainsActivationsForBackward = false
        defer { retainsActivationsForBackward = retained }
        var rows = prompts
        var generated = [[Int32]](repeating: [], count: B)
        var done = [Bool](repeating: false, count: B)
        for _ in 0..<maxNewTokens {
            let active = (0..<B).filter { !done[$0] && rows[$0].count < ctx }
            if active.isEmpty { break }
            let T = rows.map(\.count).max()!
            var tokens = [Int32](repeating: 0, count: B * T)
            for b in 0..<B { for (t, id) in rows[b].enumerated() { tokens[b * T + t] = id } }
            setLatent(z, batch: B)
            let logits = decode(decInputs: tokens, seqLen: T)
            for b in active {
                let row = logits + (b * T + rows[b].count - 1) * V
                var best = 0
                for v in 1..<V where row[v] > row[best] { best = v }
                if Int32(best) == Int32(config.eosTokenId) { done[b] = true; continue }
                rows[b].append(Int32(best)); generated[b].append(Int32(best))
            }
            for b in 0..<B where rows[b].count >= ctx { done[b] = true }
        }
        return generated
    }
}
