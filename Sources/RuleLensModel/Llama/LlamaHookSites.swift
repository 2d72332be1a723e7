/// The hook sites of a Llama/Qwen2-family forward pass, named exactly as TransformerLens names them for this family.
///
/// | site | shape |
/// |---|---|
/// | `hook_embed` | [batch, pos, d_model] |
/// | `blocks.{l}.hook_resid_pre/_mid/_post`, `hook_attn_out`, `hook_mlp_out` | [batch, pos, d_model] |
/// | `blocks.{l}.ln1.hook_scale`, `ln2.hook_scale` (√(mean(x²) + eps), the divisor) | [batch, pos, 1] |
/// | `blocks.{l}.ln1.hook_normalized`, `ln2.hook_normalized` (x / scale, before the weight) | [batch, pos, d_model] |
/// | `blocks.{l}.attn.hook_q`, `hook_rot_q`, `hook_z` | [batch, pos, head, d_head] |
/// | `blocks.{l}.attn.hook_k`, `hook_v`, `hook_rot_k` (key/value heads, not repeated) | [batch, pos, kv_head, d_head] |
/// | `blocks.{l}.attn.hook_attn_scores` (scaled, masked = −∞), `hook_pattern` | [batch, head, q_pos, k_pos] |
/// | `blocks.{l}.mlp.hook_pre` (gate_proj), `hook_pre_linear` (up_proj), `hook_post` (silu(gate)·up) | [batch, pos, d_mlp] |
/// | `ln_final.hook_scale`, `ln_final.hook_normalized` | [batch, pos, 1], [batch, pos, d_model] |
/// | `unembed.hook_out` (logits) | [batch, pos, d_vocab] |
///
/// Without rotary positions (`--positions none`) there are no `hook_rot_q`/`hook_rot_k` sites.
public enum LlamaHookSites {
    static func blockSuffixes(rope: Bool) -> [String] {
        ["hook_resid_pre", "ln1.hook_scale", "ln1.hook_normalized",
         "attn.hook_q", "attn.hook_k", "attn.hook_v"]
        + (rope ? ["attn.hook_rot_q", "attn.hook_rot_k"] : [])
        + ["attn.hook_attn_scores", "attn.hook_pattern", "attn.hook_z",
           "hook_attn_out", "hook_resid_mid", "ln2.hook_scale", "ln2.hook_normalized",
           "mlp.hook_pre", "mlp.hook_pre_linear", "mlp.hook_post", "hook_mlp_out", "hook_resid_post"]
    }

    /// Every site for `config`, in forward order.
    public static func names(for c: LlamaConfig) -> [String] {
        var out = ["hook_embed"]
        let suffixes = blockSuffixes(rope: c.positions == .rope)
        for l in 0..<c.nLayer { for s in suffixes { out.append("blocks.\(l).\(s)") } }
        out += ["ln_final.hook_scale", "ln_final.hook_normalized", "unembed.hook_out"]
        return out
    }

    /// Dimension names of a site, batch first (empty for an unknown name).
    public static func dims(of name: String) -> [String] {
        switch HookSites.suffix(of: name) {
        case "attn.hook_q", "attn.hook_rot_q", "attn.hook_z": return ["batch", "pos", "head", "d_head"]
        case "attn.hook_k", "attn.hook_v", "attn.hook_rot_k": return ["batch", "pos", "kv_head", "d_head"]
        case "attn.hook_attn_scores", "attn.hook_pattern": return ["batch", "head", "q_pos", "k_pos"]
        case "mlp.hook_pre", "mlp.hook_pre_linear", "mlp.hook_post": return ["batch", "pos", "d_mlp"]
        case "ln1.hook_scale", "ln2.hook_scale", "ln_final.hook_scale": return ["batch", "pos", "one"]
        case "unembed.hook_out": return ["batch", "pos", "d_vocab"]
        case "hook_embed", "hook_resid_pre", "hook_resid_mid", "hook_resid_post", "hook_attn_out", "hook_mlp_out",
             "ln1.hook_normalized", "ln2.hook_normalized", "ln_final.hook_normalized":
            return ["batch", "pos", "d_model"]
        default: return []
        }
    }

    /// Full shape of a site for one forward pass (batch first); empty for an unknown name.
    public static func shape(of name: String, config c: LlamaConfig, batch B: Int, seqLen T: Int) -> [Int] {
        dims(of: name).map { dim in
            switch dim {
            case "batch": return B
            case "pos", "q_pos", "k_pos": return T
            case "head": return c.nHead
            case "kv_head": return c.nKVHead
            case "d_head": return c.dHead
            case "d_model": return c.dModel
            case "d_mlp": return c.dMLP
            case "d_vocab": return c.vocabSize
            default: return 1
            }
        }
    }
}

/// One block's site names, built once (the forward pass never formats strings).
struct LlamaBlockSites {
    let residPre, ln1Scale, ln1Normalized, q, k, v, rotQ, rotK, attnScores, pattern, z, attnOut, residMid: String
    let ln2Scale, ln2Normalized, mlpPre, mlpPreLinear, mlpPost, mlpOut, residPost: String
    init(layer l: Int) {
        let p = "blocks.\(l)."
        residPre = p + "hook_resid_pre"; ln1Scale = p + "ln1.hook_scale"; ln1Normalized = p + "ln1.hook_normalized"
        q = p + "attn.hook_q"; k = p + "attn.hook_k"; v = p + "attn.hook_v"
        rotQ = p + "attn.hook_rot_q"; rotK = p + "attn.hook_rot_k"
        attnScores = p + "attn.hook_attn_scores"; pattern = p + "attn.hook_pattern"; z = p + "attn.hook_z"
        attnOut = p + "hook_attn_out"; residMid = p + "hook_resid_mid"
        ln2Scale = p + "ln2.hook_scale"; ln2Normalized = p + "ln2.hook_normalized"
        mlpPre = p + "mlp.hook_pre"; mlpPreLinear = p + "mlp.hook_pre_linear"; mlpPost = p + "mlp.hook_post"
        mlpOut = p + "hook_mlp_out"; residPost = p + "hook_resid_post"
    }
}
