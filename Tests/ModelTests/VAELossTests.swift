import Foundation
import XCTest
import RuleLensNumerics
@testable import RuleLensModel

/// Finite-difference checks of the VAE's latent loss pieces (tolerances as in LayerGradientTests).
final class VAELossTests: XCTestCase {
    /// KL with free bits: the objective is Σ_{b,j} [kl > λ]·kl / B. Entries are kept away from the threshold so the
    /// mask does not flip inside the finite-difference step (it is piecewise smooth); some entries sit below λ, and
    /// their gradient must be exactly zero.
    func testKLFreeBitsBackward() {
        let (B, k) = (3, 4)
        let lambda: Float = 0.5
        var mu = randomFloats(B * k, seed: 11), lv = randomFloats(B * k, std: 0.8, seed: 12)
        // Put a few entries well below λ (KL ≈ 0) and make sure none sits within 0.05 of λ.
        mu[1] = 0.05; lv[1] = 0.02; mu[6] = -0.1; lv[6] = -0.05
        func klValue(_ m: Float, _ l: Float) -> Float { 0.5 * (m * m + exp(l) - l - 1) }
        for i in 0..<(B * k) where abs(klValue(mu[i], lv[i]) - lambda) < 0.05 { mu[i] += 0.4 }
        func objective(_ m: [Float], _ l: [Float]) -> Double {
            var kl = [Float](repeating: 0, count: B * k)
            return GaussianKL.forward(klDims: &kl, mu: m, logvar: l, rows: B, dim: k, freeBits: lambda).klFreeBits
        }
        var kl = [Float](repeating: 0, count: B * k)
        let (total, kept) = GaussianKL.forward(klDims: &kl, mu: mu, logvar: lv, rows: B, dim: k, freeBits: lambda)
        var direct = 0.0
        for i in 0..<(B * k) { direct += 0.5 * (Double(mu[i]) * Double(mu[i]) + Foundation.exp(Double(lv[i])) - Double(lv[i]) - 1) }
        XCTAssertEqual(total, direct / Double(B), accuracy: 1e-6)
        XCTAssertLessThan(kept, total)
        var dmu = [Float](repeating: 0, count: B * k), dlv = dmu
        GaussianKL.backward(dmu: &dmu, dlogvar: &dlv, klDims: kl, mu: mu, logvar: lv, rows: B, dim: k, freeBits: lambda, scale: 1 / Float(B))
        XCTAssertEqual(dmu[1], 0); XCTAssertEqual(dlv[1], 0); XCTAssertEqual(dmu[6], 0)
        assertGradient("kl dmu", input: mu, analytic: dmu, eps: 1e-3) { objective($0, lv) }
        assertGradient("kl dlogvar", input: lv, analytic: dlv, eps: 1e-3) { objective(mu, $0) }
        // λ = 0: every dimension counts, and the kept sum is the full KL.
        var kl0 = [Float](repeating: 0, count: B * k)
        let zero = GaussianKL.forward(klDims: &kl0, mu: mu, logvar: lv, rows: B, dim: k, freeBits: 0)
        XCTAssertEqual(zero.kl, zero.klFreeBits, accuracy: 1e-9)
    }

    func testReparameterizeBackward() {
        let n = 6
        let mu = randomFloats(n, seed: 13), lv = randomFloats(n, std: 0.5, seed: 14), eps = randomFloats(n, seed: 15)
        let r = randomFloats(n, seed: 16)
        func objective(_ m: [Float], _ l: [Float]) -> Double {
            var z = [Float](repeating: 0, count: n)
            Reparameterize.forward(z: &z, mu: m, logvar: l, eps: eps, count: n)
            return project(z, r)
        }
        var dmu = [Float](repeating: 0, count: n), dlv = dmu
        Reparameterize.backward(dmu: &dmu, dlogvar: &dlv, dz: r, logvar: lv, eps: eps, count: n)
        assertGradient("reparam dmu", input: mu, analytic: dmu) { objective($0, lv) }
        assertGradient("reparam dlogvar", input: lv, analytic: dlv) { objective(mu, $0) }
    }

    func testClassifierLossBackward() {
        let (B, C) = (4, 3)
        let logits = randomFloats(B * C, seed: 17)
        let labels: [Int32] = [0, 2, 1, 2]
        let gamma: Float = 0.7
        func objective(_ x: [Float]) -> Double {
            var total = 0.0
            for b in 0..<B {
                let row = (0..<C).map { Double(x[b * C + $0]) }
                let m = row.max()!
                let lse = m + Foundation.log(row.map { Foundation.exp($0 - m) }.reduce(0, +))
                total += lse - row[Int(labels[b])]
            }
            return Double(gamma) * total / Double(B)
        }
        var dlogits = [Float](repeating: 0, count: B * C)
        let (loss, correct) = ClassifierLoss.forwardBackward(dlogits: &dlogits, logits: logits, labels: labels, classes: C, weight: gamma)
        XCTAssertEqual(Double(loss) * Double(gamma), objective(logits), accuracy: 1e-5)
        var expectCorrect = 0
        for b in 0..<B {
            let row = Array(logits[(b * C)..<((b + 1) * C)])
            if row.firstIndex(of: row.max()!) == Int(labels[b]) { expectCorrect += 1 }
        }
        XCTAssertEqual(correct, expectCorrect)
        assertGradient("classifier dlogits", input: logits, analytic: dlogits, objective: objective)
    }

    /// The closed form against Optimus's frange_cycle_zero_linear loop, re-implemented here in Double.
    func testBetaScheduleMatchesOptimusLoop() throws {
        for (total, cycles, rz, ri, beta) in [(100, 1, 0.5, 0.25, 1.0), (1000, 4, 0.5, 0.25, 2.0), (37, 3, 0.3, 0.5, 1.0), (50, 1, 0.0, 0.5, 1.0)] {
            let schedule = BetaSchedule(beta: Float(beta), cycles: cycles, ratioZero: Float(rz), ratioIncrease: Float(ri), totalSteps: total)
            try schedule.validate()
            var reference = [Double](repeating: beta, count: total)
            let period = Double(total) / Double(cycles)
            let step = ri > 0 ? beta / (period * ri) : .infinity
            for c in 0..<cycles {
                var v = 0.0, i = 0
                while v <= beta && Int(Double(i) + Double(c) * period) < total {
                    if Double(i) < period * rz { reference[Int(Double(i) + Double(c) * period)] = 0 } else {
                        reference[Int(Double(i) + Double(c) * period)] = v; v += step
                    }
                    i += 1
                }
            }
            for s in 0..<total {
                XCTAssertEqual(Double(schedule.value(at: s)), reference[s], accuracy: 1e-5, "total \(total) cycles \(cycles) step \(s)")
            }
            XCTAssertEqual(schedule.value(at: 0), 0)
            XCTAssertEqual(schedule.value(at: total - 1), Float(beta), accuracy: 1e-6)
        }
        // ratio-increase 0 (a step, which Optimus's loop cannot express): 0 then β.
        let step = BetaSchedule(beta: 2, cycles: 1, ratioZero: 0.5, ratioIncrease: 0, totalSteps: 10)
        XCTAssertEqual((0..<10).map { step.value(at: $0) }, [0, 0, 0, 0, 0, 2, 2, 2, 2, 2])
        XCTAssertThrowsError(try BetaSchedule(beta: -1, cycles: 1, ratioZero: 0.5, ratioIncrease: 0.25, totalSteps: 10).validate())
        XCTAssertThrowsError(try BetaSchedule(beta: 1, cycles: 0, ratioZero: 0.5, ratioIncrease: 0.25, totalSteps: 10).validate())
        XCTAssertThrowsError(try BetaSchedule(beta: 1, cycles: 1, ratioZero: 0.8, ratioIncrease: 0.5, totalSteps: 10).validate())
    }

    func testConfigValidationErrors() throws {
        var c = VAEConfig(nLayer: 1, nEncLayer: 1, nHead: 2, dModel: 8, nCtx: 8, vocabSize: 9, latentSize: 4)
        try c.validate()
        c.latentSize = 0
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("--latent")) }
        c.latentSize = 4; c.freeBits = -0.1
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("--free-bits")) }
        c.freeBits = 0.5; c.supervise = "rule"; c.nClasses = 1; c.classNames = ["Barbara"]
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("at least two")) }
        XCTAssertThrowsError(try InjectMode.parseList("memory,keys")) { XCTAssertTrue("\($0)".contains("\"keys\"")) }
        XCTAssertEqual(try InjectMode.parseList("query, memory,query"), [.query, .memory])
        // config.json round trip with the snake_case keys the PyTorch reference reads.
        c.supervise = nil; c.nClasses = 0; c.classNames = []; c.inject = [.memory, .embedding]
        let data = try JSONEncoder().encode(c)
        let raw = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        XCTAssertEqual(raw["model_type"] as? String, "rulelens-vae")
        XCTAssertEqual(raw["latent_size"] as? Int, 4)
        XCTAssertEqual(raw["inject"] as? [String], ["memory", "embedding"])
        XCTAssertEqual(try JSONDecoder().decode(VAEConfig.self, from: data), c)
    }
}
