import RuleLensNumerics

/// Activation buffers of one Llama/Qwen2 forward/backward pass, sized for the largest batch × seqLen seen and
/// reused. Per-layer buffers hold `slots` layers (all layers when kept for backward, 1 for inference-only passes).
final class LlamaActivations {
    let config: LlamaConfig
    // Saved for backward (per layer slot unless noted). N = B·T.
    var resid = FloatBuffer(count: 0)     // [2L+1, N, d] (3 rotating slots for inference, as GPT.residSlot)
    var ln1 = FloatBuffer(count: 0)       // [L, N, d]  input_layernorm output (after the weight)
    var ln1Rstd = FloatBuffer(count: 0)   // [L, N]
    var q = FloatBuffer(count: 0)         // [L, N, H·dh]    rotated queries (hook_rot_q)
    var k = FloatBuffer(count: 0)         // [L, N, Hkv·dh]  rotated keys (hook_rot_k)
    var v = FloatBuffer(count: 0)         // [L, N, Hkv·dh]
    var pattern = FloatBuffer(count: 0)   // [L, B, H, T, T]
    var z = FloatBuffer(count: 0)         // [L, N, H·dh]
    var ln2 = FloatBuffer(count: 0)       // [L, N, d]
    var ln2Rstd = FloatBuffer(count: 0)   // [L, N]
    var gate = FloatBuffer(count: 0)      // [L, N, dMLP]  gate_proj output (mlp.hook_pre)
    var up = FloatBuffer(count: 0)        // [L, N, dMLP]  up_proj output (mlp.hook_pre_linear)
    var hidden = FloatBuffer(count: 0)    // [L, N, dMLP]  silu(gate)·up (mlp.hook_post)
    var lnf = FloatBuffer(count: 0)       // [N, d]
    var lnfRstd = FloatBuffer(count: 0)   // [N]
    var logits = FloatBuffer(count: 0)    // [N, V]
    // Scratch shared by every layer.
    var attnOut = FloatBuffer(count: 0)   // [N, d]
    var mlpOut = FloatBuffer(count: 0)    // [N, d]
    var hookScratch = FloatBuffer(count: 0)  // [N, d]  ln*.hook_normalized
    var scale = FloatBuffer(count: 0)     // [2, N]  ln*.hook_scale and its unedited copy
    // Gradients (allocated on the first loss).
    var dlogits = FloatBuffer(count: 0)   // [N, V]
    var dresid = FloatBuffer(count: 0)    // [N, d]
    var dln = FloatBuffer(count: 0)       // [N, d]
    var dz = FloatBuffer(count: 0)        // [N, H·dh]
    var dq = FloatBuffer(count: 0)        // [N, H·dh]
    var dk = FloatBuffer(count: 0)        // [N, Hkv·dh]
    var dv = FloatBuffer(count: 0)        // [N, Hkv·dh]
    var dpattern = FloatBuffer(count: 0)  // [B, H, T, T]
    var dhidden = FloatBuffer(count: 0)   // [N, dMLP]
    var dgate = FloatBuffer(count: 0)     // [N, dMLP]
    var dup = FloatBuffer(count: 0)       // [N, dMLP]

    init(config: LlamaConfig) { self.config = config }

    private func grow(_ buffer: inout FloatBuffer, _ count: Int) {
        if buffer.count < count { buffer = FloatBuffer(count: count) }
    }

    func ensureForward(batch B: Int, seqLen T: Int, layerSlots L: Int) {
        let c = config, N = B * T, d = c.dModel
        grow(&resid, (L == c.nLayer ? 2 * L + 1 : 3) * N * d)
        grow(&ln1, L * N * d); grow(&ln1Rstd, L * N)
        grow(&q, L * N * c.qWidth); grow(&k, L * N * c.kvWidth); grow(&v, L * N * c.kvWidth)
        grow(&pattern, L * B * c.nHead * T * T)
        grow(&z, L * N * c.qWidth)
        grow(&ln2, L * N * d); grow(&ln2Rstd, L * N)
        grow(&gate, L * N * c.dMLP); grow(&up, L * N * c.dMLP); grow(&hidden, L * N * c.dMLP)
        grow(&lnf, N * d); grow(&lnfRstd, N)
        grow(&logits, N * c.vocabSize)
        grow(&attnOut, N * d); grow(&mlpOut, N * d)
    }

    func ensureHookScratch(batch B: Int, seqLen T: Int) {
        grow(&hookScratch, B * T * config.dModel); grow(&scale, 2 * B * T)
    }

    func ensureBackward(batch B: Int, seqLen T: Int) {
        let c = config, N = B * T, d = c.dModel
        grow(&dlogits, N * c.vocabSize)
        grow(&dresid, N * d); grow(&dln, N * d)
        grow(&dz, N * c.qWidth); grow(&dq, N * c.qWidth); grow(&dk, N * c.kvWidth); grow(&dv, N * c.kvWidth)
        grow(&dpattern, B * c.nHead * T * T)
        grow(&dhidden, N * c.dMLP); grow(&dgate, N * c.dMLP); grow(&dup, N * c.dMLP)
    }
}
