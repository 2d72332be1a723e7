import RuleLensNumerics

/// GELU, tanh approximation (Hugging Face `gelu_new`): 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
///
/// tanh goes through `FastMath.tanh`, a branch-free exp-based form the compiler vectorises: libm's tanhf
/// would cost as much as the MLP matmuls at these sizes. Its absolute error (≲ 2e-7) is below Float
/// rounding of the activations.
enum GELU {
    static let sqrt2OverPi: Float = 0.7978845608028654
    static let cubic: Float = 0.044715

    /// out[i] = gelu(inp[i]) over `count` elements.
    static func forward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, count: Int) {
        Parallel.forRanges(count, minPerThread: 8192) { i0, i1 in
            for i in i0..<i1 {
                let x = inp[i]
                let t = FastMath.tanh(sqrt2OverPi * (x + cubic * x * x * x))
                out[i] = 0.5 * x * (1 + t)
            }
        }
    }

    /// In place: grad[i] ← grad[i] · gelu′(inp[i]) (dout in, dinp out; one buffer so the loop vectorises —
    /// separate but possibly aliasing pointers would send it down the scalar path).
    static func backward(grad: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, count: Int) {
        Parallel.forRanges(count, minPerThread: 8192) { i0, i1 in
            for i in i0..<i1 {
                let x = inp[i]
                let t = FastMath.tanh(sqrt2OverPi * (x + cubic * x * x * x))
                let dtdx = (1 - t * t) * sqrt2OverPi * (1 + 3 * cubic * x * x)
                grad[i] = grad[i] * (0.5 * (1 + t) + 0.5 * x * dtdx)
            }
        }
    }
}

/// Branch-free elementary functions that auto-vectorise (no libm calls in the loop).
enum FastMath {
    /// e^y for y ≤ 0 (0 below −87, so e^−∞ = 0 exactly): Cody–Waite reduction y = k·ln2 + r, |r| ≤ ln2/2, degree-6 Taylor
    /// polynomial (truncation ≈ 1.2e-7 relative), 2^k built from the exponent bits.
    @inline(__always)
    static func expNonPositive(_ y0: Float) -> Float {
        let y = max(y0, -87)
        let shifter: Float = 12_582_912       // 1.5·2²³: adding and subtracting it rounds to an integer
        let k = (y * 1.442695041 + shifter) - shifter
        let r = (y - k * 0.693145752) - k * 1.428606765e-6
        let p = 1 + r * (1 + r * (0.5 + r * (0.16666667 + r * (0.041666668 + r * (0.008333334 + r * 0.0013888889)))))
        let scale = Float(bitPattern: UInt32(bitPattern: Int32(k) + 127) << 23)
        return y0 < -87 ? 0 : p * scale
    }

    /// tanh(u) = sign(u)·(1 − e)/(1 + e) with e = e^(−2|u|): no overflow, absolute error ≲ 2e-7.
    @inline(__always)
    static func tanh(_ u: Float) -> Float {
        let e = expNonPositive(-2 * abs(u))
        let magnitude = (1 - e) / (1 + e)
        return u < 0 ? -magnitude : magnitude
    }
}
