import Foundation
import RuleLensNumerics

extension AdamW {
    /// One AdamW update of a parameter store from its gradients (the same arithmetic as `step(_ model: GPT, lr:)`,
    /// decay on 2-D tensors only), for models whose parameters live in several stores (the VAE: encoder, latent, decoder).
    public mutating func step(params: FloatBuffer, grads: FloatBuffer, tensors: [ParameterTensor], lr: Float) {
        let count = params.count
        if m.count != count { m = FloatBuffer(count: count) }
        if v.count != count { v = FloatBuffer(count: count) }
        t += 1
        let (b1, b2, eps) = (beta1, beta2, eps)
        let stepSize = lr / (1 - Float(Foundation.pow(Double(b1), Double(t))))
        let invBias2Sqrt = 1 / Float((1 - Foundation.pow(Double(b2), Double(t))).squareRoot())
        let p = params.ptr, g = grads.ptr, mp = m.ptr, vp = v.ptr
        for tensor in tensors {
            let decay: Float = Self.decays(tensor) ? 1 - lr * weightDecay : 1
            let base = tensor.offset
            Parallel.forRanges(tensor.count, minPerThread: 16_384) { i0, i1 in
                for i in (base + i0)..<(base + i1) {
                    let grad = g[i]
                    mp[i] = b1 * mp[i] + (1 - b1) * grad
                    vp[i] = b2 * vp[i] + (1 - b2) * grad * grad
                    p[i] = p[i] * decay - stepSize * mp[i] / (vp[i].squareRoot() * invBias2Sqrt + eps)
                }
            }
        }
    }
}

/// Clips the global L2 norm of several gradient buffers together to `maxNorm` (as torch's clip_grad_norm_ over all
/// parameters) and returns the norm before clipping. Summed in Double over fixed chunks (deterministic).
@discardableResult
public func clipGradNorm(_ buffers: [FloatBuffer], maxNorm: Float) -> Float {
    var total = 0.0
    for buffer in buffers {
        let n = buffer.count, g = buffer.ptr
        let chunks = max(1, min(64, n / 4096))
        var partial = [Double](repeating: 0, count: chunks)
        partial.withUnsafeMutableBufferPointer { part in
            let pp = part.baseAddress!
            Parallel.forRanges(chunks) { k0, k1 in
                for k in k0..<k1 {
                    var sum: Double = 0
                    for i in (n * k / chunks)..<(n * (k + 1) / chunks) { sum += Double(g[i]) * Double(g[i]) }
                    pp[k] = sum
                }
            }
        }
        total += partial.reduce(0, +)
    }
    let norm = Float(total.squareRoot())
    if norm.isFinite && norm > maxNorm {
        let scale = maxNorm / (norm + 1e-6)
        for buffer in buffers {
            let g = buffer.ptr
            Parallel.forRanges(buffer.count, minPerThread: 16_384) { i0, i1 in for i in i0..<i1 { g[i] *= scale } }
        }
    }
    return norm
}
