import RuleLensNumerics

/// RMSNorm over the last dimension (Llama/Qwen2): out = x · rstd · weight, rstd = 1/√(mean(x²) + eps).
/// rstd is saved for the backward pass. TransformerLens exposes 1/rstd as `hook_scale` and x·rstd as `hook_normalized`.
enum RMSNorm {
    /// Fused forward. inp, out [N, C]; rstd [N].
    static func forward(out: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                        weight: UnsafePointer<Float>, rows N: Int, cols C: Int, eps: Float) {
        Parallel.forRanges(N, minPerThread: 16) { r0, r1 in
            for n in r0..<r1 {
                let x = inp + n * C, o = out + n * C
                let s = inverseRMS(x, C, eps)
                rstd[n] = s
                for i in 0..<C { o[i] = (x[i] * s) * weight[i] }
            }
        }
    }

    /// First half of the split forward used when hooks want the normalised values: normalized[N, C] = x · rstd.
    static func normalize(normalized: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                          rows N: Int, cols C: Int, eps: Float) {
        Parallel.forRanges(N, minPerThread: 16) { r0, r1 in
            for n in r0..<r1 {
                let x = inp + n * C, o = normalized + n * C
                let s = inverseRMS(x, C, eps)
                rstd[n] = s
                for i in 0..<C { o[i] = x[i] * s }
            }
        }
    }

    /// Second half: out = normalized · weight (the same arithmetic as `forward`, so hooked and unhooked runs agree bitwise).
    static func scale(out: UnsafeMutablePointer<Float>, normalized: UnsafePointer<Float>, weight: UnsafePointer<Float>, rows N: Int, cols C: Int) {
        Parallel.forRanges(N, minPerThread: 16) { r0, r1 in
            for n in r0..<r1 {
                let x = normalized + n * C, o = out + n * C
                for i in 0..<C { o[i] = x[i] * weight[i] }
            }
        }
    }

    @inline(__always)
    private static func inverseRMS(_ x: UnsafePointer<Float>, _ C: Int, _ eps: Float) -> Float {
        var sq: Float = 0
        for i in 0..<C { sq += x[i] * x[i] }
        return 1 / (sq / Float(C) + eps).squareRoot()
    }

    /// Backward, accumulating: dinp[N, C] += rstd·g − rstd³·x·(Σⱼ gⱼxⱼ)/C with g = dout ⊙ weight;
    /// dweight[C] += Σₙ x·rstd·dout. Rows are split into fixed chunks whose partial sums are added in chunk order.
    static func backward(dinp: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                         inp: UnsafePointer<Float>, weight: UnsafePointer<Float>, rstd: UnsafePointer<Float>, rows N: Int, cols C: Int) {
        let chunks = Reduce.chunks(rows: N)
        let partial = FloatBuffer(count: chunks * C)   // [chunk, C] partial dweight
        let pp = partial.ptr
        Parallel.forRanges(chunks) { k0, k1 in
            for k in k0..<k1 {
                let dw = pp + k * C
                for n in (N * k / chunks)..<(N * (k + 1) / chunks) {
                    let x = inp + n * C, dy = dout + n * C, dx = dinp + n * C
                    let s = rstd[n]
                    var gx: Float = 0
                    for i in 0..<C { gx += dy[i] * weight[i] * x[i] }
                    let coefficient = s * s * s * gx / Float(C)
                    for i in 0..<C {
                        dw[i] += x[i] * s * dy[i]
                        dx[i] += s * dy[i] * weight[i] - coefficient * x[i]
                    }
                }
            }
        }
        for k in 0..<chunks {
            let dw = pp + k * C
            for i in 0..<C { dweight[i] += dw[i] }
        }
    }
}
