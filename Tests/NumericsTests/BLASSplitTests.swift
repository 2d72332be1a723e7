import XCTest
@testable import RuleLensNumerics

/// `BLAS.sgemmSplit` (C split over our workers, single-threaded OpenBLAS per block) against a naive Double
/// triple loop, and against one whole single-threaded sgemm call bit for bit.
final class BLASSplitTests: XCTestCase {
    override func tearDown() { Parallel.configure(threads: 2) }

    func testSplitMatchesNaiveAndOneCallForEveryTransposeAndSplitSide() {
        Parallel.configure(threads: 2)
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
                    var split = c0, whole = c0
                    BLAS.sgemmSplit(ta, tb, m: m, n: n, k: k, alpha: 0.5, a, lda: lda, b, ldb: ldb, beta: 2, &split, ldc: ldc)
                    BLAS.withThreads(1) {
                        BLAS.sgemm(ta, tb, m: m, n: n, k: k, alpha: 0.5, a, lda: lda, b, ldb: ldb, beta: 2, &whole, ldc: ldc)
                    }
                    XCTAssertEqual(split, whole, "ta=\(ta) tb=\(tb) \(m)×\(n)×\(k): same bits as one call")
                    var worst = 0.0
                    for i in 0..<m {
                        for j in 0..<ldc {
                            guard j < n else {
                                XCTAssertEqual(split[i * ldc + j], c0[i * ldc + j], "padding column untouched")
                                continue
                            }
                            var s = 0.0
                            for p in 0..<k {
                                let av = ta == .none ? a[i * lda + p] : a[p * lda + i]
                                let bv = tb == .none ? b[p * ldb + j] : b[j * ldb + p]
                                s += Double(av) * Double(bv)
                            }
                            worst = max(worst, abs(Double(split[i * ldc + j]) - (0.5 * s + 2 * Double(c0[i * ldc + j]))))
                        }
                    }
                    XCTAssertLessThan(worst, 1e-4, "ta=\(ta) tb=\(tb) \(m)×\(n)×\(k) against the naive product")
                }
            }
        }
    }

    func testWithThreadsRestoresTheCount() {
        Parallel.configure(threads: 2)
        BLAS.withThreads(1) { XCTAssertEqual(BLAS.threads, 1) }
        XCTAssertEqual(BLAS.threads, 2)
    }
}
