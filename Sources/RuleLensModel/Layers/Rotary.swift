import Foundation
import RuleLensNumerics

/// Rotary position embedding (RoPE) in Hugging Face's rotate-half convention (Llama, Qwen2):
/// for each head's vector x = [x₁ | x₂] (halves of dh/2) at position p,
///   out₁ = x₁·cos(p·θᵢ) − x₂·sin(p·θᵢ),  out₂ = x₂·cos(p·θᵢ) + x₁·sin(p·θᵢ),  θᵢ = base^(−2i/dh).
/// Applied in place to the q and k rows before attention; the backward is the inverse rotation.
enum Rotary {
    /// cos and sin of p·θᵢ for p in 0..<positions, i in 0..<dh/2: each [positions, dh/2]. θᵢ is computed in Float as
    /// Hugging Face does (1 / base^(2i/dh)), the angle p·θᵢ in Float, its cos/sin in Double then rounded.
    struct Tables {
        let positions: Int, half: Int
        let cos: [Float], sin: [Float]
        init(positions: Int, dHead: Int, base: Float) {
            precondition(dHead % 2 == 0, "Rotary: head width \(dHead) must be even")
            self.positions = positions; half = dHead / 2
            var c = [Float](repeating: 0, count: positions * half), s = c
            for i in 0..<half {
                let inverseFrequency = 1 / Float(Foundation.pow(Double(base), Double(Float(2 * i) / Float(dHead))))
                for p in 0..<positions {
                    let angle = Double(Float(p) * inverseFrequency)
                    c[p * half + i] = Float(Foundation.cos(angle)); s[p * half + i] = Float(Foundation.sin(angle))
                }
            }
            cos = c; sin = s
        }
    }

    /// Rotates x in place: rows b·T + t of `x` (row stride `stride`), heads 0..<heads at h·dh, by position
    /// `positionOffset + t`. `inverse` rotates by −angle (the backward pass, and undoing a rotation).
    static func apply(_ x: UnsafeMutablePointer<Float>, stride: Int, batch B: Int, seqLen T: Int, heads: Int, dHead dh: Int,
                      tables: Tables, positionOffset: Int = 0, inverse: Bool = false) {
        let half = dh / 2
        precondition(half == tables.half && positionOffset + T <= tables.positions, "Rotary: tables too small")
        let sign: Float = inverse ? -1 : 1
        tables.cos.withUnsafeBufferPointer { cosBuffer in
            tables.sin.withUnsafeBufferPointer { sinBuffer in
                let cosTable = cosBuffer.baseAddress!, sinTable = sinBuffer.baseAddress!
                Parallel.forRanges(B * T, minPerThread: 16) { r0, r1 in
                    for n in r0..<r1 {
                        let p = positionOffset + n % T
                        let c = cosTable + p * half, s = sinTable + p * half
                        for h in 0..<heads {
                            let x1 = x + n * stride + h * dh, x2 = x1 + half
                            for i in 0..<half {
                                let a = x1[i], b = x2[i], si = sign * s[i]
                                x1[i] = a * c[i] - b * si
                                x2[i] = b * c[i] + a * si
                            }
                        }
                    }
                }
            }
        }
    }

    /// Backward of `apply`: the gradient rotates back, dx = Rᵀ·dy, in place.
    static func backward(_ grad: UnsafeMutablePointer<Float>, stride: Int, batch B: Int, seqLen T: Int, heads: Int, dHead dh: Int,
                         tables: Tables, positionOffset: Int = 0) {
        apply(grad, stride: stride, batch: B, seqLen: T, heads: heads, dHead: dh, tables: tables, positionOffset: positionOffset, inverse: true)
    }
}
