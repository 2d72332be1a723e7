import RuleLensNumerics

/// The gated MLP activation of the Llama/Qwen2 family: hidden = silu(gate) ⊙ up, silu(x) = x·σ(x).
/// (TransformerLens: `mlp.hook_pre` = gate, `mlp.hook_pre_linear` = up, `mlp.hook_post` = hidden.)
enum SwiGLU {
    @inline(__always)
    static func sigmoid(_ x: Float) -> Float {
        // σ(x) through e^(−|x|) ≤ 1, so nothing overflows and the loop vectorises.
        let e = FastMath.expNonPositive(-abs(x))
        return x >= 0 ? 1 / (1 + e) : e / (1 + e)
    }

    /// hidden[i] = silu(gate[i]) · up[i] over `count` elements.
    static func forward(hidden: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>, count: Int) {
        Parallel.forRanges(count, minPerThread: 8192) { i0, i1 in
            for i in i0..<i1 { let g = gate[i]; hidden[i] = g * sigmoid(g) * up[i] }
        }
    }

    /// From dhidden: dgate = dhidden · up · σ(g)(1 + g(1 − σ(g))), dup = dhidden · silu(g). Both overwritten.
    static func backward(dgate: UnsafeMutablePointer<Float>, dup: UnsafeMutablePointer<Float>, dhidden: UnsafePointer<Float>,
                         gate: UnsafePointer<Float>, up: UnsafePointer<Float>, count: Int) {
        Parallel.forRanges(count, minPerThread: 8192) { i0, i1 in
            for i in i0..<i1 {
                let g = gate[i], s = sigmoid(g), dh = dhidden[i]
                dgate[i] = dh * up[i] * s * (1 + g * (1 - s))
                dup[i] = dh * g * s
            }
        }
    }
}
