import Foundation
import RuleLensNumerics

/// The language VAE of study 2 (Optimus-style), built from two GPT-2 stacks and the shared layer kernels.
///
/// - encoder: a `GPT` wired bidirectional (padding keys masked by each example's length), tensors `encoder.…`, hook
///   sites `encoder.…`; its final LayerNorm output is pooled — the mean over the real positions (`pooling: mean`) or the
///   output at position 0, the leading <bos> that serves as [cls] (`cls`) — into `encoder.hook_pooled` [B, d];
/// - latent: μ = W_μ·pooled + b_μ, log σ² = W_lv·pooled + b_lv (`latent.hook_mu`, `latent.hook_logvar` [B, k]);
///   z = μ + exp(½ log σ²)·ε with a given ε (training), or z = μ (`latent.hook_z`);
/// - decoder: a `GPT` wired with the configured injections of z (`GPTWiring.injections`): memory (W_mem·z split per
///   layer, one extra key = value slot), query (W_q·z split per layer, added to Q), embedding (W_e·z added to the
///   token embeddings); its hook sites keep GPT-2's names;
/// - loss: mean over the batch of rec + β·KL_fb + γ·CE_class (see `VAELoss.swift`).
///
/// Hand-written backward throughout: the decoder's backward yields the gradients of the injected vectors, which flow
/// through the injection maps into z, through the reparameterisation and the KL into μ and log σ², through the heads
/// and the pooling into the encoder's output, and down the encoder. Not thread-safe.
public final class VAE {
    public let config: VAEConfig
    public let encoder: GPT
    public let decoder: GPT
    public let latent: LatentParameters
    public let latentGrads: LatentParameters
    /// Every hook site, in forward order: encoder sites, `encoder.hook_pooled`, `latent.hook_mu`, `latent.hook_logvar`,
    /// `latent.hook_z`, then the decoder's (with its injection sites).
    public let hookSites: [String]
    public static let latentSites = ["encoder.hook_pooled", "latent.hook_mu", "latent.hook_logvar", "latent.hook_z"]

    /// See `GPT.retainsActivationsForBackward`; applies to both stacks.
    public var retainsActivationsForBackward = true {
        didSet { encoder.retainsActivationsForBackward = retainsActivationsForBackward; decoder.retainsActivationsForBackward = retainsActivationsForBackward }
    }

    // The last forward pass.
    private(set) var B = 0
    private var encLengths: [Int32] = []
    private var encLen = 0
    private var sampled = false
    private var lossReady = false
    private var beta: Float = 0
    private var supervisedLoss = false
    /// False after `prepareReconstructionBackward`: `backward` then skips the KL (z = μ, no latent loss).
    private var latentLoss = true
    let pooled = Scratch(), mu = Scratch(), logvar = Scratch(), z = Scratch(), eps = Scratch(), klDims = Scratch()
    let memory = Scratch(), query = Scratch(), embed = Scratch(), classLogits = Scratch()
    let dMemory = Scratch(), dQuery = Scratch(), dEmbed = Scratch(), dz = Scratch(), dmu = Scratch(), dlogvar = Scratch()
    let dPooled = Scratch(), dHidden = Scratch(), dClassLogits = Scratch()

    /// Builds a VAE with GPT-2's initialisation in both stacks and N(0, 0.02) latent maps (biases 0); each tensor draws
    /// from its own named stream of `seed`.
    public init(config: VAEConfig, seed: UInt64) throws {
        try config.validate()
        self.config = config
        encoder = try GPT(config: config.encoderConfig, seed: seed,
                          wiring: GPTWiring(causal: false, hookPrefix: "encoder.", tensorPrefix: "encoder."))
        decoder = try GPT(config: config.decoderConfig, seed: seed, wiring: GPTWiring(injections: Set(config.inject)))
        latent = LatentParameters(config: config)
        latentGrads = LatentParameters(config: config)
        hookSites = encoder.hookSites + Self.latentSites + decoder.hookSites
        for t in latent.tensors where t.shape.count == 2 {
            var rng = SeededRNG(seed: seed, stream: t.name)
            let p = latent.storage.ptr + t.offset
            for i in 0..<t.count { p[i] = 0.02 * rng.normal() }
        }
    }

    /// Every parameter tensor: encoder, latent, decoder (names as in `model.safetensors`).
    public var parameterTensorNames: [String] {
        encoder.params.tensors.map(\.name) + latent.tensors.map(\.name) + decoder.params.tensors.map(\.name)
    }

    /// The three parameter stores with their gradients, for the optimiser, clipping and checkpoints.
    public var stores: [(params: FloatBuffer, grads: FloatBuffer, tensors: [ParameterTensor])] {
        [(encoder.params.storage, encoder.grads.storage, encoder.params.tensors),
         (latent.storage, latentGrads.storage, latent.tensors),
         (decoder.params.storage, decoder.grads.storage, decoder.params.tensors)]
    }

    public var parameterCount: Int { stores.reduce(0) { $0 + $1.params.count } }

    public func zeroGrads() { encoder.zeroGrads(); decoder.zeroGrads(); latentGrads.storage.zero() }

    private func w(_ name: String) -> UnsafeMutablePointer<Float> { latent.pointer(name)! }
    private func g(_ name: String) -> UnsafeMutablePointer<Float> { latentGrads.pointer(name)! }

    // MARK: - Forward

    /// Encodes: runs the encoder and the latent heads, leaving μ and log σ² [B, k] in `mu`, `logvar`.
    /// encTokens [B, Te] right-padded, encLengths [B] in 1...Te.
    public func encode(encTokens: [Int32], encLengths: [Int32], batch: Int, seqLen Te: Int, hooks: HookSet? = nil) {
        let c = config, d = c.nEmbd, k = c.latentSize
        B = batch; encLen = Te; self.encLengths = encLengths; lossReady = false
        let plan = hooks?.plan(sites: hookSites)
        let hidden = encoder.forwardHidden(tokens: encTokens, batch: B, seqLen: Te, hooks: hooks, keyLengths: encLengths)
        pooled.ensure(B * d)
        Pooling.forward(pooled: pooled.ptr, hidden: hidden, lengths: encLengths, batch: B, seqLen: Te, width: d, mode: c.pooling)
        plan?.fire("encoder.hook_pooled", pooled.ptr, [B, d])
        mu.ensure(B * k); logvar.ensure(B * k)
        // μ[B, k] = pooled[B, d]·W_μᵀ + b_μ ; log σ² likewise (nn.Linear layout [k, d])
        Linear.forward(out: mu.ptr, inp: pooled.ptr, weight: w("latent.mu.weight"), bias: w("latent.mu.bias"), rows: B, inDim: d, outDim: k, layout: .outIn)
        Linear.forward(out: logvar.ptr, inp: pooled.ptr, weight: w("latent.logvar.weight"), bias: w("latent.logvar.bias"), rows: B, inDim: d, outDim: k, layout: .outIn)
        plan?.fire("latent.hook_mu", mu.ptr, [B, k])
        plan?.fire("latent.hook_logvar", logvar.ptr, [B, k])
    }

    /// Sets z from the last `encode`: z = μ + exp(½ log σ²)·ε when `epsilon` [B·k] is given, z = μ otherwise.
    public func sampleLatent(epsilon: [Float]?, hooks: HookSet? = nil) {
        let k = config.latentSize
        z.ensure(B * k)
        if let epsilon {
            precondition(epsilon.count == B * k, "sampleLatent: ε needs \(B * k) values")
            eps.ensure(B * k)
            epsilon.withUnsafeBufferPointer { eps.ptr.update(from: $0.baseAddress!, count: B * k) }
            Reparameterize.forward(z: z.ptr, mu: mu.ptr, logvar: logvar.ptr, eps: eps.ptr, count: B * k)
            sampled = true
        } else {
            z.ptr.update(from: mu.ptr, count: B * k)
            sampled = false
        }
        hooks?.plan(sites: hookSites)?.fire("latent.hook_z", z.ptr, [B, k])
    }

    /// Sets z [B·k] directly (decoding from chosen latents: `vae decode`, interpolation, traversal).
    public func setLatent(_ values: [Float], batch: Int) {
        let k = config.latentSize
        precondition(values.count == batch * k, "setLatent: \(values.count) values for batch \(batch) × k \(k)")
        B = batch; sampled = false; lossReady = false
        z.ensure(B * k)
        values.withUnsafeBufferPointer { z.ptr.update(from: $0.baseAddress!, count: B * k) }
    }

    /// The injected vectors for the current z: memory and query [L, B, d] (layer l's rows of W·z), embedding [B, d].
    func injections() -> Conditioning {
        let c = config, d = c.nEmbd, k = c.latentSize, L = c.nLayer
        var cond = Conditioning()
        for (mode, name, buffer) in [(Injection.memory, "latent.memory.weight", memory), (.query, "latent.query.weight", query)]
        where c.inject.contains(mode) {
            buffer.ensure(L * B * d)
            for l in 0..<L {
                // layer l: out[B, d] = z[B, k] · W[l·d..<(l+1)·d, k]ᵀ
                Linear.forward(out: buffer.ptr + l * B * d, inp: z.ptr, weight: w(name) + l * d * k, bias: nil, rows: B, inDim: k, outDim: d, layout: .outIn)
            }
            if mode == .memory { cond.memory = UnsafePointer(buffer.ptr) } else { cond.query = UnsafePointer(buffer.ptr) }
        }
        if c.inject.contains(.embedding) {
            embed.ensure(B * d)
            Linear.forward(out: embed.ptr, inp: z.ptr, weight: w("latent.embed.weight"), bias: nil, rows: B, inDim: k, outDim: d, layout: .outIn)
            cond.embedding = UnsafePointer(embed.ptr)
        }
        return cond
    }

    /// Decodes from the current z: logits [B, Td, V] of the decoder reading decInputs [B, Td].
    public func decode(decInputs: [Int32], seqLen Td: Int, hooks: HookSet? = nil) -> UnsafeMutablePointer<Float> {
        lossReady = false
        return decoder.forward(tokens: decInputs, batch: B, seqLen: Td, hooks: hooks, conditioning: injections())
    }

    /// The whole pass for one batch: encode, z (sampled with `epsilon` [B·k], or μ), decode. Returns logits [B, Td, V].
    @discardableResult
    public func forward(_ batch: VAEBatch, epsilon: [Float]?, hooks: HookSet? = nil) -> UnsafeMutablePointer<Float> {
        encode(encTokens: batch.encTokens, encLengths: batch.encLengths, batch: batch.batch, seqLen: batch.encLen, hooks: hooks)
        sampleLatent(epsilon: epsilon, hooks: hooks)
        let logits = decode(decInputs: batch.decInputs, seqLen: batch.decLen, hooks: hooks)
        if config.supervised {
            let C = config.nClasses
            classLogits.ensure(B * C)
            Linear.forward(out: classLogits.ptr, inp: z.ptr, weight: w("latent.classifier.weight"), bias: w("latent.classifier.bias"),
                           rows: B, inDim: config.latentSize, outDim: C, layout: .outIn)
        }
        return logits
    }

    // MARK: - Loss and backward

    /// The terms of the objective for the last `forward` (means over the batch, nats).
    public struct LossTerms: Sendable {
        /// Σ over counted positions of cross-entropy, averaged over examples.
        public var reconstruction: Double
        /// KL(q(z|x) ‖ N(0, I)) summed over dimensions, averaged over examples.
        public var kl: Double
        /// KL with free bits (only entries above λ), what the objective weighs by β.
        public var klFreeBits: Double
        /// Mean KL per dimension [k].
        public var klPerDimension: [Double]
        public var beta: Float
        /// Mean classifier cross-entropy and correct count (supervised models with labels), else nil/0.
        public var classifierLoss: Double?
        public var classifierCorrect: Int
        /// rec + β·KL_fb + γ·CE_class: what training minimises.
        public var total: Double
        /// −(rec + KL): the ELBO, per example on average.
        public var elbo: Double { -(reconstruction + kl) }
    }

    /// Computes the objective of the last `forward` with weight `beta` and prepares `backward()`.
    public func loss(_ batch: VAEBatch, beta: Float) -> LossTerms {
        let c = config, k = c.latentSize
        precondition(batch.batch == B, "loss: batch differs from the last forward")
        // Reconstruction: the decoder's masked mean CE, rescaled to Σ CE / B (Optimus: summed over tokens, mean over
        // examples), and its logit gradient with it.
        let maskSum = batch.lossMask.reduce(0, +)
        let meanCE = decoder.loss(targets: batch.decTargets, lossMask: batch.lossMask)
        let perExample = Float(Double(maskSum) / Double(B))
        let dlogits = decoder.acts.dlogits.ptr
        for i in 0..<(batch.batch * batch.decLen * c.vocabSize) { dlogits[i] *= perExample }
        let rec = Double(meanCE) * Double(maskSum) / Double(B)
        klDims.ensure(B * k)
        let (kl, klFB) = GaussianKL.forward(klDims: klDims.ptr, mu: mu.ptr, logvar: logvar.ptr, rows: B, dim: k, freeBits: c.freeBits)
        var perDim = [Double](repeating: 0, count: k)
        for b in 0..<B { for j in 0..<k { perDim[j] += Double(klDims.ptr[b * k + j]) / Double(B) } }
        var terms = LossTerms(reconstruction: rec, kl: kl, klFreeBits: klFB, klPerDimension: perDim, beta: beta,
                              classifierLoss: nil, classifierCorrect: 0, total: rec + Double(beta) * klFB)
        supervisedLoss = false
        if c.supervised, let labels = batch.labels {
            dClassLogits.ensure(B * c.nClasses)
            let (ce, correct) = ClassifierLoss.forwardBackward(dlogits: dClassLogits.ptr, logits: classLogits.ptr, labels: labels,
                                                               classes: c.nClasses, weight: c.superviseWeight)
            terms.classifierLoss = Double(ce); terms.classifierCorrect = correct
            terms.total += Double(c.superviseWeight) * Double(ce)
            supervisedLoss = true
        }
        self.beta = beta
        latentLoss = true
        lossReady = true
        return terms
    }

    /// Prepares `backward()` for a loss computed on the decoder's logits alone (`decoder.loss` after `forward` or
    /// `decode`): the gradient flows through the injections and z into the encoder, with no KL and no classifier
    /// term. What `VAELanguageModel.loss` uses (the `LanguageModel` loss is the masked mean cross-entropy).
    func prepareReconstructionBackward() {
        supervisedLoss = false
        latentLoss = false
        beta = 0
        lossReady = true
    }

    /// Backpropagates the last `loss` into every gradient (accumulating).
    public func backward() {
        precondition(lossReady, "backward: call forward and loss first")
        let c = config, d = c.nEmbd, k = c.latentSize, L = c.nLayer
        // Decoder, with the gradients of the injected vectors.
        var cg = ConditioningGradients()
        if c.inject.contains(.memory) { dMemory.ensure(L * B * d); dMemory.zero(L * B * d); cg.memory = dMemory.ptr }
        if c.inject.contains(.query) { dQuery.ensure(L * B * d); dQuery.zero(L * B * d); cg.query = dQuery.ptr }
        if c.inject.contains(.embedding) { dEmbed.ensure(B * d); dEmbed.zero(B * d); cg.embedding = dEmbed.ptr }
        decoder.backward(conditioningGradients: cg)
        // Injection maps → dz[B, k].
        dz.ensure(B * k); dz.zero(B * k)
        for (mode, name, grad) in [(Injection.memory, "latent.memory.weight", dMemory), (.query, "latent.query.weight", dQuery)]
        where c.inject.contains(mode) {
            for l in 0..<L {
                Linear.backward(dinp: dz.ptr, accumulateInput: true, dweight: g(name) + l * d * k, dbias: nil, dout: grad.ptr + l * B * d,
                                inp: z.ptr, weight: w(name) + l * d * k, rows: B, inDim: k, outDim: d, layout: .outIn)
            }
        }
        if c.inject.contains(.embedding) {
            Linear.backward(dinp: dz.ptr, accumulateInput: true, dweight: g("latent.embed.weight"), dbias: nil, dout: dEmbed.ptr,
                            inp: z.ptr, weight: w("latent.embed.weight"), rows: B, inDim: k, outDim: d, layout: .outIn)
        }
        if supervisedLoss {
            Linear.backward(dinp: dz.ptr, accumulateInput: true, dweight: g("latent.classifier.weight"), dbias: g("latent.classifier.bias"),
                            dout: dClassLogits.ptr, inp: z.ptr, weight: w("latent.classifier.weight"), rows: B, inDim: k, outDim: c.nClasses, layout: .outIn)
        }
        // z → μ, log σ²; then the KL term.
        dmu.ensure(B * k); dmu.zero(B * k); dlogvar.ensure(B * k); dlogvar.zero(B * k)
        if sampled {
            Reparameterize.backward(dmu: dmu.ptr, dlogvar: dlogvar.ptr, dz: dz.ptr, logvar: logvar.ptr, eps: eps.ptr, count: B * k)
        } else {
            for i in 0..<(B * k) { dmu.ptr[i] += dz.ptr[i] }
        }
        if latentLoss {
            GaussianKL.backward(dmu: dmu.ptr, dlogvar: dlogvar.ptr, klDims: klDims.ptr, mu: mu.ptr, logvar: logvar.ptr, rows: B, dim: k,
                                freeBits: c.freeBits, scale: beta / Float(B))
        }
        // Heads → dpooled[B, d]; pooling → d(encoder output); down the encoder.
        dPooled.ensure(B * d)
        Linear.backward(dinp: dPooled.ptr, accumulateInput: false, dweight: g("latent.mu.weight"), dbias: g("latent.mu.bias"), dout: dmu.ptr,
                        inp: pooled.ptr, weight: w("latent.mu.weight"), rows: B, inDim: d, outDim: k, layout: .outIn)
        Linear.backward(dinp: dPooled.ptr, accumulateInput: true, dweight: g("latent.logvar.weight"), dbias: g("latent.logvar.bias"), dout: dlogvar.ptr,
                        inp: pooled.ptr, weight: w("latent.logvar.weight"), rows: B, inDim: d, outDim: k, layout: .outIn)
        dHidden.ensure(B * encLen * d)
        Pooling.backward(dHidden: dHidden.ptr, dPooled: dPooled.ptr, lengths: encLengths, batch: B, seqLen: encLen, width: d, mode: c.pooling)
        encoder.backward(dHidden: dHidden.ptr)
        lossReady = false
    }

    // MARK: - Read-outs of the last pass

    public var lastMu: [Float] { Array(UnsafeBufferPointer(start: mu.ptr, count: B * config.latentSize)) }
    public var lastLogvar: [Float] { Array(UnsafeBufferPointer(start: logvar.ptr, count: B * config.latentSize)) }
    public var lastZ: [Float] { Array(UnsafeBufferPointer(start: z.ptr, count: B * config.latentSize)) }
    public var lastPooled: [Float] { Array(UnsafeBufferPointer(start: pooled.ptr, count: B * config.nEmbd)) }
    /// Class logits [B, C] of the last forward (supervised models).
    public var lastClassLogits: [Float] { Array(UnsafeBufferPointer(start: classLogits.ptr, count: B * config.nClasses)) }
}

/// A growable scratch buffer (the VAE's per-batch vectors).
final class Scratch {
    private(set) var buffer = FloatBuffer(count: 0)
    var ptr: UnsafeMutablePointer<Float> { buffer.ptr }
    func ensure(_ count: Int) { if buffer.count < count { buffer = FloatBuffer(count: count) } }
    func zero(_ count: Int) { buffer.ptr.update(repeating: 0, count: count) }
}

/// Pooling of the encoder's output [B, T, d] into one vector per example [B, d].
enum Pooling {
    /// mean: pooled[b] = Σ_{t < len_b} hidden[b, t] / len_b (summed in position order); cls: pooled[b] = hidden[b, 0].
    static func forward(pooled: UnsafeMutablePointer<Float>, hidden: UnsafePointer<Float>, lengths: [Int32], batch B: Int, seqLen T: Int,
                        width d: Int, mode: PoolMode) {
        for b in 0..<B {
            let out = pooled + b * d, rows = hidden + b * T * d
            switch mode {
            case .cls: out.update(from: rows, count: d)
            case .mean:
                let n = Int(lengths[b])
                out.update(repeating: 0, count: d)
                for t in 0..<n { let row = rows + t * d; for i in 0..<d { out[i] += row[i] } }
                let inv = 1 / Float(n)
                for i in 0..<d { out[i] *= inv }
            }
        }
    }

    /// dHidden [B, T, d] (overwritten): mean: dpooled[b]/len_b at real positions, 0 on padding; cls: dpooled[b] at 0.
    static func backward(dHidden: UnsafeMutablePointer<Float>, dPooled: UnsafePointer<Float>, lengths: [Int32], batch B: Int, seqLen T: Int,
                         width d: Int, mode: PoolMode) {
        dHidden.update(repeating: 0, count: B * T * d)
        for b in 0..<B {
            let dp = dPooled + b * d, rows = dHidden + b * T * d
            switch mode {
            case .cls: rows.update(from: dp, count: d)
            case .mean:
                let n = Int(lengths[b]), inv = 1 / Float(n)
                for t in 0..<n { let row = rows + t * d; for i in 0..<d { row[i] = dp[i] * inv } }
            }
        }
    }
}
