import RuleLensModel
import RuleLensNumerics

/// The final normalisation before the unembedding, as the logit lens and direct logit attribution apply it.
public struct FinalNorm {
    /// LayerNorm (GPT-2: subtract the mean, divide by √(var + eps), weight, bias) or RMSNorm (Llama/Qwen2: divide
    /// by √(mean(x²) + eps), weight, no bias).
    public enum Kind: Sendable { case layerNorm, rmsNorm }
    public var kind: Kind
    /// [d_model]
    public var weight: UnsafePointer<Float>
    /// [d_model], or nil (RMSNorm).
    public var bias: UnsafePointer<Float>?
    public var eps: Double
    public init(kind: Kind, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, eps: Double) {
        self.kind = kind; self.weight = weight; self.bias = bias; self.eps = eps
    }
    /// Whether the norm subtracts the mean (LayerNorm): DLA then centres each component too.
    public var centers: Bool { kind == .layerNorm }
}

/// What the logit lens and direct logit attribution read from a model beyond its forward pass and hook sites.
/// One small conformance per architecture (`GPT`, `LlamaModel`, in this module); another family (e.g. a VAE's
/// decoder) conforms by offering these four things. Ablation and patching do not need it.
public protocol LensReadable: LanguageModel {
    /// The norm between the last residual stream and the unembedding (`ln_final`).
    var lensFinalNorm: FinalNorm { get }
    /// The unembedding [vocab, d_model] (logits = finalNorm(x) · Wᵀ; no bias in these families).
    var lensUnembedding: UnsafePointer<Float> { get }
    /// Layer l's attention output projection as [H·d_head, d_model] rows: row j is what z index j (head-major,
    /// `attn.hook_z` flattened) adds to the residual stream per unit.
    func lensAttentionOutput(layer: Int) -> [Float]
    /// The constant part of layer l's z, per index [H·d_head]: what every head passes on whatever it attends to,
    /// because attention weights sum to 1 (the value bias, plus the pre-norm's bias through W_V). TransformerLens
    /// folds it into b_O (`fold_value_biases`); DLA reports it in the layer's "attn bias" row, not in the heads.
    func lensConstantValue(layer: Int) -> [Double]
}

extension LensReadable {
    /// The embedding sites this model fires, with their DLA names (`hook_embed` → "embed", `hook_pos_embed` → "pos_embed").
    var lensEmbeddingSites: [(name: String, site: String)] {
        [("embed", "hook_embed"), ("pos_embed", "hook_pos_embed")].filter { hookSites.contains($0.site) }
    }
}

/// The model as `LensReadable`, or an error naming what the lens needs.
func lensReadable(_ model: any LanguageModel) throws -> any LensReadable {
    guard let readable = model as? any LensReadable else {
        throw RuleLensError("the logit lens and direct logit attribution need the final norm and unembedding of the model, which this \(model.architecture) model does not offer",
                            fix: "run lens on a GPT-2, Llama or Qwen2 checkpoint; ablate and patch work on any model with TransformerLens's block hook sites")
    }
    return readable
}
