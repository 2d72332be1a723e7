import RuleLensNumerics

/// Euclidean distances between all rows of a matrix, produced a block of rows at a time through BLAS:
/// ‖xᵢ − xⱼ‖² = ‖xᵢ‖² + ‖xⱼ‖² − 2 xᵢ·xⱼ with the dot products from one sgemm per block.
///
/// The data are centred first (distances do not change) so the norms are small and the subtraction loses
/// little precision; self-distances are set to exactly 0. They are then scaled by a power of two that brings the
/// largest magnitude near 1, so squares neither overflow (data of size 1e30: 1e60 is beyond float32) nor underflow:
/// the distances come out in that scale (`scale` says which), exact multiples of the true ones, which leaves every
/// ratio and ordering that silhouette and k-NN read unchanged.
struct PairwiseDistances {
    let x: FloatMatrix          // centred copy [n, d]
    let norms: [Float]          // ‖xᵢ‖² [n]
    let blockRows: Int
    /// The distances are the true ones times this power of two.
    let scale: Float

    init(_ data: FloatMatrix, blockRows: Int = 256) {
        let n = data.rows, d = data.cols
        var mean = [Double](repeating: 0, count: d)
        for i in 0..<n { for j in 0..<d { mean[j] += Double(data.ptr[i * d + j]) } }
        let m = mean.map { Float($0 / Double(max(n, 1))) }
        let centred = data.copy()
        var largest: Float = 0
        for i in 0..<(n * d) { centred.ptr[i] -= m[i % d]; largest = max(largest, abs(centred.ptr[i])) }
        let scale = Analysis.unitScale(largest)
        var norms = [Float](repeating: 0, count: n)
        for i in 0..<n {
            var s: Float = 0
            for j in 0..<d { let v = centred.ptr[i * d + j] * scale; centred.ptr[i * d + j] = v; s += v * v }
            norms[i] = s
        }
        x = centred; self.norms = norms; self.blockRows = blockRows; self.scale = scale
    }

    var n: Int { x.rows }

    /// Calls `body(rowStart, rowEnd, block)` for consecutive row blocks; `block` is [(rowEnd−rowStart), n] and
    /// holds distances (squared when `squared`). Rows inside `body` may be processed in parallel by the caller.
    func forEachBlock(squared: Bool = false, _ body: (Int, Int, UnsafeMutablePointer<Float>) -> Void) {
        let n = self.n, d = x.cols
        let block = FloatBuffer(count: min(blockRows, n) * n)
        var start = 0
        norms.withUnsafeBufferPointer { np in
            while start < n {
                let end = min(n, start + blockRows), m = end - start
                // block = −2 · X[start..<end] · Xᵀ
                BLAS.sgemm(.none, .transposed, m: m, n: n, k: d, alpha: -2, x.ptr + start * d, x.ptr, block.ptr)
                Parallel.forRanges(m, minPerThread: 8) { lo, hi in
                    for r in lo..<hi {
                        let row = block.ptr + r * n, ni = np[start + r]
                        for j in 0..<n {
                            let v = max(row[j] + ni + np[j], 0)
                            row[j] = squared ? v : v.squareRoot()
                        }
                        row[start + r] = 0
                    }
                }
                body(start, end, block.ptr)
                start = end
            }
        }
    }
}
