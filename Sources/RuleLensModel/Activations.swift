import RuleLensNumerics

/// Named activation buffers of one forward/backward pass, sized for the largest batch × seqLen seen and
/// reused. Per-layer buffers are stacked [L, …]; `layer(l)` offsets use the current pass's sizes.
final class Activations {
    let config: GPTConfig
    /// Extra key/value slots per attention call (1 with memory injection): attention rows hold P + T keys.
    let prefixSlots: Int
    // Saved for backward (per layer unless noted).
    var resid = FloatBuffer(count: 0)      // [2L+1, N, d]: 2l = resid_pre of l, 2l+1 = resid_mid, 2L = final resid_post
                                           // (inference-only passes: 3 rotating slots, see GPT.residSlot)
    var ln1 = FloatBuffer(count: 0)        // [L, N, d]  ln_1 output (after affine)
    var ln1Mean = FloatBuffer(count: 0)    // [L, N]
    var ln1Rstd = FloatBuffer(count: 0)    // [L, N]
    var qkv = FloatBuffer(count: 0)        // [L, N, 3d]
    var pattern = FloatBuffer(count: 0)    // [L, B, H, T, P+T]
    var z = FloatBuffer(count: 0)          // [L, N, d]  attention-weighted values before c_proj
    var ln2 = FloatBuffer(count: 0)        // [L, N, d]
    var ln2Mean = FloatBuffer(count: 0)    // [L, N]
    var ln2Rstd = FloatBuffer(count: 0)    // [L, N]
    var fcPre = FloatBuffer(count: 0)      // [L, N, dMLP]  mlp.hook_pre
    var fcPost = FloatBuffer(count: 0)     // [L, N, dMLP]  mlp.hook_post (GELU output)
    var lnf = FloatBuffer(count: 0)        // [N, d]
    var lnfMean = FloatBuffer(count: 0)    // [N]
    var lnfRstd = FloatBuffer(count: 0)    // [N]
    var logits = FloatBuffer(count: 0)     // [N, V]
    var dlogits = FloatBuffer(count: 0)    // [N, V]
    // Scratch reused by every layer.
    var attnOut = FloatBuffer(count: 0)    // [N, d]
    var mlpOut = FloatBuffer(count: 0)     // [N, d]
    var hookScratchA = FloatBuffer(count: 0)  // [N, d]  hook_embed, ln*.hook_normalized, hook_q/k/v copies
    var hookScratchB = FloatBuffer(count: 0)  // [N, d]  hook_pos_embed
    // Gradient scratch (allocated on the first backward).
    var dresid = FloatBuffer(count: 0)     // [N, d]  running gradient of the residual stream
    var dln = FloatBuffer(count: 0)        // [N, d]
    var dz = FloatBuffer(count: 0)         // [N, d]
    var dqkv = FloatBuffer(count: 0)       // [N, 3d]
    var dfc = FloatBuffer(count: 0)        // [N, dMLP]
    var dpattern = FloatBuffer(count: 0)   // [B, H, T, P+T]
    var dPrefixK = FloatBuffer(count: 0)   // [B, P, d]  memory injection: gradient of the slot as a key
    var dPrefixV = FloatBuffer(count: 0)   // [B, P, d]  … and as a value

    init(config: GPTConfig, prefixSlots: Int = 0) { self.config = config; self.prefixSlots = prefixSlots }

    private func grow(_ buffer: inout FloatBuffer, _ count: Int) {
        if buffer.count < count { buffer = FloatBuffer(count: count) }
    }

    /// Makes every forward buffer large enough for batch × seqLen, with `L` per-layer slots
    /// (nLayer when activations are kept for backward, 1 for inference-only passes).
    func ensureForward(batch B: Int, seqLen T: Int, layerSlots L: Int) {
        let c = config, N = B * T, d = c.dModel
        grow(&resid, (L == c.nLayer ? 2 * L + 1 : 3) * N * d)
        grow(&ln1, L * N * d); grow(&ln1Mean, L * N); grow(&ln1Rstd, L * N)
        grow(&qkv, L * N * 3 * d)
        grow(&pattern, L * B * c.nHead * T * (prefixSlots + T))
        grow(&z, L * N * d)
        grow(&ln2, L * N * d); grow(&ln2Mean, L * N); grow(&ln2Rstd, L * N)
        grow(&fcPre, L * N * c.dMLP); grow(&fcPost, L * N * c.dMLP)
        grow(&lnf, N * d); grow(&lnfMean, N); grow(&lnfRstd, N)
        grow(&logits, N * c.vocabSize)
        grow(&attnOut, N * d); grow(&mlpOut, N * d)
    }

    /// Scratch needed only when hooks are requested.
    func ensureHookScratch(batch B: Int, seqLen T: Int) {
        grow(&hookScratchA, B * T * config.dModel); grow(&hookScratchB, B * T * config.dModel)
    }

    /// Gradient buffers for loss + backward.
    func ensureBackward(batch B: Int, seqLen T: Int) {
        let c = config, N = B * T, d = c.dModel
        grow(&dlogits, N * c.vocabSize)
        grow(&dresid, N * d); grow(&dln, N * d); grow(&dz, N * d)
        grow(&dqkv, N * 3 * d); grow(&dfc, N * c.dMLP)
        grow(&dpattern, B * c.nHead * T * (prefixSlots + T))
        grow(&dPrefixK, B * prefixSlots * d); grow(&dPrefixV, B * prefixSlots * d)
    }
}
