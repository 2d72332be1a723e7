import Foundation
import RuleLensNumerics

/// The latent pieces of the VAE objective, each a forward/backward pair over contiguous [B, k] buffers.
///
/// Objective per batch (Optimus, fb_mode 1): mean over the batch of rec + β·KL_fb + γ·CE_class, where
/// KL_fb = Σⱼ [klⱼ > λ]·klⱼ (a dimension whose KL is at most λ for that example contributes neither value nor gradient).
enum GaussianKL {
    /// klDims[b, j] = ½(μ² + e^{lv} − lv − 1) for μ, lv [rows, k]. Returns (Σ klDims, Σ over entries above
    /// `freeBits`), summed in Double in row order and divided by `rows`: the batch means of KL and KL_fb.
    static func forward(klDims: UnsafeMutablePointer<Float>, mu: UnsafePointer<Float>, logvar: UnsafePointer<Float>,
                        rows B: Int, dim k: Int, freeBits: Float) -> (kl: Double, klFreeBits: Double) {
        var total = 0.0, kept = 0.0
        for i in 0..<(B * k) {
            let value = 0.5 * (mu[i] * mu[i] + Foundation.exp(logvar[i]) - logvar[i] - 1)
            klDims[i] = value
            total += Double(value)
            if value > freeBits { kept += Double(value) }
        }
        return (total / Double(B), kept / Double(B))
    }

    /// Backward of `scale`·KL_fb: dmu += scale·[kl > λ]·μ; dlogvar += scale·[kl > λ]·½(e^{lv} − 1).
    static func backward(dmu: UnsafeMutablePointer<Float>, dlogvar: UnsafeMutablePointer<Float>, klDims: UnsafePointer<Float>,
                         mu: UnsafePointer<Float>, logvar: UnsafePointer<Float>, rows B: Int, dim k: Int, freeBits: Float, scale: Float) {
        for i in 0..<(B * k) where klDims[i] > freeBits {
            dmu[i] += scale * mu[i]
            dlogvar[i] += scale * 0.5 * (Foundation.exp(logvar[i]) - 1)
        }
    }
}

/// z = μ + exp(lv/2)·ε (the reparameterisation trick) and its backward.
enum Reparameterize {
    /// z, μ, lv, ε: [count].
    static func forward(z: UnsafeMutablePointer<Float>, mu: UnsafePointer<Float>, logvar: UnsafePointer<Float>,
                        eps: UnsafePointer<Float>, count: Int) {
        for i in 0..<count { z[i] = mu[i] + Foundation.exp(0.5 * logvar[i]) * eps[i] }
    }

    /// dmu += dz; dlogvar += dz·ε·½exp(lv/2).
    static func backward(dmu: UnsafeMutablePointer<Float>, dlogvar: UnsafeMutablePointer<Float>, dz: UnsafePointer<Float>,
                         logvar: UnsafePointer<Float>, eps: UnsafePointer<Float>, count: Int) {
        for i in 0..<count {
            dmu[i] += dz[i]
            dlogvar[i] += dz[i] * eps[i] * 0.5 * Foundation.exp(0.5 * logvar[i])
        }
    }
}

/// The supervision classifier's loss: softmax cross-entropy of class logits [B, C] against labels [B], averaged over
/// the batch and weighted by γ. Reuses the shared `CrossEntropy` kernel (all weights 1), then scales dlogits by γ.
enum ClassifierLoss {
    /// Returns (mean CE, number of rows whose arg-max is the label); dlogits = γ/B·(softmax − onehot).
    static func forwardBackward(dlogits: UnsafeMutablePointer<Float>, logits: UnsafePointer<Float>, labels: [Int32],
                                classes C: Int, weight gamma: Float) -> (loss: Float, correct: Int) {
        let B = labels.count
        let ones = [Float](repeating: 1, count: B)
        let loss = labels.withUnsafeBufferPointer { l in
            CrossEntropy.forwardBackward(dlogits: dlogits, logits: logits, targets: l.baseAddress!, weights: ones, rows: B, vocab: C)
        }
        for i in 0..<(B * C) { dlogits[i] *= gamma }
        var correct = 0
        for b in 0..<B {
            let row = logits + b * C
            var best = 0
            for c in 1..<max(1, C) where row[c] > row[best] { best = c }
            if best == Int(labels[b]) { correct += 1 }
        }
        return (loss, correct)
    }
}

/// Cyclical β (Optimus's `frange_cycle_zero_linear`, in closed form): the run of `totalSteps` is cut into `cycles`
/// periods; within each, β is 0 for the first `ratioZero` share, rises linearly to `beta` over the next
/// `ratioIncrease` share, then stays at `beta`.
public struct BetaSchedule: Codable, Equatable, Sendable {
    public var beta: Float, cycles: Int, ratioZero: Float, ratioIncrease: Float, totalSteps: Int

    public init(beta: Float, cycles: Int, ratioZero: Float, ratioIncrease: Float, totalSteps: Int) {
        self.beta = beta; self.cycles = cycles; self.ratioZero = ratioZero; self.ratioIncrease = ratioIncrease; self.totalSteps = totalSteps
    }

    /// β at 0-based training step `step`, exactly as Optimus's loop writes it: cycle c starts at ⌊c·P⌋ (P = total/cycles);
    /// step s belongs to the latest cycle started, at iteration i = ⌈s − c·P⌉; β = 0 while i < P·ratioZero, then
    /// (i − i₀)·β/(P·ratioIncrease) with i₀ = ⌈P·ratioZero⌉ while that is ≤ β, then β.
    public func value(at step: Int) -> Float {
        let period = Double(max(1, totalSteps)) / Double(max(1, cycles))
        var c = min(max(1, cycles) - 1, Int(Double(step) / period))
        while c > 0 && Int((Double(c) * period).rounded(.down)) > step { c -= 1 }
        while c + 1 < max(1, cycles) && Int((Double(c + 1) * period).rounded(.down)) <= step { c += 1 }
        let i = (Double(step) - Double(c) * period).rounded(.up)
        if i < period * Double(ratioZero) { return 0 }
        guard ratioIncrease > 0 else { return beta }
        let increment = Double(beta) / (period * Double(ratioIncrease))
        let v = (i - (period * Double(ratioZero)).rounded(.up)) * increment
        return v <= Double(beta) ? Float(v) : beta
    }

    /// Checks the options; errors name the flag and the fix.
    public func validate() throws {
        guard beta >= 0, beta.isFinite else { throw RuleLensError("--beta is \(beta), but it must be ≥ 0", fix: "pass a non-negative --beta (Optimus uses 1.0)") }
        guard cycles >= 1 else { throw RuleLensError("--beta-cycles is \(cycles), but it must be ≥ 1", fix: "pass --beta-cycles 1 or more") }
        guard ratioZero >= 0, ratioIncrease >= 0, ratioZero + ratioIncrease <= 1 else {
            throw RuleLensError("--ratio-zero \(ratioZero) and --ratio-increase \(ratioIncrease) must be ≥ 0 and sum to at most 1",
                                fix: "e.g. --ratio-zero 0.5 --ratio-increase 0.25 (Optimus's setting)")
        }
    }
}
