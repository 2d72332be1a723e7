import XCTest
@testable import RuleLensNumerics

/// `BLAS.sgemmSplit` (C split over our workers, single-threaded OpenBLAS per block) against a naive Double
/// triple loop, for every transpose, both split sides and padded strides.
///
/// What is guaranteed under every OpenBLAS kernel (unset, Haswell, SkylakeX, Zen) — and so what is tested:
/// closeness to the Double reference, untouched padding, and the same bits from the same call with the same
/// thread count (which is what makes a training run reproducible). Equality with one whole sgemm call is NOT
/// guaranteed: whether a kernel computes a row block exactly as inside the whole product depends on its blocking
/// (the SkylakeX kernels happen to; the Haswell ones do not), so it is not asserted.
final class BLASSplitTests: XCTestCase {
    override func tearDown() { Parallel.configure(threads: 2) }

    /// Largest |C - (alpha·op(A)·op(B) + beta·C0)| over the real columns, the reference summed in Double.
    func worstError(_ c: [Float], _ c0: [Float], _ a: [Float], _ b: [Float], ta: BLAS.Transpose, tb: BLAS.Transpose,
                    m: Int, n: Int, k: Int, lda: Int, ldb: Int, ldc: Int, alpha: Double, beta: Double) -> Double {
        var worst = 0.0
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0
                for p in 0..<k {
                    let av = ta == .none ? a[i * lda + p] : a[p * lda + i]
                    let bv = tb == .none ? b[p * ldb + j] : b[j * ldb + p]
                    s += Double(av) * Double(bv)
                }
                worst = max(worst, abs(Double(c[i * ldc + j]) - (alpha * s + beta * Double(c0[i * ldc + j]))))
            }
        }
        return worst
    }

    func testSplitMatchesNaiveForEveryTransposeAndSplitSideAndIsDeterministic() {
        var rng = SeededRNG(seed: 11)
        // (m, n, k): split along rows (m ≥ n, with a remainder past the 16-aligned boundaries), then along columns.
        for (m, n, k) in [(203, 70, 37), (40, 301, 29)] {
            XCTAssertGreaterThanOrEqual(m * n * k, 1 << 18, "large enough to be split")
            for ta in [BLAS.Transpose.none, .transposed] {
                for tb in [BLAS.Transpose.none, .transposed] {
                    // Padded leading dimensions, so block offsets must use the strides, not the shapes.
                    let lda = (ta == .none ? k : m) + 3, ldb = (tb == .none ? n : k) + 5, ldc = n + 2
                    let a = (0..<((ta == .none ? m : k) * lda)).map { _ in rng.normal() }
                    let b = (0..<((tb == .none ? k : n) * ldb)).map { _ in rng.normal() }
                    let c0 = (0..<(m * ldc)).map { _ in rng.normal() }
                    let label = "ta=\(ta) tb=\(tb) \(m)×\(n)×\(k)"
                    var first: [Float]? = nil
                    for threads in [1, 2, 3] {
                        Parallel.configure(threads: threads)
                        var split = c0, again = c0
                        BLAS.sgemmSplit(ta, tb, m: m, n: n, k: k, alpha: 0.5, a, lda: lda, b, ldb: ldb, beta: 2, &split, ldc: ldc)
                        BLAS.sgemmSplit(ta, tb, m: m, n: n, k: k, alpha: 0.5, a, lda: lda, b, ldb: ldb, beta: 2, &again, ldc: ldc)
                        // The same call with the same thread count: the same bits, whatever the kernel.
                        XCTAssertEqual(split.map(\.bitPattern), again.map(\.bitPattern), "\(label) threads \(threads): same call twice")
                        for i in 0..<m {
                            for j in n..<ldc where split[i * ldc + j] != c0[i * ldc + j] {
                                XCTFail("\(label) threads \(threads): padding column \(j) of row \(i) was written")
                            }
                        }
                        let worst = worstError(split, c0, a, b, ta: ta, tb: tb, m: m, n: n, k: k,
                                               lda: lda, ldb: ldb, ldc: ldc, alpha: 0.5, beta: 2)
                        XCTAssertLessThan(worst, 1e-4, "\(label) threads \(threads) against the Double reference")
                        // Different thread counts split differently; they agree to float rounding, not bit for bit.
                        if let first {
                            let spread = zip(first, split).map { abs(Double($0) - Double($1)) }.max() ?? 0
                            XCTAssertLessThan(spread, 2e-4, "\(label) threads \(threads) against threads 1")
                        } else {
                            first = split
                        }
                    }
                }
            }
        }
    }

    /// One whole call, single-threaded, is just as close to the reference: the split loses no accuracy.
    func testWholeCallMatchesNaiveToo() {
        var rng = SeededRNG(seed: 12)
        let m = 203, n = 70, k = 37
        let a = (0..<(m * k)).map { _ in rng.normal() }, b = (0..<(k * n)).map { _ in rng.normal() }
        let c0 = (0..<(m * n)).map { _ in rng.normal() }
        var whole = c0
        BLAS.withThreads(1) { BLAS.sgemm(.none, .none, m: m, n: n, k: k, alpha: 0.5, a, b, beta: 2, &whole) }
        XCTAssertLessThan(worstError(whole, c0, a, b, ta: .none, tb: .none, m: m, n: n, k: k, lda: k, ldb: n, ldc: n,
                                     alpha: 0.5, beta: 2), 1e-4)
    }

    func testWithThreadsRestoresTheCount() {
        Parallel.configure(threads: 2)
        BLAS.withThreads(1) { XCTAssertEqual(BLAS.threads, 1) }
        XCTAssertEqual(BLAS.threads, 2)
    }
}
