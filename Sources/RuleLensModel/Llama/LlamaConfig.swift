import Foundation
import RuleLensNumerics

/// Shape of a Llama/Qwen2-family model (Hugging Face `LlamaConfig` / `Qwen2Config` field meanings).
///
/// The family: RMSNorm pre-norm blocks, rotary position embedding (rotate-half, `rope_theta`), grouped-query
/// attention (`num_key_value_heads`), SwiGLU MLP (`gate_proj`, `up_proj`, `down_proj`), final RMSNorm, LM head tied
/// or untied. Qwen2 adds biases to q/k/v; Llama may add them to q/k/v/o (`attention_bias`) and to the MLP (`mlp_bias`).
public struct LlamaConfig: Codable, Equatable, Sendable {
    /// Hugging Face `model_type`.
    public enum Family: String, Codable, Sendable, CaseIterable { case llama, qwen2 }
    /// How positions enter: rotary embedding (the family's own), or none at all (NoPE; RuleLens only —
    /// transformers has no such option, so a `none` checkpoint does not reproduce in transformers).
    public enum Positions: String, Codable, Sendable, CaseIterable { case rope, none }

    public var family: Family
    /// `num_hidden_layers`
    public var nLayer: Int
    /// `num_attention_heads`
    public var nHead: Int
    /// `num_key_value_heads` (divides `nHead`)
    public var nKVHead: Int
    /// `hidden_size`
    public var dModel: Int
    /// `head_dim` (default hidden_size / num_attention_heads; even, for the rotation)
    public var dHead: Int
    /// `intermediate_size`
    public var dMLP: Int
    /// `max_position_embeddings`
    public var nCtx: Int
    /// `vocab_size`
    public var vocabSize: Int
    /// `rms_norm_eps`
    public var rmsNormEps: Float
    /// `rope_theta` (in `rope_parameters` in transformers 5)
    public var ropeTheta: Float
    public var positions: Positions
    /// `tie_word_embeddings`: the LM head is `model.embed_tokens.weight`.
    public var tiedEmbeddings: Bool
    /// Biases on q_proj, k_proj, v_proj (Qwen2: always; Llama: `attention_bias`).
    public var qkvBias: Bool
    /// Bias on o_proj (Llama `attention_bias`; never in Qwen2).
    public var outputBias: Bool
    /// Biases on gate/up/down (Llama `mlp_bias`).
    public var mlpBias: Bool

    public init(family: Family, nLayer: Int, nHead: Int, nKVHead: Int? = nil, dModel: Int, dHead: Int? = nil, dMLP: Int? = nil,
                nCtx: Int, vocabSize: Int, rmsNormEps: Float = 1e-6, ropeTheta: Float = 10_000, positions: Positions = .rope,
                tiedEmbeddings: Bool = true, qkvBias: Bool? = nil, outputBias: Bool = false, mlpBias: Bool = false) {
        self.family = family; self.nLayer = nLayer; self.nHead = nHead; self.nKVHead = nKVHead ?? nHead
        self.dModel = dModel; self.dHead = dHead ?? (nHead > 0 ? dModel / nHead : 0)
        self.dMLP = dMLP ?? 4 * dModel; self.nCtx = nCtx; self.vocabSize = vocabSize
        self.rmsNormEps = rmsNormEps; self.ropeTheta = ropeTheta; self.positions = positions
        self.tiedEmbeddings = tiedEmbeddings; self.qkvBias = qkvBias ?? (family == .qwen2)
        self.outputBias = outputBias; self.mlpBias = mlpBias
    }

    /// Query width H·dh and key/value width Hkv·dh.
    public var qWidth: Int { nHead * dHead }
    public var kvWidth: Int { nKVHead * dHead }

    /// Checks the configuration can be built; the error names the field and the fix.
    public func validate() throws {
        for (name, v) in [("layers", nLayer), ("heads", nHead), ("kv-heads", nKVHead), ("d-model", dModel), ("d-head", dHead),
                          ("d-mlp", dMLP), ("ctx", nCtx), ("vocab size", vocabSize)] where v <= 0 {
            throw RuleLensError("model \(name) is \(v), but it must be positive", fix: "pass a positive --\(name)")
        }
        if nHead % nKVHead != 0 {
            throw RuleLensError("\(nHead) attention heads are not a multiple of \(nKVHead) key/value heads",
                                fix: "choose --kv-heads dividing --heads (e.g. --kv-heads \(nHead) or 1)")
        }
        if positions == .rope && dHead % 2 != 0 {
            throw RuleLensError("head width \(dHead) is odd, but the rotary embedding rotates pairs of dimensions",
                                fix: "choose --d-model and --heads so that d-model / heads is even")
        }
        if !(rmsNormEps > 0) || !(ropeTheta > 0) {
            throw RuleLensError("rms_norm_eps \(rmsNormEps) and rope_theta \(ropeTheta) must be positive", fix: "use the model's own config.json values")
        }
    }
}
