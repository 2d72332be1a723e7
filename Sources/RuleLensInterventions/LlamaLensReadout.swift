import RuleLensModel
import RuleLensNumerics

/// The Llama/Qwen2 family: final RMSNorm without bias (`model.norm`), the unembedding `model.embed_tokens.weight` (tied)
/// or `lm_head.weight`, W_O = `o_proj.weight` ([d_model, H·d_head], transposed here). RMSNorm has no bias, so the
/// constant part of z is the value bias alone (Qwen2; Llama with `attention_bias`), each key/value head's bias
/// passed to the query heads that share it (grouped-query attention).
extension LlamaModel: LensReadable {
    public var lensFinalNorm: FinalNorm {
        FinalNorm(kind: .rmsNorm, weight: params.pointer("model.norm.weight"), bias: nil, eps: Double(config.rmsNormEps))
    }

    public var lensUnembedding: UnsafePointer<Float> {
        UnsafePointer(params.pointer(config.tiedEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight"))
    }

    /// o_proj.weightᵀ: [H·dh, d].
    public func lensAttentionOutput(layer l: Int) -> [Float] {
        let d = config.dModel, q = config.qWidth
        let o = params.pointer("model.layers.\(l).self_attn.o_proj.weight")   // [d, H·dh]
        var out = [Float](repeating: 0, count: q * d)
        for k in 0..<d { for j in 0..<q { out[j * d + k] = o[k * q + j] } }
        return out
    }

    /// v_proj.bias of key/value head h / (H / Hkv) for query head h; zeros without q/k/v biases.
    public func lensConstantValue(layer l: Int) -> [Double] {
        let c = config, group = c.nHead / c.nKVHead
        guard c.qkvBias else { return [Double](repeating: 0, count: c.qWidth) }
        let bias = params.pointer("model.layers.\(l).self_attn.v_proj.bias")   // [Hkv·dh]
        return (0..<c.qWidth).map { j in
            let h = j / c.dHead, i = j % c.dHead
            return Double(bias[(h / group) * c.dHead + i])
        }
    }
}
