import RuleLensNumerics

/// Shape of a GPT-2 model. Field names follow Hugging Face's GPT2Config where one exists.
public struct GPTConfig: Codable, Equatable, Sendable {
    /// Number of transformer blocks (`n_layer`).
    public var nLayer: Int
    /// Attention heads per block (`n_head`).
    public var nHead: Int
    /// Residual stream width (`n_embd`).
    public var dModel: Int
    /// MLP hidden width (`n_inner`; GPT-2 uses 4 × d_model).
    public var dMLP: Int
    /// Maximum sequence length (`n_positions`).
    public var nCtx: Int
    /// Vocabulary size (`vocab_size`).
    public var vocabSize: Int
    /// LayerNorm epsilon (`layer_norm_epsilon`).
    public var layerNormEps: Float = 1e-5
    /// `tie_word_embeddings`: the LM head is `transformer.wte.weight` (GPT-2's default). False: a separate
    /// `lm_head.weight` [vocab, d_model] (some fine-tuned or converted GPT-2s).
    public var tiedHead: Bool = true

    public init(nLayer: Int, nHead: Int, dModel: Int, dMLP: Int? = nil, nCtx: Int, vocabSize: Int, layerNormEps: Float = 1e-5,
                tiedHead: Bool = true) {
        self.nLayer = nLayer; self.nHead = nHead; self.dModel = dModel
        self.dMLP = dMLP ?? 4 * dModel; self.nCtx = nCtx; self.vocabSize = vocabSize; self.layerNormEps = layerNormEps
        self.tiedHead = tiedHead
    }

    enum CodingKeys: String, CodingKey { case nLayer, nHead, dModel, dMLP, nCtx, vocabSize, layerNormEps, tiedHead }

    /// Decodes configs written before `tiedHead` existed (tied, then).
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        nLayer = try c.decode(Int.self, forKey: .nLayer); nHead = try c.decode(Int.self, forKey: .nHead)
        dModel = try c.decode(Int.self, forKey: .dModel); dMLP = try c.decode(Int.self, forKey: .dMLP)
        nCtx = try c.decode(Int.self, forKey: .nCtx); vocabSize = try c.decode(Int.self, forKey: .vocabSize)
        layerNormEps = try c.decodeIfPresent(Float.self, forKey: .layerNormEps) ?? 1e-5
        tiedHead = try c.decodeIfPresent(Bool.self, forKey: .tiedHead) ?? true
    }

    /// Per-head width.
    public var dHead: Int { dModel / nHead }

    /// Checks the configuration can be built; the error names the offending field and the fix.
    public func validate() throws {
        for (name, v) in [("layers", nLayer), ("heads", nHead), ("d-model", dModel), ("d-mlp", dMLP), ("ctx", nCtx), ("vocab size", vocabSize)] where v <= 0 {
            throw RuleLensError("model \(name) is \(v), but it must be positive", fix: "pass a positive --\(name)")
        }
        if dModel % nHead != 0 {
            throw RuleLensError("d_model \(dModel) is not divisible by the number of heads \(nHead)",
                                fix: "choose --d-model a multiple of --heads (e.g. --d-model \(nHead * max(1, dModel / nHead)) --heads \(nHead))")
        }
    }
}
