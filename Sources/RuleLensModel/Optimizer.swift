import Foundation
import RuleLensNumerics

/// AdamW as PyTorch's `torch.optim.AdamW`: decoupled weight decay p ← p·(1 − lr·λ), then
/// p ← p − lr/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε). Decay applies to 2-D weight tensors only
/// (embeddings and the four matrices per block), never to biases or LayerNorm parameters.
///
/// The state (`m`, `v`, `t`) is public so a trainer can save and restore it; `m` and `v` have the
/// parameter storage's layout and are allocated on the first step.
public struct AdamW {
    public var beta1: Float, beta2: Float, eps: Float, weightDecay: Float
    /// First-moment estimates, same layout as `GPT.params.storage`.
    public var m = FloatBuffer(count: 0)
    /// Second-moment estimates, same layout as `GPT.params.storage`.
    public var v = FloatBuffer(count: 0)
    /// Number of steps taken.
    public var t = 0

    public init(beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8, weightDecay: Float = 0.01) {
        self.beta1 = beta1; self.beta2 = beta2; self.eps = eps; self.weightDecay = weightDecay
    }

    /// Whether weight decay applies to a tensor (2-D weights only).
    public static func decays(_ tensor: ParameterTensor) -> Bool { tensor.shape.count == 2 }

    /// One update of `model.params` from `model.grads` with learning rate `lr`.
    public mutating func step(_ model: any LanguageModel, lr: Float) {
        step(params: model.parameterStorage, grads: model.gradientStorage, tensors: model.parameterTensors, lr: lr)
    }

    /// One update of a parameter store from its gradients (`tensors`: its tensors, offsets into `params`), decay on
    /// 2-D tensors only. A model whose parameters live in several stores (the VAE: encoder, latent, decoder) keeps
    /// one `AdamW` per store.
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

/// Learning rate with linear warm-up then cosine decay:
/// step < warmup: maxLR·(step+1)/warmup; then minLR + ½(maxLR − minLR)(1 + cos(π·progress)),
/// progress = (step − warmup)/(totalSteps − warmup) clamped to [0, 1].
public struct CosineSchedule: Sendable {
    public let maxLR: Float, minLR: Float, warmupSteps: Int, totalSteps: Int

    public init(maxLR: Float, minLR: Float, warmupSteps: Int, totalSteps: Int) {
        self.maxLR = maxLR; self.minLR = minLR; self.warmupSteps = max(0, warmupSteps); self.totalSteps = totalSteps
    }

    /// The learning rate for 0-based step `step`.
    public func lr(at step: Int) -> Float {
        if step < warmupSteps { return maxLR * Float(step + 1) / Float(warmupSteps) }
        let span = max(1, totalSteps - warmupSteps)
        let progress = min(1, max(0, Double(step - warmupSteps) / Double(span)))
        return minLR + Float(0.5 * (1 + Foundation.cos(Double.pi * progress))) * (maxLR - minLR)
    }
}

/// Scales all gradients so their global L2 norm is at most `maxNorm` (as torch.nn.utils.clip_grad_norm_)
/// and returns the norm before clipping. The norm is summed in Double over fixed chunks (deterministic).
@discardableResult
public func clipGradNorm(_ grads: GPTParameters, maxNorm: Float) -> Float {
    clipGradNorm(grads.storage, maxNorm: maxNorm)
}

/// `clipGradNorm` over any gradient buffer (`LanguageModel.gradientStorage`).
@discardableResult
public func clipGradNorm(_ storage: FloatBuffer, maxNorm: Float) -> Float { clipGradNorm([storage], maxNorm: maxNorm) }

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
