import RuleLensNumerics
@testable import RuleLensAnalysis

/// Seeded Gaussian data for the tests.
func randomMatrix(_ rows: Int, _ cols: Int, seed: UInt64, scale: Float = 1) -> FloatMatrix {
    var rng = SeededRNG(seed: seed)
    let m = FloatMatrix(rows: rows, cols: cols)
    for i in 0..<m.count { m.ptr[i] = rng.normal() * scale }
    return m
}

/// `k` Gaussian blobs in `d` dimensions, `perClass` examples each, centres `spread` apart on average; rows interleaved.
func blobs(k: Int, perClass: Int, d: Int, spread: Float, seed: UInt64) -> (FloatMatrix, Labels) {
    var rng = SeededRNG(seed: seed)
    let centres = (0..<k).map { _ in (0..<d).map { _ in rng.normal() * spread } }
    let n = k * perClass
    let x = FloatMatrix(rows: n, cols: d)
    var ids = [Int](repeating: 0, count: n)
    for i in 0..<n {
        let c = i % k
        ids[i] = c
        for j in 0..<d { x[i, j] = centres[c][j] + rng.normal() }
    }
    return (x, Labels(ids))
}

func euclid(_ x: FloatMatrix, _ i: Int, _ j: Int) -> Double {
    var s = 0.0
    for c in 0..<x.cols { let v = Double(x[i, c]) - Double(x[j, c]); s += v * v }
    return s.squareRoot()
}
