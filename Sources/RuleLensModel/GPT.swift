import Foundation
import RuleLensNumerics

/// A GPT-2 language model with a hand-written backward pass (the llm.c way).
///
/// Architecture (Hugging Face GPT-2 exactly): token + learned position embedding; `nLayer` pre-LayerNorm blocks
/// x += attn(ln_1(x)); x += mlp(ln_2(x)) with causal multi-head attention (fused QKV `c_attn`, `c_proj`) and a
/// GELU-tanh MLP (`c_fc`, `c_proj`); final LayerNorm; LM head tied to the token embedding.
/// Not thread-safe: one forward/backward at a time per instance.
public final class GPT {
    public let config: GPTConfig
    /// How this stack is wired (GPT-2 exactly by default; a VAE's encoder or decoder, a rule-prior model otherwise).
    public let wiring: GPTWiring
    /// Weights.
    public let params: GPTParameters
    /// Gradients, same layout as `params`; `backward()` accumulates into them.
    public let grads: GPTParameters

    let acts: Activations
    private let siteNames: [BlockSiteNames]
    private let rootSites: RootSiteNames
    /// Every hook site of this model, in the order the forward pass reaches them.
    public let hookSites: [String]
    private var tokens: [Int32] = []
    private var keyLengths: [Int32]? = nil
    private var conditioning = Conditioning()
    private var batch = 0, seqLen = 0
    private var lossReady = false
    private var lastForwardRetained = false
    private var lastForwardHadHead = false

    /// Whether `forward` keeps every block's activations for `backward()` (default true). Set it to false for
    /// inference-only work (evaluation, generation, activation dumps): every block then reuses one block's
    /// buffers, so activation memory no longer grows with the number of layers, and `backward()` traps.
    /// Outputs and hook values are bit-for-bit the same either way.
    public var retainsActivationsForBackward = true

    /// Builds a model with GPT-2's initialisation: every weight matrix and embedding N(0, 0.02), the two residual
    /// projections (`attn.c_proj`, `mlp.c_proj`) N(0, 0.02/√(2·nLayer)), LayerNorm weight 1 / bias 0, biases 0.
    /// Each tensor draws from its own named RNG stream, so the values depend only on (seed, name).
    /// `extraTensors` are stored after the GPT-2 tensors (so those keep their offsets and values) and initialised like
    /// the embeddings (2-D: N(0, 0.02)); the stack itself never reads them (a rule-prior table, see `RulePriorGPT`).
    public init(config: GPTConfig, seed: UInt64, wiring: GPTWiring = .standard, extraTensors: [(name: String, shape: [Int])] = []) throws {
        try config.validate()
        self.config = config
        self.wiring = wiring
        params = GPTParameters(config: config, prefix: wiring.tensorPrefix, extra: extraTensors)
        grads = GPTParameters(config: config, prefix: wiring.tensorPrefix, extra: extraTensors)
        acts = Activations(config: config, prefixSlots: wiring.prefixSlots)
        siteNames = (0..<config.nLayer).map { BlockSiteNames(layer: $0, prefix: wiring.hookPrefix) }
        rootSites = RootSiteNames(prefix: wiring.hookPrefix)
        hookSites = HookSites.names(for: config, wiring: wiring)
        let residualStd = 0.02 / Float(2 * config.nLayer).squareRoot()
        for t in params.tensors {
            let p = params.storage.ptr + t.offset
            if t.name.hasSuffix("ln_1.weight") || t.name.hasSuffix("ln_2.weight") || t.name.hasSuffix("ln_f.weight") {
                p.update(repeating: 1, count: t.count)
            } else if t.shape.count == 2 {
                let std: Float = t.name.hasSuffix("c_proj.weight") ? residualStd : 0.02
                var rng = SeededRNG(seed: seed, stream: t.name)
                for i in 0..<t.count { p[i] = std * rng.normal() }
            }
        }
    }

    /// Checks a batch before `forward` (which traps on bad input), with errors that name the problem and the fix.
    public func checkInput(tokens: [Int32], batch: Int, seqLen: Int) throws {
        try ModelInput.check(tokens: tokens, batch: batch, seqLen: seqLen, contextLength: config.nCtx, vocabSize: config.vocabSize)
    }

    /// Runs the model. tokens: [batch·seqLen] row-major, seqLen ≤ nCtx, every id < vocabSize.
    /// Returns logits [batch, seqLen, vocab], valid until the next forward.
    ///
    /// Right-padded batches need no mask: attention is causal, so padding never affects earlier positions.
    /// `hooks` observe or edit sites during this pass; hooks are for inference: `backward()` after a pass whose
    /// values a hook edited computes the gradient of the unedited graph at the edited activations, which is
    /// not a true gradient (observing is harmless).
    /// `keyLengths` [batch] (bidirectional wiring only): each example's real length; keys beyond it are padding.
    /// `conditioning` supplies the wiring's injected vectors (see `Conditioning`).
    public func forward(tokens: [Int32], batch B: Int, seqLen T: Int, hooks: HookSet? = nil, keyLengths: [Int32]? = nil,
                        conditioning: Conditioning = Conditioning()) -> UnsafeMutablePointer<Float> {
        run(tokens: tokens, batch: B, seqLen: T, hooks: hooks, keyLengths: keyLengths, conditioning: conditioning, head: true)
        return acts.logits.ptr
    }

    /// Runs the stack without the LM head (an encoder): returns the final LayerNorm's output [batch, seqLen, d_model],
    /// valid until the next forward. Backpropagate with `backward(dHidden:)`.
    public func forwardHidden(tokens: [Int32], batch B: Int, seqLen T: Int, hooks: HookSet? = nil, keyLengths: [Int32]? = nil,
                              conditioning: Conditioning = Conditioning()) -> UnsafeMutablePointer<Float> {
        run(tokens: tokens, batch: B, seqLen: T, hooks: hooks, keyLengths: keyLengths, conditioning: conditioning, head: false)
        return acts.lnf.ptr
    }

    private func run(tokens: [Int32], batch B: Int, seqLen T: Int, hooks: HookSet?, keyLengths: [Int32]?, conditioning cond: Conditioning,
                     head: Bool) {
        let c = config
        precondition(B > 0 && T > 0 && T <= c.nCtx, "forward: seqLen \(T) must be in 1...\(c.nCtx) and batch \(B) positive")
        precondition(tokens.count == B * T, "forward: \(tokens.count) tokens for batch \(B) × seqLen \(T)")
        precondition(tokens.allSatisfy { $0 >= 0 && Int($0) < c.vocabSize }, "forward: token id outside 0..<\(c.vocabSize)")
        precondition(keyLengths == nil || (!wiring.causal && keyLengths!.count == B && keyLengths!.allSatisfy { $0 > 0 && Int($0) <= T }),
                     "forward: keyLengths need a bidirectional wiring and one length in 1...\(T) per example")
        for injection in wiring.injections {
            precondition(cond.vector(injection) != nil, "forward: this model is wired for \(injection) injection; pass it in `conditioning`")
        }
        let retain = retainsActivationsForBackward
        acts.ensureForward(batch: B, seqLen: T, layerSlots: retain ? c.nLayer : 1)
        self.tokens = tokens; self.keyLengths = keyLengths; conditioning = cond
        batch = B; seqLen = T; lossReady = false; lastForwardRetained = retain; lastForwardHadHead = head
        let plan = hooks?.plan(sites: hookSites)
        if plan != nil { acts.ensureHookScratch(batch: B, seqLen: T) }

        let N = B * T, d = c.dModel, L = c.nLayer, dMLP = c.dMLP, V = c.vocabSize, P = wiring.prefixSlots
        // Site shapes, built only when hooks are present (optional chaining skips `shapes!` otherwise).
        let shapes = plan.map { _ in HookShapes(config: c, batch: B, seqLen: T, prefixSlots: P) }
        let dims = AttentionDims(B: B, T: T, H: c.nHead, dh: c.dHead, P: P, causal: wiring.causal)
        let a = acts
        func resid(_ i: Int) -> UnsafeMutablePointer<Float> { a.resid.ptr + Self.residSlot(i, retain: retain) * N * d }
        /// LayerNorm rows of `inp` into `out`; when `site` is hooked, the normalised values (before weight and bias)
        /// pass through the hook first, so an edit there reaches the affine step and everything after it.
        func layerNorm(_ site: String, out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
                       inp: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>) {
            if let plan, plan.wants(site) {
                LayerNorm.normalize(normalized: a.hookScratchA.ptr, mean: mean, rstd: rstd, inp: inp, rows: N, cols: d, eps: c.layerNormEps)
                plan.fire(site, a.hookScratchA.ptr, shapes!.resid)
                LayerNorm.affine(out: out, normalized: a.hookScratchA.ptr, weight: weight, bias: bias, rows: N, cols: d)
            } else {
                LayerNorm.forward(out: out, mean: mean, rstd: rstd, inp: inp, weight: weight, bias: bias, rows: N, cols: d, eps: c.layerNormEps)
            }
        }
        /// The injected vectors [B, d] at `site`, passed through its hook (on a copy, so the caller's buffer is never edited).
        func injected(_ site: String, _ vectors: UnsafePointer<Float>) -> UnsafePointer<Float> {
            guard let plan, plan.wants(site) else { return vectors }
            a.hookScratchB.ptr.update(from: vectors, count: B * d)
            plan.fire(site, a.hookScratchB.ptr, shapes!.vector)
            return UnsafePointer(a.hookScratchB.ptr)
        }

        // Embedding (+ injected embedding vector) → resid_pre of block 0.
        tokens.withUnsafeBufferPointer { tok in
            if let plan, plan.wants(rootSites.embed) || plan.wants(rootSites.posEmbed) {
                Embedding.lookup(tokenEmbed: a.hookScratchA.ptr, posEmbed: a.hookScratchB.ptr, tokens: tok.baseAddress!,
                                 wte: params.wte, wpe: params.wpe, batch: B, seqLen: T, dModel: d)
                plan.fire(rootSites.embed, a.hookScratchA.ptr, shapes!.resid)
                plan.fire(rootSites.posEmbed, a.hookScratchB.ptr, shapes!.resid)
                Embedding.sum(out: resid(0), tokenEmbed: a.hookScratchA.ptr, posEmbed: a.hookScratchB.ptr, count: N * d)
            } else {
                Embedding.forward(out: resid(0), tokens: tok.baseAddress!, wte: params.wte, wpe: params.wpe, batch: B, seqLen: T, dModel: d)
            }
        }
        if wiring.injections.contains(.embedding) {
            PerExample.add(resid(0), stride: d, vectors: injected(rootSites.latentEmbed, cond.embedding!), batch: B, seqLen: T, width: d)
        }

        for l in 0..<L {
            let w = params.layers[l], site = siteNames[l]
            let residPre = resid(2 * l), residMid = resid(2 * l + 1), residPost = resid(2 * l + 2)
            let s = retain ? l : 0                                    // this block's slot in the stacked buffers
            let ln1 = a.ln1.ptr + s * N * d, ln1Mean = a.ln1Mean.ptr + s * N, ln1Rstd = a.ln1Rstd.ptr + s * N
            let qkv = a.qkv.ptr + s * N * 3 * d                       // [N, 3d]
            let pattern = a.pattern.ptr + s * B * c.nHead * T * (P + T)   // [B, H, T, P+T]
            let z = a.z.ptr + s * N * d                               // [N, d] = [B, T, H, dh]
            let ln2 = a.ln2.ptr + s * N * d, ln2Mean = a.ln2Mean.ptr + s * N, ln2Rstd = a.ln2Rstd.ptr + s * N
            let fcPre = a.fcPre.ptr + s * N * dMLP, fcPost = a.fcPost.ptr + s * N * dMLP

            plan?.fire(site.residPre, residPre, shapes!.resid)
            layerNorm(site.ln1Normalized, out: ln1, mean: ln1Mean, rstd: ln1Rstd, inp: residPre, weight: w.ln1Weight, bias: w.ln1Bias)
            // c_attn: qkv[N, 3d] = ln1[N, d] · W[d, 3d] + b
            Linear.forward(out: qkv, inp: ln1, weight: w.qkvWeight, bias: w.qkvBias, rows: N, inDim: d, outDim: 3 * d)
            // Injections into Q / K / V: one vector per example, added at every position before the heads split.
            for (part, injection, name) in [(0, Injection.query, site.qInject), (1, .key, site.kInject), (2, .value, site.vInject)]
            where wiring.injections.contains(injection) {
                PerExample.add(qkv + part * d, stride: 3 * d, vectors: injected(name, cond.vector(injection)! + l * B * d),
                               batch: B, seqLen: T, width: d)
            }
            if let plan {
                for (part, name) in [site.q, site.k, site.v].enumerated() where plan.wants(name) {
                    copyStrided(a.hookScratchA.ptr, ld: d, qkv + part * d, ld: 3 * d, rows: N, cols: d)
                    plan.fire(name, a.hookScratchA.ptr, shapes!.heads)
                    copyStrided(qkv + part * d, ld: 3 * d, a.hookScratchA.ptr, ld: d, rows: N, cols: d)
                }
            }
            // attention core: z[N, d]; with memory injection the layer's vector is one extra key and value slot
            var input = AttentionInput(q: qkv, qStride: 3 * d, k: qkv + d, kStride: 3 * d, v: qkv + 2 * d, vStride: 3 * d)
            func attend(_ input: AttentionInput) {
                if let plan, plan.wants(site.attnScores) || plan.wants(site.pattern) {
                    Attention.scoresPhase(pattern: pattern, input: input, dims: dims)
                    plan.fire(site.attnScores, pattern, shapes!.attention)
                    Attention.softmaxPhase(pattern: pattern, input: input, dims: dims)
                    plan.fire(site.pattern, pattern, shapes!.attention)
                    Attention.valuesPhase(z: z, pattern: pattern, input: input, dims: dims)
                } else {
                    Attention.forward(z: z, pattern: pattern, input: input, dims: dims)
                }
            }
            withKeyLengths(keyLengths) { lengths in
                input.keyLengths = lengths
                if wiring.injections.contains(.memory) {
                    let memory = injected(site.memKV, cond.memory! + l * B * d)
                    input.prefixK = memory; input.prefixV = memory
                }
                attend(input)
            }
            plan?.fire(site.z, z, shapes!.heads)
            // attn c_proj, then resid_mid = resid_pre + attn_out (exactly this Float sum)
            Linear.forward(out: a.attnOut.ptr, inp: z, weight: w.attnProjWeight, bias: w.attnProjBias, rows: N, inDim: d, outDim: d)
            plan?.fire(site.attnOut, a.attnOut.ptr, shapes!.resid)
            addElementwise(out: residMid, residPre, a.attnOut.ptr, count: N * d)
            plan?.fire(site.residMid, residMid, shapes!.resid)
            layerNorm(site.ln2Normalized, out: ln2, mean: ln2Mean, rstd: ln2Rstd, inp: residMid, weight: w.ln2Weight, bias: w.ln2Bias)
            // MLP: fcPre[N, dMLP] = ln2 · W_fc + b; fcPost = gelu(fcPre); mlp_out[N, d] = fcPost · W_proj + b
            Linear.forward(out: fcPre, inp: ln2, weight: w.fcWeight, bias: w.fcBias, rows: N, inDim: d, outDim: dMLP)
            plan?.fire(site.mlpPre, fcPre, shapes!.mlp)
            GELU.forward(out: fcPost, inp: fcPre, count: N * dMLP)
            plan?.fire(site.mlpPost, fcPost, shapes!.mlp)
            Linear.forward(out: a.mlpOut.ptr, inp: fcPost, weight: w.mlpProjWeight, bias: w.mlpProjBias, rows: N, inDim: dMLP, outDim: d)
            plan?.fire(site.mlpOut, a.mlpOut.ptr, shapes!.resid)
            addElementwise(out: residPost, residMid, a.mlpOut.ptr, count: N * d)
            plan?.fire(site.residPost, residPost, shapes!.resid)
        }

        // ln_f and the tied LM head: logits[N, V] = lnf[N, d] · wte[V, d]ᵀ
        let finalResid = resid(2 * L)
        layerNorm(rootSites.lnFinal, out: a.lnf.ptr, mean: a.lnfMean.ptr, rstd: a.lnfRstd.ptr, inp: finalResid,
                  weight: params.lnfWeight, bias: params.lnfBias)
        guard head else { return }
        BLAS.sgemmSplit(.none, .transposed, m: N, n: V, k: d, a.lnf.ptr, params.head, a.logits.ptr)
        plan?.fire(rootSites.unembed, a.logits.ptr, shapes!.logits)
    }

    /// Calls `body` with a pointer to the key lengths (nil when there are none).
    private func withKeyLengths(_ lengths: [Int32]?, _ body: (UnsafePointer<Int32>?) -> Void) {
        guard let lengths else { return body(nil) }
        lengths.withUnsafeBufferPointer { body($0.baseAddress!) }
    }

    /// Mean cross-entropy of the last forward's logits over positions with lossMask > 0, weighted by the mask:
    /// Σ wₙ·CE(n) / Σ wₙ (0 when no position is selected). targets, lossMask: [batch·seqLen]. Stores dlogits
    /// for `backward()`.
    public func loss(targets: [Int32], lossMask: [Float]) -> Float {
        let N = batch * seqLen, V = config.vocabSize
        precondition(N > 0 && lastForwardHadHead, "loss: call forward first")
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

    /// Backpropagates the last `loss` through the last forward, accumulating into `grads` (and into
    /// `conditioningGradients` for the wiring's injected vectors).
    public func backward(conditioningGradients: ConditioningGradients = ConditioningGradients()) {
        precondition(lossReady, "backward: call forward and loss first")
        let c = config, N = batch * seqLen, d = c.dModel, V = c.vocabSize
        let a = acts, g = grads
        // LM head (tied): dlnf[N, d] = dlogits[N, V] · wte[V, d]; dwte[V, d] += dlogitsᵀ · lnf
        // (untied: the same with lm_head.weight)
        BLAS.sgemmSplit(.none, .none, m: N, n: d, k: V, a.dlogits.ptr, params.head, a.dln.ptr)
        BLAS.sgemmSplit(.transposed, .none, m: V, n: d, k: N, a.dlogits.ptr, a.lnf.ptr, beta: 1, g.head)
        backwardStack(conditioningGradients)
    }

    /// Backpropagates a gradient with respect to the last `forwardHidden`'s output (dHidden [batch, seqLen, d_model]),
    /// accumulating into `grads` and `conditioningGradients`.
    public func backward(dHidden: UnsafePointer<Float>, conditioningGradients: ConditioningGradients = ConditioningGradients()) {
        precondition(batch * seqLen > 0, "backward: call forwardHidden first")
        acts.ensureBackward(batch: batch, seqLen: seqLen)
        acts.dln.ptr.update(from: dHidden, count: batch * seqLen * config.dModel)
        backwardStack(conditioningGradients)
    }

    /// From dln = d(ln_f output) down to the embeddings.
    private func backwardStack(_ cg: ConditioningGradients) {
        precondition(lastForwardRetained, "backward: the last forward ran with retainsActivationsForBackward = false")
        let c = config, B = batch, T = seqLen, N = B * T, d = c.dModel, L = c.nLayer, dMLP = c.dMLP, P = wiring.prefixSlots
        let a = acts, g = grads, cond = conditioning
        let dims = AttentionDims(B: B, T: T, H: c.nHead, dh: c.dHead, P: P, causal: wiring.causal)
        func resid(_ i: Int) -> UnsafeMutablePointer<Float> { a.resid.ptr + i * N * d }
        let dresid = a.dresid.ptr, dln = a.dln.ptr

        dresid.update(repeating: 0, count: N * d)
        LayerNorm.backward(dinp: dresid, dweight: g.lnfWeight, dbias: g.lnfBias, dout: dln, inp: resid(2 * L), weight: params.lnfWeight,
                           mean: a.lnfMean.ptr, rstd: a.lnfRstd.ptr, rows: N, cols: d)

        for l in stride(from: L - 1, through: 0, by: -1) {
            let w = params.layers[l], gw = g.layers[l]
            let ln1 = a.ln1.ptr + l * N * d, qkv = a.qkv.ptr + l * N * 3 * d
            let pattern = a.pattern.ptr + l * B * c.nHead * T * (P + T), z = a.z.ptr + l * N * d
            let ln2 = a.ln2.ptr + l * N * d
            let fcPre = a.fcPre.ptr + l * N * dMLP, fcPost = a.fcPost.ptr + l * N * dMLP
            // dresid holds d(resid_post) = d(mlp_out).
            Linear.backward(dinp: a.dfc.ptr, accumulateInput: false, dweight: gw.mlpProjWeight, dbias: gw.mlpProjBias,
                            dout: dresid, inp: fcPost, weight: w.mlpProjWeight, rows: N, inDim: dMLP, outDim: d)
            GELU.backward(grad: a.dfc.ptr, inp: fcPre, count: N * dMLP)
            Linear.backward(dinp: dln, accumulateInput: false, dweight: gw.fcWeight, dbias: gw.fcBias,
                            dout: a.dfc.ptr, inp: ln2, weight: w.fcWeight, rows: N, inDim: d, outDim: dMLP)
            LayerNorm.backward(dinp: dresid, dweight: gw.ln2Weight, dbias: gw.ln2Bias, dout: dln, inp: resid(2 * l + 1),
                               weight: w.ln2Weight, mean: a.ln2Mean.ptr + l * N, rstd: a.ln2Rstd.ptr + l * N, rows: N, cols: d)
            // dresid now holds d(resid_mid) = d(attn_out).
            Linear.backward(dinp: a.dz.ptr, accumulateInput: false, dweight: gw.attnProjWeight, dbias: gw.attnProjBias,
                            dout: dresid, inp: z, weight: w.attnProjWeight, rows: N, inDim: d, outDim: d)
            var input = AttentionInput(q: qkv, qStride: 3 * d, k: qkv + d, kStride: 3 * d, v: qkv + 2 * d, vStride: 3 * d)
            var attentionGrads = AttentionGradients(dq: a.dqkv.ptr, dk: a.dqkv.ptr + d, dv: a.dqkv.ptr + 2 * d)
            if let memory = cond.memory, wiring.injections.contains(.memory) {
                input.prefixK = memory + l * B * d; input.prefixV = memory + l * B * d
                attentionGrads.dPrefixK = a.dPrefixK.ptr; attentionGrads.dPrefixV = a.dPrefixV.ptr
            }
            withKeyLengths(keyLengths) { lengths in
                input.keyLengths = lengths
                Attention.backward(attentionGrads, dpattern: a.dpattern.ptr, dz: a.dz.ptr, input: input, pattern: pattern, dims: dims)
            }
            // The memory slot is both key and value: its gradient is the sum of the two.
            if let dMemory = cg.memory, wiring.injections.contains(.memory) {
                let dm = dMemory + l * B * d
                for i in 0..<(B * d) { dm[i] += a.dPrefixK.ptr[i] + a.dPrefixV.ptr[i] }
            }
            for (part, injection) in [(0, Injection.query), (1, .key), (2, .value)] where wiring.injections.contains(injection) {
                let target: UnsafeMutablePointer<Float>? = injection == .query ? cg.query : injection == .key ? cg.key : cg.value
                if let target {
                    PerExample.backward(dvectors: target + l * B * d, dx: a.dqkv.ptr + part * d, stride: 3 * d, batch: B, seqLen: T, width: d)
                }
            }
            Linear.backward(dinp: dln, accumulateInput: false, dweight: gw.qkvWeight, dbias: gw.qkvBias,
                            dout: a.dqkv.ptr, inp: ln1, weight: w.qkvWeight, rows: N, inDim: d, outDim: 3 * d)
            LayerNorm.backward(dinp: dresid, dweight: gw.ln1Weight, dbias: gw.ln1Bias, dout: dln, inp: resid(2 * l),
                               weight: w.ln1Weight, mean: a.ln1Mean.ptr + l * N, rstd: a.ln1Rstd.ptr + l * N, rows: N, cols: d)
        }
        if let dEmbedding = cg.embedding, wiring.injections.contains(.embedding) {
            PerExample.backward(dvectors: dEmbedding, dx: dresid, stride: d, batch: B, seqLen: T, width: d)
        }
        tokens.withUnsafeBufferPointer { tok in
            Embedding.backward(dwte: g.wte, dwpe: g.wpe, dout: dresid, tokens: tok.baseAddress!, batch: B, seqLen: T, dModel: d)
        }
    }

    /// Index into `Activations.resid` of logical residual i (2l = resid_pre of block l, 2l+1 = its resid_mid,
    /// 2L = the final resid_post). Inference-only passes rotate through 3 slots: pre and post alternate
    /// between 0 and 2, mid is always 1, so block l's resid_post is block l+1's resid_pre without a copy.
    static func residSlot(_ i: Int, retain: Bool) -> Int {
        if retain { return i }
        return i % 2 == 1 ? 1 : (i / 2) % 2 * 2
    }

    /// Sets every gradient to zero.
    public func zeroGrads() { grads.storage.zero() }

    /// Number of parameters (the tied LM head counted once).
    public var parameterCount: Int { params.storage.count }
}

/// The shapes of the hook sites for one forward pass.
struct HookShapes {
    let resid: [Int], heads: [Int], attention: [Int], mlp: [Int], logits: [Int], vector: [Int]
    init(config c: GPTConfig, batch B: Int, seqLen T: Int, prefixSlots P: Int = 0) {
        resid = [B, T, c.dModel]; heads = [B, T, c.nHead, c.dHead]; attention = [B, c.nHead, T, P + T]
        mlp = [B, T, c.dMLP]; logits = [B, T, c.vocabSize]; vector = [B, c.dModel]
    }
}
