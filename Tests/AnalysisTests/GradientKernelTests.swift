import XCTest
import RuleLensModel
import RuleLensNumerics
@testable import RuleLensAnalysis

final class GradientKernelTests: XCTestCase {
    /// The per-rule-sum shortcut equals the direct mean of pairwise cosines over stored per-example gradients.
    func testMatchesPairwiseCosinesOfStoredGradients() throws {
        let config = GPTConfig(nLayer: 2, nHead: 2, dModel: 16, nCtx: 12, vocabSize: 20)
        let model = try GPT(config: config, seed: 3)
        var rng = SeededRNG(seed: 9)
        let rules = Labels([0, 0, 0, 1, 1, 2, 2, 2])
        let sequences = rules.ids.map { rule -> GradientKernel.Sequence in
            let t = 6 + rng.int(below: 4)
            let inputs = (0..<t).map { _ in Int32(3 + rule * 5 + rng.int(below: 5)) }
            let targets = (0..<t).map { _ in Int32(3 + rng.int(below: 15)) }
            let mask = (0..<t).map { $0 >= 2 ? Float(1) : 0 }
            return GradientKernel.Sequence(inputs: inputs, targets: targets, lossMask: mask)
        }
        let measured = try GradientKernel.measure(model: model, sequences: sequences, rules: rules)
        XCTAssertEqual(measured.count, 8)

        // Reference: every example's full block gradient, then the pairwise cosines.
        let blocks = GradientKernel.blocks(for: config)
        var grads: [[[Double]]] = []   // [example][block][param]
        for seq in sequences {
            model.zeroGrads()
            _ = model.forward(tokens: seq.inputs, batch: 1, seqLen: seq.inputs.count)
            _ = model.loss(targets: seq.targets, lossMask: seq.lossMask)
            model.backward()
            grads.append(blocks.map { b in b.tensors.flatMap { model.grads.values($0)!.map(Double.init) } })
        }
        for (b, result) in measured.enumerated() {
            var within: [Double] = [], between: [Double] = []
            for i in 0..<grads.count { for j in 0..<grads.count where i != j {
                let u = grads[i][b], v = grads[j][b]
                var dot = 0.0, nu = 0.0, nv = 0.0
                for p in 0..<u.count { dot += u[p] * v[p]; nu += u[p] * u[p]; nv += v[p] * v[p] }
                let cos = dot / (nu * nv).squareRoot()
                if rules.ids[i] == rules.ids[j] { within.append(cos) } else { between.append(cos) }
            } }
            XCTAssertEqual(result.within, within.reduce(0, +) / Double(within.count), accuracy: 1e-5, result.block)
            XCTAssertEqual(result.between, between.reduce(0, +) / Double(between.count), accuracy: 1e-5, result.block)
            XCTAssertEqual(result.parameters, grads[0][b].count)
        }
    }

    func testNeedsTwoRulesAndAPair() throws {
        let model = try GPT(config: GPTConfig(nLayer: 1, nHead: 1, dModel: 8, nCtx: 8, vocabSize: 10), seed: 1)
        let seq = GradientKernel.Sequence(inputs: [1, 2, 3], targets: [2, 3, 4], lossMask: [1, 1, 1])
        XCTAssertThrowsError(try GradientKernel.measure(model: model, sequences: [seq, seq], rules: Labels([0, 0])))
        XCTAssertThrowsError(try GradientKernel.measure(model: model, sequences: [seq, seq], rules: Labels([0, 1])))
    }
}
