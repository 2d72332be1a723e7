import XCTest
import RuleLensNumerics
@testable import RuleLensAnalysis

final class LinearAlgebraTests: XCTestCase {
    func testSVDReconstructsTallAndWideMatrices() throws {
        for (m, n) in [(30, 12), (12, 30)] {
            let a = randomMatrix(m, n, seed: UInt64(m * 100 + n))
            let svd = try LinearAlgebra.svd(a)
            let k = min(m, n)
            XCTAssertEqual(svd.s.count, k)
            XCTAssertEqual(svd.s, svd.s.sorted(by: >))
            var maxErr: Float = 0
            for i in 0..<m { for j in 0..<n {
                var v: Float = 0
                for r in 0..<k { v += svd.u[i, r] * svd.s[r] * svd.vt[r, j] }
                maxErr = max(maxErr, abs(v - a[i, j]))
            } }
            XCTAssertLessThan(maxErr, 1e-4)
            // Uᵀ U = I
            for p in 0..<k { for q in 0..<k {
                var dot: Float = 0
                for i in 0..<m { dot += svd.u[i, p] * svd.u[i, q] }
                XCTAssertEqual(dot, p == q ? 1 : 0, accuracy: 1e-4)
            } }
        }
    }

    func testSymmetricEigenSatisfiesAvEqualsLambdaV() throws {
        let b = randomMatrix(20, 8, seed: 3)
        let a = FloatMatrix(rows: 8, cols: 8)
        BLAS.sgemm(.transposed, .none, m: 8, n: 8, k: 20, b.ptr, b.ptr, a.ptr)
        let (values, vectors) = try LinearAlgebra.symmetricEigen(a)
        XCTAssertEqual(values, values.sorted(by: >))
        for e in 0..<8 {
            for i in 0..<8 {
                var av: Float = 0
                for j in 0..<8 { av += a[i, j] * vectors[j, e] }
                XCTAssertEqual(av, values[e] * vectors[i, e], accuracy: 1e-3 * max(1, values[0]))
            }
        }
        // Double version agrees.
        let (dv, _) = try LinearAlgebra.symmetricEigen(a.toArray().map(Double.init), n: 8)
        for e in 0..<8 { XCTAssertEqual(dv[e], Double(values[e]), accuracy: 1e-3 * Double(values[0])) }
        // The top-k solver (dsyevr) returns the same leading eigenpairs (vectors up to sign).
        let full = try LinearAlgebra.symmetricEigen(a.toArray().map(Double.init), n: 8)
        let top = try LinearAlgebra.symmetricEigen(a.toArray().map(Double.init), n: 8, top: 3)
        XCTAssertEqual(top.values.count, 3)
        for e in 0..<3 {
            XCTAssertEqual(top.values[e], full.values[e], accuracy: 1e-9 * full.values[0])
            var dot = 0.0
            for i in 0..<8 { dot += top.vectors[i * 3 + e] * full.vectors[i * 8 + e] }
            XCTAssertEqual(abs(dot), 1, accuracy: 1e-9)
        }
    }

    func testSolvesAndLeastSquares() throws {
        let b = randomMatrix(10, 6, seed: 5)
        let spd = FloatMatrix(rows: 6, cols: 6)
        BLAS.sgemm(.transposed, .none, m: 6, n: 6, k: 10, b.ptr, b.ptr, spd.ptr)
        let rhs = randomMatrix(6, 2, seed: 6)
        for x in [try LinearAlgebra.solve(spd, rhs), try LinearAlgebra.solveSymmetricPositiveDefinite(spd, rhs)] {
            for i in 0..<6 { for c in 0..<2 {
                var v: Float = 0
                for j in 0..<6 { v += spd[i, j] * x[j, c] }
                XCTAssertEqual(v, rhs[i, c], accuracy: 1e-3)
            } }
        }
        // Least squares: the residual is orthogonal to A's columns.
        let y = randomMatrix(10, 1, seed: 7)
        let x = try LinearAlgebra.leastSquares(b, y)
        for j in 0..<6 {
            var dot: Float = 0
            for i in 0..<10 {
                var fit: Float = 0
                for c in 0..<6 { fit += b[i, c] * x[c, 0] }
                dot += b[i, j] * (y[i, 0] - fit)
            }
            XCTAssertEqual(dot, 0, accuracy: 1e-3)
        }
    }

    func testLAPACKFailuresBecomeRuleLensErrors() {
        let singular = FloatMatrix(rows: 2, cols: 2, values: [1, 2, 2, 4])
        let rhs = FloatMatrix(rows: 2, cols: 1, values: [1, 1])
        XCTAssertThrowsError(try LinearAlgebra.solve(singular, rhs)) { error in
            XCTAssertTrue((error as? RuleLensError)?.problem.contains("singular") ?? false, "\(error)")
        }
        let indefinite = FloatMatrix(rows: 2, cols: 2, values: [1, 0, 0, -1])
        XCTAssertThrowsError(try LinearAlgebra.solveSymmetricPositiveDefinite(indefinite, rhs)) { error in
            XCTAssertTrue((error as? RuleLensError)?.problem.contains("not positive definite") ?? false, "\(error)")
        }
        let nan = FloatMatrix(rows: 2, cols: 2, values: [1, .nan, 0, 1])
        XCTAssertThrowsError(try LinearAlgebra.svd(nan)) { error in
            XCTAssertTrue((error as? RuleLensError)?.problem.contains("NaN") ?? false, "\(error)")
        }
    }
}
