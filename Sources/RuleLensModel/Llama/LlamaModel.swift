import Foundation
import RuleLensNumerics

/// The Llama/Qwen2 family with a hand-written backward pass, composed from the shared layer kernels.
///
/// Architecture (Hugging Face `LlamaForCausalLM` / `Qwen2ForCausalLM`):
///   x = embed_tokens[tokens]
///   per block: x += o_proj(attention(rope(q_proj(n)), rope(k_proj(n)), v_proj(n))), n = input_layernorm(x)  (RMSNorm)
///              x += down_proj(silu(gate_proj(m)) · up_proj(m)),                     m = post_attention_layernorm(x)
///   logits = norm(x) · lm_headᵀ  (lm_head = embed_tokens when tied)
/// Attention is causal with grouped-query heads (query head h reads key/value head h / (H / Hkv)).
/// Not thread-safe: one forward/backward at a time per instance.
public final class LlamaModel: LanguageModel {
    public let config: LlamaConfig
    /// Weights.
    public let params: LlamaParameters
    /// Gradients, same layout as `params`; `backward()` accumulates into them. Allocated on first use, so
    /// inference (eval, dump) holds the weights only.
    public private(set) lazy var grads = LlamaParameters(config: config)
    let acts: LlamaActivations
    /// cos/sin tables for positions 0..<nCtx (nil without rotary positions).
    let rope: Rotary.Tables?
    public let hookSites: [String]
    private let blockSites: [LlamaBlockSites]
    private var tokens: [Int32] = []
    private var batch = 0, seqLen = 0
    private var lossReady = false
    private var lastForwardRetained = false

    /// As `GPT.retainsActivationsForBackward`: false shares one block's buffers across blocks (inference only).
    public var retainsActivationsForBackward = true

    public var architecture: String { config.family.rawValue }
    public var vocabSize: Int { config.vocabSize }
    public var contextLength: Int { config.nCtx }

    /// Builds a model with Hugging Face's initialisation for this family: every weight matrix and the embedding
    /// N(0, 0.02), RMSNorm weights 1, biases 0. Each tensor draws from its own named RNG stream.
    public init(config: LlamaConfig, seed: UInt64) throws {
        try config.validate()
        self.config = config
        params = LlamaParameters(config: config)
        acts = LlamaActivations(config: config)
        rope = config.positions == .rope ? Rotary.Tables(positions: config.nCtx, dHead: config.dHead, base: config.ropeTheta) : nil
        hookSites = LlamaHookSites.names(for: config)
        blockSites = (0..<config.nLayer).map { LlamaBlockSites(layer: $0) }
        for t in params.tensors {
            let p = params.storage.ptr + t.offset
            if t.name.hasSuffix("layernorm.weight") || t.name == "model.norm.weight" {
                p.update(repeating: 1, count: t.count)
            } else if t.shape.count == 2 {
                var rng = SeededRNG(seed: seed, stream: t.name)
                for i in 0..<t.count { p[i] = 0.02 * rng.normal() }
            }
        }
    }

    public func hookDims(_ site: String) -> [String] { LlamaHookSites.dims(of: site) }
    public func hookShape(_ site: String, batch: Int, seqLen: Int) -> [Int] {
        LlamaHookSites.shape(of: site, config: config, batch: batch, seqLen: seqLen)
    }
    public var parameterTensors: [ParameterTensor] { params.tensors }
    public var parameterStorage: FloatBuffer { params.storage }
    public var gradientStorage: FloatBuffer { grads.storage }
    /// Number of parameters (a tied head counted once).
    public var parameterCount: Int { params.storage.count }

    public func checkInput(tokens: [Int32], batch: Int, seqLen: Int) throws {
        try ModelInput.check(tokens: tokens, batch: batch, seqLen: seqLen, contextLength: config.nCtx, vocabSize: config.vocabSize,
                             contextField: "max_position_embeddings")
    }

    /// Index into `acts.resid` of logical residual i (see `GPT.residSlot`).
    static func residSlot(_ i: Int, retain: Bool) -> Int { retain ? i : (i % 2 == 1 ? 1 : (i / 2) % 2 * 2) }

    /// Logits [batch, seqLen, vocab] for right-padded token rows (causal attention: padding never reaches earlier
    /// positions). Valid until the next forward. Hooks observe or edit sites on the way (inference semantics, as GPT).
    public func forward(tokens: [Int32], batch B: Int, seqLen T: Int, hooks: HookSet?) -> UnsafeMutablePointer<Float> {
        let c = config
        precondition(B > 0 && T > 0 && T <= c.nCtx, "forward: seqLen \(T) must be in 1...\(c.nCtx) and batch \(B) positive")
        precondition(tokens.count == B * T, "forward: \(tokens.count) tokens for batch \(B) × seqLen \(T)")
        precondition(tokens.allSatisfy { $0 >= 0 && Int($0) < c.vocabSize }, "forward: token id outside 0..<\(c.vocabSize)")
        let retain = retainsActivationsForBackward
        acts.ensureForward(batch: B, seqLen: T, layerSlots: retain ? c.nLayer : 1)
        self.tokens = tokens
        batch = B; seqLen = T; lossReady = false; lastForwardRetained = retain
        let plan = hooks?.plan(sites: hookSites)
        if plan != nil { acts.ensureHookScratch(batch: B, seqLen: T) }

        let N = B * T, d = c.dModel, L = c.nLayer, dMLP = c.dMLP, V = c.vocabSize
        let qW = c.qWidth, kvW = c.kvWidth, H = c.nHead, Hkv = c.nKVHead, dh = c.dHead
        let a = acts
        let dims = AttentionDims(B: B, T: T, H: H, Hkv: Hkv, dh: dh)
        let residShape = [B, T, d], qShape = [B, T, H, dh], kvShape = [B, T, Hkv, dh], scaleShape = [B, T, 1]
        let attentionShape = [B, H, T, T], mlpShape = [B, T, dMLP]
        func resid(_ i: Int) -> UnsafeMutablePointer<Float> { a.resid.ptr + Self.residSlot(i, retain: retain) * N * d }

        /// RMSNorm of `inp` rows into `out`; when hooked, `hook_scale` (√(mean(x²)+eps)) and `hook_normalized` fire
        /// before the weight, and edits to either flow on.
        func rmsNorm(scaleSite: String, normalizedSite: String, out: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
                     inp: UnsafePointer<Float>, weight: UnsafePointer<Float>) {
            guard let plan, plan.wants(scaleSite) || plan.wants(normalizedSite) else {
                RMSNorm.forward(out: out, rstd: rstd, inp: inp, weight: weight, rows: N, cols: d, eps: c.rmsNormEps)
                return
            }
            let normalized = a.hookScratch.ptr
            RMSNorm.normalize(normalized: normalized, rstd: rstd, inp: inp, rows: N, cols: d, eps: c.rmsNormEps)
            if plan.wants(scaleSite) {
                let scale = a.scale.ptr, original = a.scale.ptr + N
                for n in 0..<N { scale[n] = 1 / rstd[n]; original[n] = scale[n] }
                plan.fire(scaleSite, scale, scaleShape)
                // An edited scale divides its row anew; untouched rows keep their exact values.
                for n in 0..<N where scale[n] != original[n] {
                    rstd[n] = 1 / scale[n]
                    for i in 0..<d { normalized[n * d + i] = inp[n * d + i] * rstd[n] }
                }
            }
            plan.fire(normalizedSite, normalized, residShape)
            RMSNorm.scale(out: out, normalized: normalized, weight: weight, rows: N, cols: d)
        }

        // Token embedding → resid_pre of block 0.
        tokens.withUnsafeBufferPointer { tok in
            Embedding.lookupTokens(out: resid(0), tokens: tok.baseAddress!, wte: params.embed, rows: N, dModel: d)
        }
        plan?.fire("hook_embed", resid(0), residShape)

        for l in 0..<L {
            let w = params.layers[l], site = blockSites[l]
            let residPre = resid(2 * l), residMid = resid(2 * l + 1), residPost = resid(2 * l + 2)
            let s = retain ? l : 0
            let ln1 = a.ln1.ptr + s * N * d, ln1Rstd = a.ln1Rstd.ptr + s * N
            let q = a.q.ptr + s * N * qW, k = a.k.ptr + s * N * kvW, v = a.v.ptr + s * N * kvW   // [N, H·dh], [N, Hkv·dh]
            let pattern = a.pattern.ptr + s * B * H * T * T                                     // [B, H, T, T]
            let z = a.z.ptr + s * N * qW                                                        // [N, H·dh]
            let ln2 = a.ln2.ptr + s * N * d, ln2Rstd = a.ln2Rstd.ptr + s * N
            let gate = a.gate.ptr + s * N * dMLP, up = a.up.ptr + s * N * dMLP, hidden = a.hidden.ptr + s * N * dMLP

            plan?.fire(site.residPre, residPre, residShape)
            rmsNorm(scaleSite: site.ln1Scale, normalizedSite: site.ln1Normalized, out: ln1, rstd: ln1Rstd, inp: residPre, weight: w.ln1)
            // q[N, H·dh] = ln1 · Wqᵀ + bq;  k, v [N, Hkv·dh]
            Linear.forward(out: q, inp: ln1, weight: w.q, bias: w.qBias, rows: N, inDim: d, outDim: qW, layout: .outIn)
            Linear.forward(out: k, inp: ln1, weight: w.k, bias: w.kBias, rows: N, inDim: d, outDim: kvW, layout: .outIn)
            Linear.forward(out: v, inp: ln1, weight: w.v, bias: w.vBias, rows: N, inDim: d, outDim: kvW, layout: .outIn)
            plan?.fire(site.q, q, qShape)
            plan?.fire(site.k, k, kvShape)
            plan?.fire(site.v, v, kvShape)
            if let rope {
                // Rotary position embedding in place (positions 0..<T of each example).
                Rotary.apply(q, stride: qW, batch: B, seqLen: T, heads: H, dHead: dh, tables: rope)
                Rotary.apply(k, stride: kvW, batch: B, seqLen: T, heads: Hkv, dHead: dh, tables: rope)
                plan?.fire(site.rotQ, q, qShape)
                plan?.fire(site.rotK, k, kvShape)
            }
            let input = AttentionInput(q: q, qStride: qW, k: k, kStride: kvW, v: v, vStride: kvW)
            if let plan, plan.wants(site.attnScores) || plan.wants(site.pattern) {
                Attention.scoresPhase(pattern: pattern, input: input, dims: dims)
                plan.fire(site.attnScores, pattern, attentionShape)
                Attention.softmaxPhase(pattern: pattern, input: input, dims: dims)
                plan.fire(site.pattern, pattern, attentionShape)
                Attention.valuesPhase(z: z, pattern: pattern, input: input, dims: dims)
            } else {
                Attention.forward(z: z, pattern: pattern, input: input, dims: dims)
            }
            plan?.fire(site.z, z, qShape)
            // attn_out[N, d] = z · Woᵀ (+ bo); resid_mid = resid_pre + attn_out (exactly this Float sum)
            Linear.forward(out: a.attnOut.ptr, inp: z, weight: w.o, bias: w.oBias, rows: N, inDim: qW, outDim: d, layout: .outIn)
            plan?.fire(site.attnOut, a.attnOut.ptr, residShape)
            addElementwise(out: residMid, residPre, a.attnOut.ptr, count: N * d)
            plan?.fire(site.residMid, residMid, residShape)
            rmsNorm(scaleSite: site.ln2Scale, normalizedSite: site.ln2Normalized, out: ln2, rstd: ln2Rstd, inp: residMid, weight: w.ln2)
            // SwiGLU MLP: gate, up [N, dMLP]; hidden = silu(gate)·up; mlp_out[N, d] = hidden · Wdownᵀ
            Linear.forward(out: gate, inp: ln2, weight: w.gate, bias: w.gateBias, rows: N, inDim: d, outDim: dMLP, layout: .outIn)
            Linear.forward(out: up, inp: ln2, weight: w.up, bias: w.upBias, rows: N, inDim: d, outDim: dMLP, layout: .outIn)
            plan?.fire(site.mlpPre, gate, mlpShape)
            plan?.fire(site.mlpPreLinear, up, mlpShape)
            SwiGLU.forward(hidden: hidden, gate: gate, up: up, count: N * dMLP)
            plan?.fire(site.mlpPost, hidden, mlpShape)
            Linear.forward(out: a.mlpOut.ptr, inp: hidden, weight: w.down, bias: w.downBias, rows: N, inDim: dMLP, outDim: d, layout: .outIn)
            plan?.fire(site.mlpOut, a.mlpOut.ptr, residShape)
            addElementwise(out: residPost, residMid, a.mlpOut.ptr, count: N * d)
            plan?.fire(site.residPost, residPost, residShape)
        }

        // Final RMSNorm and the LM head: logits[N, V] = lnf[N, d] · head[V, d]ᵀ
        rmsNorm(scaleSite: "ln_final.hook_scale", normalizedSite: "ln_final.hook_normalized", out: a.lnf.ptr, rstd: a.lnfRstd.ptr,
                inp: resid(2 * L), weight: params.norm)
        BLAS.sgemmSplit(.none, .transposed, m: N, n: V, k: d, a.lnf.ptr, params.head, a.logits.ptr)
        plan?.fire("unembed.hook_out", a.logits.ptr, [B, T, V])
        return a.logits.ptr
    }

    /// Masked mean cross-entropy of the last forward (as `GPT.loss`); stores dlogits for `backward()`.
    public func loss(targets: [Int32], lossMask: [Float]) -> Float {
        let N = batch * seqLen, V = config.vocabSize
        precondition(N > 0, "loss: call forward first")
        precondition(targets.count == N && lossMask.count == N, "loss: targets and lossMask need \(N) entries")
        for n in 0..<N where lossMask[n] > 0 {
            precondition(targets[n] >= 0 && Int(targets[n]) < V, "loss: target id \(targets[n]) at position \(n) outside 0..<\(V)")
        }
        acts.ensureBackward(batch: batch, seqLen: seqLen)
        let value = targets.withUnsafeBufferPointer { t in
            lossMask.withUnsafeBufferPointer { m in
                CrossEntropy.forwardBackward(dlogits: acts.dlogits.ptr, logits: acts.logits.ptr, targets: t.baseAddress!,
                                             weights: m.baseAddress!, rows: N, vocab: V)
            }
        }
        lossReady = true
        return value
    }

    /// Backpropagates the last `loss` through the last forward, accumulating into `grads`.
    public func backward() {
        precondition(lossReady, "backward: call forward and loss first")
        precondition(lastForwardRetained, "backward: the last forward ran with retainsActivationsForBackward = false")
        let c = config, B = batch, T = seqLen, N = B * T, d = c.dModel, L = c.nLayer, dMLP = c.dMLP, V = c.vocabSize
        let qW = c.qWidth, kvW = c.kvWidth, H = c.nHead, Hkv = c.nKVHead, dh = c.dHead
        let a = acts, g = grads
        let dims = AttentionDims(B: B, T: T, H: H, Hkv: Hkv, dh: dh)
        func resid(_ i: Int) -> UnsafeMutablePointer<Float> { a.resid.ptr + i * N * d }
        let dresid = a.dresid.ptr, dln = a.dln.ptr

        // LM head: dlnf[N, d] = dlogits[N, V] · head[V, d]; dhead[V, d] += dlogitsᵀ · lnf (into the embedding when tied)
        BLAS.sgemmSplit(.none, .none, m: N, n: d, k: V, a.dlogits.ptr, params.head, dln)
        BLAS.sgemmSplit(.transposed, .none, m: V, n: d, k: N, a.dlogits.ptr, a.lnf.ptr, beta: 1, g.head)
        dresid.update(repeating: 0, count: N * d)
        RMSNorm.backward(dinp: dresid, dweight: g.norm, dout: dln, inp: resid(2 * L), weight: params.norm, rstd: a.lnfRstd.ptr, rows: N, cols: d)

        for l in stride(from: L - 1, through: 0, by: -1) {
            let w = params.layers[l], gw = g.layers[l]
            let ln1 = a.ln1.ptr + l * N * d, ln2 = a.ln2.ptr + l * N * d
            let q = a.q.ptr + l * N * qW, k = a.k.ptr + l * N * kvW, v = a.v.ptr + l * N * kvW
            let pattern = a.pattern.ptr + l * B * H * T * T, z = a.z.ptr + l * N * qW
            let gate = a.gate.ptr + l * N * dMLP, up = a.up.ptr + l * N * dMLP, hidden = a.hidden.ptr + l * N * dMLP
            // dresid = d(resid_post) = d(mlp_out)
            Linear.backward(dinp: a.dhidden.ptr, accumulateInput: false, dweight: gw.down, dbias: gw.downBias, dout: dresid,
                            inp: hidden, weight: w.down, rows: N, inDim: dMLP, outDim: d, layout: .outIn)
            SwiGLU.backward(dgate: a.dgate.ptr, dup: a.dup.ptr, dhidden: a.dhidden.ptr, gate: gate, up: up, count: N * dMLP)
            Linear.backward(dinp: dln, accumulateInput: false, dweight: gw.gate, dbias: gw.gateBias, dout: a.dgate.ptr,
                            inp: ln2, weight: w.gate, rows: N, inDim: d, outDim: dMLP, layout: .outIn)
            Linear.backward(dinp: dln, accumulateInput: true, dweight: gw.up, dbias: gw.upBias, dout: a.dup.ptr,
                            inp: ln2, weight: w.up, rows: N, inDim: d, outDim: dMLP, layout: .outIn)
            RMSNorm.backward(dinp: dresid, dweight: gw.ln2, dout: dln, inp: resid(2 * l + 1), weight: w.ln2,
                             rstd: a.ln2Rstd.ptr + l * N, rows: N, cols: d)
            // dresid = d(resid_mid) = d(attn_out)
            Linear.backward(dinp: a.dz.ptr, accumulateInput: false, dweight: gw.o, dbias: gw.oBias, dout: dresid,
                            inp: z, weight: w.o, rows: N, inDim: qW, outDim: d, layout: .outIn)
            let input = AttentionInput(q: q, qStride: qW, k: k, kStride: kvW, v: v, vStride: kvW)
            Attention.backward(AttentionGradients(dq: a.dq.ptr, dk: a.dk.ptr, dv: a.dv.ptr), dpattern: a.dpattern.ptr,
                               dz: a.dz.ptr, input: input, pattern: pattern, dims: dims)
            if let rope {
                // Gradients w.r.t. the rotated q, k rotate back to the projections' outputs.
                Rotary.backward(a.dq.ptr, stride: qW, batch: B, seqLen: T, heads: H, dHead: dh, tables: rope)
                Rotary.backward(a.dk.ptr, stride: kvW, batch: B, seqLen: T, heads: Hkv, dHead: dh, tables: rope)
            }
            Linear.backward(dinp: dln, accumulateInput: false, dweight: gw.q, dbias: gw.qBias, dout: a.dq.ptr,
                            inp: ln1, weight: w.q, rows: N, inDim: d, outDim: qW, layout: .outIn)
            Linear.backward(dinp: dln, accumulateInput: true, dweight: gw.k, dbias: gw.kBias, dout: a.dk.ptr,
                            inp: ln1, weight: w.k, rows: N, inDim: d, outDim: kvW, layout: .outIn)
            Linear.backward(dinp: dln, accumulateInput: true, dweight: gw.v, dbias: gw.vBias, dout: a.dv.ptr,
                            inp: ln1, weight: w.v, rows: N, inDim: d, outDim: kvW, layout: .outIn)
            RMSNorm.backward(dinp: dresid, dweight: gw.ln1, dout: dln, inp: resid(2 * l), weight: w.ln1,
                             rstd: a.ln1Rstd.ptr + l * N, rows: N, cols: d)
        }
        tokens.withUnsafeBufferPointer { tok in
            Embedding.backwardTokens(dwte: g.embed, dout: dresid, tokens: tok.baseAddress!, rows: N, dModel: d)
        }
    }

    /// Sets every gradient to zero.
    public func zeroGrads() { grads.storage.zero() }
}
