import RuleLensNumerics

/// A language VAE seen as a `LanguageModel`, so that `dump`, `ablate`, `patch` and `lens` run on
/// VAE checkpoints with every encoder, latent and decoder site.
///
/// One forward of the view on right-padded rows [B, T] (pad = the config's `pad_token_id`):
/// 1. encode: each row's real tokens (up to its last non-pad token) go through the bidirectional encoder, padding masked,
///    pooled, → μ, log σ² (`encoder.…`, `encoder.hook_pooled`, `latent.hook_mu`, `latent.hook_logvar`). The encoder
///    was trained on whole examples `[bos] + prompt + target + [eos]`; a row that stops before its `<eos>` (the
///    interventions' teacher-forced inputs drop the last token) gets `<eos>` appended for the encoder, so it reads the
///    whole example whichever way the caller passes it;
/// 2. z = μ (`latent.hook_z`), or μ + σ·ε with ε drawn from `samplingSeed` when that is set;
/// 3. decode: the decoder reads the rows teacher-forced with z injected as configured → logits [B, T, V]
///    (`blocks.{l}.…`, the injection sites, `unembed.hook_out`).
///
/// An edit at an encoder or latent site changes z and so every decoder position (a zero-ablation of
/// `encoder.blocks.0.hook_mlp_out` is the VAE's reconstruction with that MLP removed from the encoder).
///
/// `loss` is the decoder's masked mean cross-entropy (no KL, no classifier: the `LanguageModel` contract);
/// `backward` carries its gradient through the decoder, the injections, z = μ, the heads and the pooling down the
/// encoder. The parameters live in the VAE's three stores (encoder, latent, decoder); `parameterStorage` is a copy of
/// them taken when the view is made, and `gradientStorage` a buffer that `backward` and `zeroGrads` refresh from the
/// three gradient stores, both in `parameterTensors` order (decoder, encoder, latent: the checkpoint's order). Writing
/// into them does not change the model: train a VAE with `rulelens vae train`, never through this view.
public final class VAELanguageModel: LanguageModel {
    public let vae: VAE
    /// Draw ε for z = μ + σ·ε from this seed (one stream per forward pass, counted from 0); nil (the default): z = μ.
    public var samplingSeed: UInt64?
    private var passes: UInt64 = 0

    /// Every parameter at the view's creation (see the type's note), in `parameterTensors` order.
    public let parameterStorage: FloatBuffer
    /// Every gradient as of the last `backward`/`zeroGrads`, same layout.
    public let gradientStorage: FloatBuffer

    public init(_ vae: VAE) {
        self.vae = vae
        parameterStorage = FloatBuffer(count: vae.parameterCount)
        gradientStorage = FloatBuffer(count: vae.parameterCount)
        Self.gather(vae.checkpointStores.map(\.0), into: parameterStorage)
    }

    public var config: VAEConfig { vae.config }
    public var architecture: String { "rulelens-vae" }
    public var vocabSize: Int { vae.config.vocabSize }
    public var contextLength: Int { vae.config.nPositions }
    public var hookSites: [String] { vae.hookSites }

    public var retainsActivationsForBackward: Bool {
        get { vae.retainsActivationsForBackward }
        set { vae.retainsActivationsForBackward = newValue }
    }

    /// `encoder.hook_pooled` [batch, d_model]; `latent.hook_*` [batch, d_latent]; encoder and decoder sites as their stack.
    public func hookDims(_ site: String) -> [String] {
        if site == "encoder.hook_pooled" { return ["batch", "d_model"] }
        if site.hasPrefix("latent.") { return VAE.latentSites.contains(site) ? ["batch", "d_latent"] : [] }
        return HookSites.dims(of: site)
    }

    /// Shapes for rows of length `seqLen`: encoder sites have `seqLen` positions (a row ending in `<eos>`), decoder
    /// attention rows one more key with memory injection.
    public func hookShape(_ site: String, batch: Int, seqLen: Int) -> [Int] {
        if site == "encoder.hook_pooled" { return [batch, vae.config.nEmbd] }
        if site.hasPrefix("latent.") { return VAE.latentSites.contains(site) ? [batch, vae.config.latentSize] : [] }
        let stack = site.hasPrefix("encoder.") ? vae.encoder : vae.decoder
        return stack.hookShape(site, batch: batch, seqLen: seqLen)
    }

    /// Each row's encoder input: its tokens up to the last non-pad one, with `<eos>` appended when it does not end there.
    func encoderRows(tokens: [Int32], batch B: Int, seqLen T: Int) -> (tokens: [Int32], lengths: [Int32], seqLen: Int) {
        let pad = Int32(vae.config.padTokenId), eos = Int32(vae.config.eosTokenId)
        var lengths = [Int32](repeating: 0, count: B), appendEOS = [Bool](repeating: false, count: B)
        for b in 0..<B {
            var n = T
            while n > 1 && tokens[b * T + n - 1] == pad { n -= 1 }
            appendEOS[b] = tokens[b * T + n - 1] != eos
            lengths[b] = Int32(n + (appendEOS[b] ? 1 : 0))
        }
        let Te = Int(lengths.max() ?? 1)
        var enc = [Int32](repeating: pad, count: B * Te)
        for b in 0..<B {
            let n = Int(lengths[b]) - (appendEOS[b] ? 1 : 0)
            for t in 0..<n { enc[b * Te + t] = tokens[b * T + t] }
            if appendEOS[b] { enc[b * Te + n] = eos }
        }
        return (enc, lengths, Te)
    }

    public func checkInput(tokens: [Int32], batch: Int, seqLen: Int) throws {
        try vae.decoder.checkInput(tokens: tokens, batch: batch, seqLen: seqLen)
        let rows = encoderRows(tokens: tokens, batch: batch, seqLen: seqLen)
        guard rows.seqLen <= vae.config.nPositions else {
            throw RuleLensError("the encoder needs \(rows.seqLen) positions (the row plus its <eos>), more than the VAE's context of \(vae.config.nPositions)",
                                fix: "shorten the examples, or train the VAE with a larger --ctx")
        }
    }

    public func forward(tokens: [Int32], batch B: Int, seqLen T: Int, hooks: HookSet?) -> UnsafeMutablePointer<Float> {
        let rows = encoderRows(tokens: tokens, batch: B, seqLen: T)
        vae.encode(encTokens: rows.tokens, encLengths: rows.lengths, batch: B, seqLen: rows.seqLen, hooks: hooks)
        var epsilon: [Float]? = nil
        if let seed = samplingSeed {
            var rng = SeededRNG(seed: seed, stream: "vae-view-epsilon-\(passes)")
            epsilon = (0..<(B * vae.config.latentSize)).map { _ in rng.normal() }
            passes += 1
        }
        vae.sampleLatent(epsilon: epsilon, hooks: hooks)
        return vae.decode(decInputs: tokens, seqLen: T, hooks: hooks)
    }

    public func loss(targets: [Int32], lossMask: [Float]) -> Float {
        let value = vae.decoder.loss(targets: targets, lossMask: lossMask)
        vae.prepareReconstructionBackward()
        return value
    }

    public func backward() { vae.backward(); gatherGradients() }
    public func zeroGrads() { vae.zeroGrads(); gradientStorage.zero() }

    private func gatherGradients() {
        Self.gather([vae.decoder.grads.storage, vae.encoder.grads.storage, vae.latentGrads.storage], into: gradientStorage)
    }

    /// Decoder, encoder, latent tensors (the checkpoint's names), offsets into the concatenated `parameterStorage`.
    public var parameterTensors: [ParameterTensor] {
        var out: [ParameterTensor] = [], base = 0
        for (store, tensors) in vae.checkpointStores {
            for t in tensors { out.append(ParameterTensor(name: t.name, shape: t.shape, offset: base + t.offset)) }
            base += store.count
        }
        return out
    }

    private static func gather(_ buffers: [FloatBuffer], into out: FloatBuffer) {
        var at = 0
        for b in buffers { (out.ptr + at).update(from: b.ptr, count: b.count); at += b.count }
        precondition(at == out.count, "VAELanguageModel: stores hold \(at) values, the view \(out.count)")
    }
}
