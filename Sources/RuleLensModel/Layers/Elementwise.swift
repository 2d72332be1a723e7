import RuleLensNumerics

/// Elementwise out = a + b, the exact Float sum (the residual identities rely on it).
@inline(__always)
func addElementwise(out: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) {
    Parallel.forRanges(count, minPerThread: 16_384) { i0, i1 in
        for i in i0..<i1 { out[i] = a[i] + b[i] }
    }
}

/// dst[r, 0..<cols] = src[r, 0..<cols] for strided row-major matrices.
func copyStrided(_ dst: UnsafeMutablePointer<Float>, ld dstLD: Int, _ src: UnsafePointer<Float>, ld srcLD: Int, rows: Int, cols: Int) {
    Parallel.forRanges(rows, minPerThread: 64) { r0, r1 in
        for r in r0..<r1 { (dst + r * dstLD).update(from: src + r * srcLD, count: cols) }
    }
}

/// Adding one vector per example to every position: how a latent or a rule prior is injected into Q (after the
/// projection, before the heads split) or into the token embeddings.
enum PerExample {
    /// x[b, t, 0..<width] += scale · vectors[b, 0..<width] for rows b·T + t of x (row stride `stride`; the columns may
    /// start anywhere in the row, e.g. the q third of a fused qkv buffer). vectors [B, width] contiguous.
    static func add(_ x: UnsafeMutablePointer<Float>, stride: Int, vectors: UnsafePointer<Float>, batch B: Int, seqLen T: Int,
                    width: Int, scale: Float = 1) {
        Parallel.forRanges(B * T, minPerThread: 64) { r0, r1 in
            for n in r0..<r1 {
                let row = x + n * stride, v = vectors + (n / T) * width
                for i in 0..<width { row[i] += scale * v[i] }
            }
        }
    }

    /// Backward of `add`: dvectors[b, :] += scale · Σₜ dx[b, t, :] (summed in position order; threads own examples).
    static func backward(dvectors: UnsafeMutablePointer<Float>, dx: UnsafePointer<Float>, stride: Int, batch B: Int, seqLen T: Int,
                         width: Int, scale: Float = 1) {
        Parallel.forRanges(B, minPerThread: 1) { b0, b1 in
            for b in b0..<b1 {
                let dv = dvectors + b * width
                for t in 0..<T {
                    let row = dx + (b * T + t) * stride
                    for i in 0..<width { dv[i] += scale * row[i] }
                }
            }
        }
    }
}
