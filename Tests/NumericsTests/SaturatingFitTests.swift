import XCTest
@testable import RuleLensNumerics

final class SaturatingFitTests: XCTestCase {
    /// Points on a · x / (x + k) give back a and k; a perturbed point moves the fit but keeps it the least-squares
    /// optimum (no small step in a or k lowers the residual).
    func testRecoversTheCurveAndIsALeastSquaresOptimum() throws {
        let x: [Double] = [100, 200, 400, 800, 1600, 3200]
        let exact = x.map { 0.9 * $0 / ($0 + 350) }
        let fit = try XCTUnwrap(SaturatingFit.fit(x: x, y: exact))
        XCTAssertEqual(fit.a, 0.9, accuracy: 1e-6)
        XCTAssertEqual(fit.k, 350, accuracy: 1e-3)
        var noisy = exact
        noisy[2] += 0.05; noisy[5] -= 0.03
        let f = try XCTUnwrap(SaturatingFit.fit(x: x, y: noisy))
        func sse(_ a: Double, _ k: Double) -> Double { zip(x, noisy).reduce(0) { $0 + pow($1.1 - a * $1.0 / ($1.0 + k), 2) } }
        XCTAssertEqual(f.residual, sse(f.a, f.k), accuracy: 1e-12)
        for (da, dk) in [(1e-4, 0.0), (-1e-4, 0.0), (0.0, 0.1), (0.0, -0.1), (1e-4, 0.1), (-1e-4, -0.1)] {
            XCTAssertGreaterThanOrEqual(sse(f.a + da, f.k + dk), f.residual - 1e-15)
        }
    }

    func testRefusesWhatCannotDetermineACurve() {
        XCTAssertNil(SaturatingFit.fit(x: [1, 2], y: [0.1, 0.2]))
        XCTAssertNil(SaturatingFit.fit(x: [0, 1, 2], y: [0, 0.1, 0.2]))
        XCTAssertNil(SaturatingFit.fit(x: [1, 2, 3], y: [0.1, .nan, 0.2]))
    }
}
