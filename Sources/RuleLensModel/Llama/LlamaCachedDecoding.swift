import RuleLensNumerics

extension LlamaModel: CachedDecoder {
    /// Every model of this family decodes with a cache (rotary or no positions; grouped-query heads cache Hkv heads).
    public var supportsCachedDecoding: Bool { true }
    /// Keys and values of the key/value heads only: [batch, capacity, Hkv·dh] per layer (the rotated keys).
    public func makeKVCache(batch: Int, capacity: Int) -> KVCache {
        KVCache(layers: config.nLayer, width: config.kvWidth, contextLength: config.nCtx, batch: batch, capacity: capacity)
    }
    public var cacheFloatsPerPosition: Int { 2 * config.nLayer * config.kvWidth }

    /// Runs tokens [B, T] as positions `cache.length ..< cache.length + T` of each row (see `CachedDecoder.decode`).
    ///
    /// The same kernels as `forward`: q and k are rotated by their absolute positions (P + t), the cached keys are stored
    /// rotated, and the cached positions enter attention as prefix slots, so logits agree with the full forward to
    /// rounding. Inference only: nothing kept for `backward()`; hooks only through `decode(…hooks:)`.
    public func decode(tokens: [Int32], batch B: Int, seqLen T: Int, cache: KVCache) -> UnsafeMutablePointer<Float> {
        decode(tokens: tokens, batch: B, seqLen: T, cache: cache, hooks: nil)
    }

    public var decodeHookSites: Set<String> { DecodeHookSites.sites(layers: config.nLayer) }

    /// `decode` with hooks on `decodeHookSites` ([B, T, d] or z [B, T, H, dh] at the new positions; edits flow on).
    public func decode(tokens: [Int32], batch B: Int, seqLen T: Int, cache: KVCache, hooks: HookSet?) -> UnsafeMutablePointer<Float> {
        let c = config
        let P = cache.length, N = B * T, d = c.dModel, dMLP = c.dMLP, V = c.vocabSize
        let qW = c.qWidth, kvW = c.kvWidth, H = c.nHead, Hkv = c.nKVHead, dh = c.dHead
        let plan = hooks?.plan(sites: hookSites)
        precondition(plan == nil || hooks!.touchesOnly(decodeHookSites, sites: hookSites), "decode: hooks on sites a cached step does not fire")
        hooks?.firstPosition = P
        defer { hooks?.firstPosition = 0 }
        let residShape = [B, T, d], zShape = [B, T, H, dh]
        precondition(B == cache.batch && T > 0 && tokens.count == N, "decode: \(tokens.count) tokens for the cache's \(cache.batch) rows × \(T)")
        precondition(P + T <= cache.capacity, "decode: \(P + T) positions exceed the cache's capacity of \(cache.capacity)")
        precondition(tokens.allSatisfy { $0 >= 0 && Int($0) < V }, "decode: token id outside 0..<\(V)")
        // Working buffers: residual, norm output [N, d]; q [N, H·dh], k, v [N, Hkv·dh]; z [N, H·dh]; the block output
        // [N, d]; gate, up, hidden [N, dMLP]; rstd [N]; pattern [B, H, T, P + T]; the last rows and logits.
        let resid = cache.scratchBuffer("resid", N * d), normed = cache.scratchBuffer("normed", N * d)
        let q = cache.scratchBuffer("q", N * qW), k = cache.scratchBuffer("k", N * kvW), v = cache.scratchBuffer("v", N * kvW)
        let z = cache.scratchBuffer("z", N * qW), blockOut = cache.scratchBuffer("blockOut", N * d)
        let gate = cache.scratchBuffer("gate", N * dMLP), up = cache.scratchBuffer("up", N * dMLP)
        let hidden = cache.scratchBuffer("hidden", N * dMLP), rstd = cache.scratchBuffer("rstd", N)
        let pattern = cache.scratchBuffer("pattern", B * H * T * (P + T))
        let last = cache.scratchBuffer("last", B * d), lastNorm = cache.scratchBuffer("lastNorm", B * d)
        let logits = cache.scratchBuffer("logits", B * V)
        let dims = AttentionDims(B: B, T: T, H: H, Hkv: Hkv, dh: dh, P: P, causal: true)

        tokens.withUnsafeBufferPointer { tok in
            Embedding.lookupTokens(out: resid, tokens: tok.baseAddress!, wte: params.embed, rows: N, dModel: d)
        }
        for l in 0..<c.nLayer {
            let w = params.layers[l]
            let site = plan == nil ? [] : DecodeHookSites.names(l)   // resid_pre, z, attn_out, resid_mid, mlp_out, resid_post
            plan?.fire(site[0], resid, residShape)
            RMSNorm.forward(out: normed, rstd: rstd, inp: resid, weight: w.ln1, rows: N, cols: d, eps: c.rmsNormEps)
            Linear.forward(out: q, inp: normed, weight: w.q, bias: w.qBias, rows: N, inDim: d, outDim: qW, layout: .outIn)
            Linear.forward(out: k, inp: normed, weight: w.k, bias: w.kBias, rows: N, inDim: d, outDim: kvW, layout: .outIn)
            Linear.forward(out: v, inp: normed, weight: w.v, bias: w.vBias, rows: N, inDim: d, outDim: kvW, layout: .outIn)
            if let rope {
                // Positions P..<P+T: the new rows' absolute positions.
                Rotary.apply(q, stride: qW, batch: B, seqLen: T, heads: H, dHead: dh, tables: rope, positionOffset: P)
                Rotary.apply(k, stride: kvW, batch: B, seqLen: T, heads: Hkv, dHead: dh, tables: rope, positionOffset: P)
            }
            let input = cache.attentionInput(layer: l, q: q, qStride: qW, k: k, kStride: kvW, v: v, vStride: kvW)
            Attention.forward(z: z, pattern: pattern, input: input, dims: dims)
            cache.append(layer: l, k: k, kStride: kvW, v: v, vStride: kvW, batch: B, seqLen: T)
            plan?.fire(site[1], z, zShape)
            Linear.forward(out: blockOut, inp: z, weight: w.o, bias: w.oBias, rows: N, inDim: qW, outDim: d, layout: .outIn)
            plan?.fire(site[2], blockOut, residShape)
            addElementwise(out: resid, resid, blockOut, count: N * d)
            plan?.fire(site[3], resid, residShape)
            RMSNorm.forward(out: normed, rstd: rstd, inp: resid, weight: w.ln2, rows: N, cols: d, eps: c.rmsNormEps)
            Linear.forward(out: gate, inp: normed, weight: w.gate, bias: w.gateBias, rows: N, inDim: d, outDim: dMLP, layout: .outIn)
            Linear.forward(out: up, inp: normed, weight: w.up, bias: w.upBias, rows: N, inDim: d, outDim: dMLP, layout: .outIn)
            SwiGLU.forward(hidden: hidden, gate: gate, up: up, count: N * dMLP)
            Linear.forward(out: blockOut, inp: hidden, weight: w.down, bias: w.downBias, rows: N, inDim: dMLP, outDim: d, layout: .outIn)
            plan?.fire(site[4], blockOut, residShape)
            addElementwise(out: resid, resid, blockOut, count: N * d)
            plan?.fire(site[5], resid, residShape)
        }
        cache.length = P + T
        // The final norm and the LM head on each row's last position only: logits[B, V] = norm(last)[B, d] · head[V, d]ᵀ
        for b in 0..<B { (last + b * d).update(from: resid + (b * T + T - 1) * d, count: d) }
        RMSNorm.forward(out: lastNorm, rstd: rstd, inp: last, weight: params.norm, rows: B, cols: d, eps: c.rmsNormEps)
        BLAS.sgemmSplit(.none, .transposed, m: B, n: V, k: d, lastNorm, params.head, logits)
        return logits
    }
}
