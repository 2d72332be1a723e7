import RuleLensModel
import RuleLensNumerics

/// GPT-2: final LayerNorm with bias (`ln_f`), the unembedding `wte` (tied) or `lm_head.weight`, W_O = `attn.c_proj.weight`
/// (Conv1D layout [in = H·d_head, out = d_model], already the rows `lensAttentionOutput` returns).
extension GPT: LensReadable {
    private var prefix: String { wiring.tensorPrefix }

    public var lensFinalNorm: FinalNorm {
        FinalNorm(kind: .layerNorm, weight: params.pointer(prefix + "ln_f.weight"), bias: params.pointer(prefix + "ln_f.bias"),
                  eps: Double(config.layerNormEps))
    }

    public var lensUnembedding: UnsafePointer<Float> {
        UnsafePointer(params.pointer(config.tiedHead ? prefix + "wte.weight" : "lm_head.weight"))
    }

    public func lensAttentionOutput(layer l: Int) -> [Float] {
        let d = config.dModel
        return Array(UnsafeBufferPointer(start: params.pointer(prefix + "h.\(l).attn.c_proj.weight"), count: d * d))
    }

    /// c_attn.bias[2d..<3d] + ln_1.bias · c_attn.weight[:, 2d..<3d].
    public func lensConstantValue(layer l: Int) -> [Double] {
        let d = config.dModel
        let bias = params.pointer(prefix + "h.\(l).attn.c_attn.bias") + 2 * d
        let weight = params.pointer(prefix + "h.\(l).attn.c_attn.weight")   // [d, 3d]
        let lnBias = params.pointer(prefix + "h.\(l).ln_1.bias")
        return (0..<d).map { j in
            var v = Double(bias[j])
            for k in 0..<d { v += Double(lnBias[k]) * Double(weight[k * 3 * d + 2 * d + j]) }
            return v
        }
    }
}
