import XCTest
import RuleLensNumerics
@testable import RuleLensAnalysis

final class PCATests: XCTestCase {
    /// Anisotropic data with a non-zero mean.
    func data(_ n: Int, _ d: Int) -> FloatMatrix {
        let x = randomMatrix(n, d, seed: 11)
        for i in 0..<n { for j in 0..<d { x[i, j] = x[i, j] * Float(d - j) + 3 } }
        return x
    }

    func testStreamingEqualsInMemoryAndSVD() throws {
        let x = data(500, 16)
        let whole = try PCA.fit(x, components: 5)
        let streamed = try PCA.fit(streaming: MatrixRowSource(x), components: 5, chunkRows: 37)
        let svd = try PCA.fit(x, components: 5, method: .svd)
        for other in [streamed, svd] {
            for c in 0..<5 {
                XCTAssertEqual(other.explainedVariance[c], whole.explainedVariance[c], accuracy: 1e-5 * whole.explainedVariance[0])
                XCTAssertEqual(other.explainedVarianceRatio[c], whole.explainedVarianceRatio[c], accuracy: 1e-5)
                for j in 0..<16 { XCTAssertEqual(other.components[c, j], whole.components[c, j], accuracy: 1e-3) }
            }
            XCTAssertEqual(other.totalVariance, whole.totalVariance, accuracy: 1e-5 * whole.totalVariance)
        }
    }

    func testFewComponentsOfWideDataMatchSVD() throws {
        // 3 of 40 components: the covariance path takes the top-k eigensolver.
        let x = data(400, 40)
        let cov = try PCA.fit(x, components: 3), svd = try PCA.fit(x, components: 3, method: .svd)
        for c in 0..<3 {
            XCTAssertEqual(cov.explainedVarianceRatio[c], svd.explainedVarianceRatio[c], accuracy: 1e-5)
            for j in 0..<40 { XCTAssertEqual(cov.components[c, j], svd.components[c, j], accuracy: 1e-3) }
        }
    }

    func testExplainedVarianceMatchesDirectComputation() throws {
        let x = data(300, 6)
        let pca = try PCA.fit(x)
        // Variance of the projections (n − 1 denominator) equals the explained variance; the ratios sum to 1.
        let proj = pca.transform(x)
        for c in 0..<pca.componentCount {
            var s = 0.0
            for i in 0..<x.rows { s += Double(proj[i, c]) * Double(proj[i, c]) }
            XCTAssertEqual(s / Double(x.rows - 1), pca.explainedVariance[c], accuracy: 1e-4 * pca.explainedVariance[0])
        }
        XCTAssertEqual(pca.explainedVarianceRatio.reduce(0, +), 1, accuracy: 1e-6)
        var total = 0.0
        for j in 0..<6 {
            var m = 0.0, s = 0.0
            for i in 0..<x.rows { m += Double(x[i, j]) }
            m /= Double(x.rows)
            for i in 0..<x.rows { s += (Double(x[i, j]) - m) * (Double(x[i, j]) - m) }
            total += s / Double(x.rows - 1)
        }
        XCTAssertEqual(pca.totalVariance, total, accuracy: 1e-6 * total)
    }

    func testDegenerateInputs() throws {
        let constant = FloatMatrix(rows: 10, cols: 3, values: [Float](repeating: 2, count: 30))
        let pca = try PCA.fit(constant)
        XCTAssertEqual(pca.totalVariance, 0)
        XCTAssertTrue(pca.explainedVarianceRatio.allSatisfy { $0 == 0 }, "documented value: ratio 0, never NaN")
        let nan = data(10, 3); nan[4, 1] = .nan
        XCTAssertThrowsError(try PCA.fit(nan))
        XCTAssertThrowsError(try PCA.fit(streaming: MatrixRowSource(nan)))
        XCTAssertThrowsError(try PCA.fit(FloatMatrix(rows: 1, cols: 3)))
    }
}
