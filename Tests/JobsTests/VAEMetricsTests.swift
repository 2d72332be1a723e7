import Foundation
import XCTest
@testable import RuleLensJobs

/// VAE metrics against hand-computed values (the PyTorch reference covers MI and active units in test_vae.py).
final class VAEMetricsTests: XCTestCase {
    func testBLEUByHand() {
        // 1- to 4-gram clipped precisions 5/6, 3/5, 2/4, 1/3; equal lengths, so no brevity penalty.
        let expected = Foundation.pow(5.0 / 6 * 3 / 5 * 2 / 4 * 1 / 3, 0.25)
        XCTAssertEqual(VAEMetrics.bleu(candidates: ["the cat sat on the mat"], references: ["the cat sat on a mat"]), expected, accuracy: 1e-12)
        XCTAssertEqual(VAEMetrics.bleu(candidates: ["a b c d e"], references: ["a b c d e"]), 1, accuracy: 1e-12)
        // Brevity penalty: a correct prefix of 4 words against 5 words → exp(1 − 5/4).
        XCTAssertEqual(VAEMetrics.bleu(candidates: ["a b c d"], references: ["a b c d e"]), Foundation.exp(1 - 5.0 / 4), accuracy: 1e-12)
        XCTAssertEqual(VAEMetrics.bleu(candidates: ["x y z w"], references: ["a b c d"]), 0)
    }

    func testActiveUnitsUseUnbiasedVariance() {
        // Dimension 0 varies (values 0, 0.2 → variance 0.02 with N − 1), dimension 1 barely (0, 0.1 → 0.005).
        let (count, variances) = VAEMetrics.activeUnits(mu: [0, 0, 0.2, 0.1], n: 2, k: 2)
        XCTAssertEqual(count, 1)
        XCTAssertEqual(variances[0], 0.02, accuracy: 1e-8)
        XCTAssertEqual(variances[1], 0.005, accuracy: 1e-8)
    }

    /// Far-apart, nearly deterministic posteriors sampled at their means: every q(z_i) is q(z_i|x_i)/N, so the estimate
    /// is log N minus the k/2 that a sample exactly at the mean lacks against the expected log-density.
    func testMutualInformationSeparatedPosteriors() {
        let n = 3, k = 2
        let mu: [Float] = [0, 0, 1, 0, 0, 1]
        let lv = [Float](repeating: -20, count: n * k)
        XCTAssertEqual(VAEMetrics.mutualInformation(mu: mu, logvar: lv, z: mu, n: n, k: k), Foundation.log(Double(n)) - Double(k) / 2, accuracy: 1e-6)
    }
}
