import XCTest
@testable import RuleLensNumerics

final class BLASTests: XCTestCase {
    /// sgemm against a naive triple loop in Double, for every transpose combination.
    func testSgemmAllTransposesMatchNaive() {
        var rng = SeededRNG(seed: 7)
        let m = 5, n = 7, k = 3
        for ta in [BLAS.Transpose.none, .transposed] {
            for tb in [BLAS.Transpose.none, .transposed] {
                let a = (0..<(m * k)).map { _ in rng.normal() }
                let b = (0..<(k * n)).map { _ in rng.normal() }
                var c = (0..<(m * n)).map { _ in rng.normal() }
                let c0 = c
                BLAS.sgemm(ta, tb, m: m, n: n, k: k, alpha: 0.5, a, b, beta: 2, &c)
                for i in 0..<m {
                    for j in 0..<n {
                        var s = 0.0
                        for p in 0..<k {
                            let av = ta == .none ? a[i * k + p] : a[p * m + i]
                            let bv = tb == .none ? b[p * n + j] : b[j * k + p]
                            s += Double(av) * Double(bv)
                        }
                        let expect = 0.5 * s + 2 * Double(c0[i * n + j])
                        XCTAssertEqual(Double(c[i * n + j]), expect, accuracy: 1e-5, "ta=\(ta) tb=\(tb) at \(i),\(j)")
                    }
                }
            }
        }
    }

    func testRNGIsDeterministicAndSeedSensitive() {
        var a = SeededRNG(seed: 42), b = SeededRNG(seed: 42), c = SeededRNG(seed: 43)
        let xa = (0..<100).map { _ in a.next() }
        XCTAssertEqual(xa, (0..<100).map { _ in b.next() })
        XCTAssertNotEqual(xa, (0..<100).map { _ in c.next() })
    }

    func testNormalHasUnitMoments() {
        var rng = SeededRNG(seed: 1)
        let n = 200_000
        var s = 0.0, s2 = 0.0
        for _ in 0..<n { let x = Double(rng.normal()); s += x; s2 += x * x }
        let mean = s / Double(n), variance = s2 / Double(n) - mean * mean
        XCTAssertEqual(mean, 0, accuracy: 0.01)
        XCTAssertEqual(variance, 1, accuracy: 0.01)
    }

    func testParallelForRangesVisitsEveryIndexOnce() {
        var hits = [Int](repeating: 0, count: 1000)
        hits.withUnsafeMutableBufferPointer { h in
            let p = h.baseAddress!
            Parallel.forRanges(1000) { s, e in for i in s..<e { p[i] += 1 } }
        }
        XCTAssertEqual(hits, [Int](repeating: 1, count: 1000))
    }
}
