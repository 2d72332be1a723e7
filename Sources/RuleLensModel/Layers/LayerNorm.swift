import Foundation
import RuleLensNumerics

/// LayerNorm over the last dimension: out = (x − mean)·rstd·weight + bias, rstd = 1/√(var + eps),
/// with the biased variance (as PyTorch). Mean and rstd are saved for the backward pass.
enum LayerNorm {
    /// Fused forward. inp, out [N, C]; mean, rstd [N].
    static func forward(out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
                        inp: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                        rows N: Int, cols C: Int, eps: Float) {
        Parallel.forRanges(N, minPerThread: 16) { r0, r1 in
            for n in r0..<r1 {
                let x = inp + n * C, o = out + n * C
                let (m, s) = stats(x, C, eps)
                mean[n] = m; rstd[n] = s
                for i in 0..<C {
                    let normalized = (x[i] - m) * s
                    o[i] = normalized * weight[i] + bias[i]
                }
            }
        }
    }

    /// First half of the split forward used when `hook_normalized` is requested:
    /// normalized[N, C] = (x − mean)·rstd, before the affine weight and bias.
    static func normalize(normalized: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
                          inp: UnsafePointer<Float>, rows N: Int, cols C: Int, eps: Float) {
        Parallel.forRanges(N, minPerThread: 16) { r0, r1 in
            for n in r0..<r1 {
                let x = inp + n * C, o = normalized + n * C
                let (m, s) = stats(x, C, eps)
                mean[n] = m; rstd[n] = s
                for i in 0..<C { o[i] = (x[i] - m) * s }
            }
        }
    }

    /// Second half of the split forward: out = normalized·weight + bias (the same arithmetic as `forward`,
    /// so hooked and unhooked runs agree bit for bit).
    static func affine(out: UnsafeMutablePointer<Float>, normalized: UnsafePointer<Float>,
                       weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, rows N: Int, cols C: Int) {
        Parallel.forRanges(N, minPerThread: 16) { r0, r1 in
            for n in r0..<r1 {
                let x = normalized + n * C, o = out + n * C
                for i in 0..<C { o[i] = x[i] * weight[i] + bias[i] }
            }
        }
    }

    @inline(__always)
    private static func stats(_ x: UnsafePointer<Float>, _ C: Int, _ eps: Float) -> (Float, Float) {
        var sum: Float = 0
        for i in 0..<C { sum += x[i] }
        let m = sum / Float(C)
        var sq: Float = 0
        for i in 0..<C { let dx = x[i] - m; sq += dx * dx }
        return (m, 1 / (sq / Float(C) + eps).squareRoot())
    }

    /// Backward, accumulating: dinp[N, C] += …, dweight[C] += Σ normalized·dout, dbias[C] += Σ dout.
    /// Rows are split into fixed chunks whose partial parameter sums are added in chunk order (deterministic).
    static func backward(dinp: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>, dbias: UnsafeMutablePointer<Float>,
                         dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                         mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>, rows N: Int, cols C: Int) {
        let chunks = Reduce.chunks(rows: N)
        let partial = FloatBuffer(count: chunks * 2 * C)   // [chunk, {dweight, dbias}, C]
        let pp = partial.ptr
        Parallel.forRanges(chunks) { k0, k1 in
            for k in k0..<k1 {
                let dw = pp + k * 2 * C, db = dw + C
                for n in (N * k / chunks)..<(N * (k + 1) / chunks) {
                    let x = inp + n * C, dy = dout + n * C, dx = dinp + n * C
                    let m = mean[n], s = rstd[n]
                    var dnormMean: Float = 0, dnormNormMean: Float = 0
                    for i in 0..<C {
                        let normalized = (x[i] - m) * s
                        let dnorm = weight[i] * dy[i]
                        dnormMean += dnorm
                        dnormNormMean += dnorm * normalized
                    }
                    dnormMean /= Float(C); dnormNormMean /= Float(C)
                    for i in 0..<C {
                        let normalized = (x[i] - m) * s
                        let dnorm = weight[i] * dy[i]
                        db[i] += dy[i]
                        dw[i] += normalized * dy[i]
                        dx[i] += s * (dnorm - dnormMean - normalized * dnormNormMean)
                    }
                }
            }
        }
        for k in 0..<chunks {
            let dw = pp + k * 2 * C, db = dw + C
            for i in 0..<C { dweight[i] += dw[i]; dbias[i] += db[i] }
        }
    }
}
