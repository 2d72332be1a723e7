import Foundation
import XCTest
import RuleLensNumerics
@testable import RuleLensModel

final class TrainingTests: XCTestCase {
    override func tearDown() { Parallel.configure(threads: 2) }

    /// 8 random sequences of 12 tokens to memorise (inputs tokens[0..<11], targets tokens[1..<12]).
    private func memorisationBatch() -> (inputs: [Int32], targets: [Int32], mask: [Float]) {
        var rng = SeededRNG(seed: 9)
        var inputs: [Int32] = [], targets: [Int32] = []
        for _ in 0..<8 {
            let sequence = (0..<12).map { _ in Int32(rng.int(below: 16)) }
            inputs += sequence[0..<11]; targets += sequence[1..<12]
        }
        return (inputs, targets, [Float](repeating: 1, count: inputs.count))
    }

    private func train(steps: Int, seed: UInt64) throws -> (GPT, [Float]) {
        let model = try GPT(config: GPTConfig(nLayer: 2, nHead: 2, dModel: 32, nCtx: 12, vocabSize: 16), seed: seed)
        let data = memorisationBatch()
        var optimizer = AdamW(weightDecay: 0.01)
        let schedule = CosineSchedule(maxLR: 1e-2, minLR: 1e-3, warmupSteps: 10, totalSteps: steps)
        var losses: [Float] = []
        for step in 0..<steps {
            model.zeroGrads()
            _ = model.forward(tokens: data.inputs, batch: 8, seqLen: 11)
            losses.append(model.loss(targets: data.targets, lossMask: data.mask))
            model.backward()
            clipGradNorm(model.grads, maxNorm: 1)
            optimizer.step(model, lr: schedule.lr(at: step))
        }
        return (model, losses)
    }

    func testLossDropsOnAMemorisationTask() throws {
        Parallel.configure(threads: 2)
        let (_, losses) = try train(steps: 150, seed: 1)
        XCTAssertEqual(Double(losses[0]), log(16.0), accuracy: 0.3, "starts near uniform")
        XCTAssertLessThan(losses.last!, 0.1, "memorised: \(losses.last!)")
    }

    func testSameSeedAndThreadsGiveBitwiseIdenticalWeights() throws {
        for threads in [1, 2] {
            Parallel.configure(threads: threads)
            let (a, lossesA) = try train(steps: 12, seed: 5)
            let (b, lossesB) = try train(steps: 12, seed: 5)
            XCTAssertEqual(lossesA, lossesB)
            XCTAssertEqual(a.params.storage.toArray(), b.params.storage.toArray(), "threads \(threads)")
        }
        let (c, _) = try train(steps: 1, seed: 6)
        let (d, _) = try train(steps: 1, seed: 5)
        XCTAssertNotEqual(c.params.storage.toArray(), d.params.storage.toArray(), "the seed matters")
    }

    func testAdamWMatchesPyTorchFormulaAndDecaysOnlyMatrices() throws {
        let model = try GPT(config: GPTConfig(nLayer: 1, nHead: 1, dModel: 4, nCtx: 4, vocabSize: 5), seed: 2)
        var optimizer = AdamW(beta1: 0.8, beta2: 0.95, eps: 1e-6, weightDecay: 0.1)
        let n = model.params.storage.count
        var p = model.params.storage.toArray().map(Double.init), m = [Double](repeating: 0, count: n), v = m
        let decays = model.params.tensors.flatMap { t in [Bool](repeating: t.shape.count == 2, count: t.count) }
        for step in 1...3 {
            let g = randomFloats(n, std: 0.5, seed: UInt64(step))
            model.grads.storage.ptr.update(from: g, count: n)
            let lr: Float = 0.05
            optimizer.step(model, lr: lr)
            // torch.optim.AdamW, written out in Double.
            for i in 0..<n {
                if decays[i] { p[i] *= 1 - 0.05 * 0.1 }
                m[i] = 0.8 * m[i] + 0.2 * Double(g[i]); v[i] = 0.95 * v[i] + 0.05 * Double(g[i]) * Double(g[i])
                let mHat = m[i] / (1 - pow(0.8, Double(step))), denom = (v[i] / (1 - pow(0.95, Double(step)))).squareRoot() + 1e-6
                p[i] -= 0.05 * mHat / denom
            }
        }
        XCTAssertEqual(optimizer.t, 3)
        let got = model.params.storage.toArray()
        for i in 0..<n { XCTAssertEqual(Double(got[i]), p[i], accuracy: 1e-5, "parameter \(i)") }
        XCTAssertTrue(AdamW.decays(model.params.tensor("transformer.wte.weight")!))
        XCTAssertFalse(AdamW.decays(model.params.tensor("transformer.h.0.attn.c_attn.bias")!))
        XCTAssertFalse(AdamW.decays(model.params.tensor("transformer.ln_f.weight")!))
    }

    func testCosineScheduleAndGradientClipping() throws {
        let s = CosineSchedule(maxLR: 1, minLR: 0.1, warmupSteps: 4, totalSteps: 14)
        XCTAssertEqual(s.lr(at: 0), 0.25, accuracy: 1e-6)
        XCTAssertEqual(s.lr(at: 3), 1, accuracy: 1e-6)
        XCTAssertEqual(s.lr(at: 4), 1, accuracy: 1e-6)
        XCTAssertEqual(s.lr(at: 9), 0.55, accuracy: 1e-6)
        XCTAssertEqual(s.lr(at: 14), 0.1, accuracy: 1e-6)
        XCTAssertEqual(s.lr(at: 100), 0.1, accuracy: 1e-6)

        let model = try GPT(config: GPTConfig(nLayer: 1, nHead: 1, dModel: 4, nCtx: 4, vocabSize: 5), seed: 2)
        let g = randomFloats(model.grads.storage.count, seed: 3)
        model.grads.storage.ptr.update(from: g, count: g.count)
        let expected = g.map { Double($0) * Double($0) }.reduce(0, +).squareRoot()
        XCTAssertEqual(Double(clipGradNorm(model.grads, maxNorm: 1e6)), expected, accuracy: 1e-4 * expected)
        XCTAssertEqual(model.grads.storage.toArray(), g, "below the limit nothing changes")
        XCTAssertEqual(Double(clipGradNorm(model.grads, maxNorm: 2)), expected, accuracy: 1e-4 * expected)
        let after = model.grads.storage.toArray().map { Double($0) * Double($0) }.reduce(0, +).squareRoot()
        XCTAssertEqual(after, 2, accuracy: 1e-4)
    }

    func testParameterLayoutInitialisationAndValidation() throws {
        let config = GPTConfig(nLayer: 2, nHead: 4, dModel: 64, nCtx: 16, vocabSize: 99)
        let model = try GPT(config: config, seed: 11)
        let t = model.params.tensors
        XCTAssertEqual(t.count, 2 + 12 * 2 + 2)
        XCTAssertEqual(t[0].name, "transformer.wte.weight"); XCTAssertEqual(t[0].shape, [99, 64])
        XCTAssertEqual(t[2].name, "transformer.h.0.ln_1.weight")
        XCTAssertEqual(t[4].name, "transformer.h.0.attn.c_attn.weight"); XCTAssertEqual(t[4].shape, [64, 192])
        XCTAssertEqual(t[12].name, "transformer.h.0.mlp.c_proj.weight"); XCTAssertEqual(t[12].shape, [256, 64])
        XCTAssertEqual(t.last!.name, "transformer.ln_f.bias")
        var offset = 0
        for tensor in t { XCTAssertEqual(tensor.offset, offset); offset += tensor.count }
        XCTAssertEqual(offset, model.params.storage.count)
        // GPT-2 parameter count: V·d + nCtx·d + L·(12d² + 13d) + 2d (tied head).
        XCTAssertEqual(model.parameterCount, 99 * 64 + 16 * 64 + 2 * (12 * 64 * 64 + 13 * 64) + 2 * 64)
        XCTAssertNil(model.params.tensor("lm_head.weight"))
        XCTAssertEqual(model.grads.tensors, t)

        func std(_ name: String) -> Double {
            let v = model.params.values(name)!.map(Double.init)
            let mean = v.reduce(0, +) / Double(v.count)
            return (v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(v.count)).squareRoot()
        }
        XCTAssertEqual(std("transformer.h.1.mlp.c_fc.weight"), 0.02, accuracy: 0.001)
        XCTAssertEqual(std("transformer.h.1.attn.c_proj.weight"), 0.02 / 2, accuracy: 0.001)
        XCTAssertEqual(std("transformer.wte.weight"), 0.02, accuracy: 0.001)
        XCTAssertTrue(model.params.values("transformer.h.0.ln_2.weight")!.allSatisfy { $0 == 1 })
        XCTAssertTrue(model.params.values("transformer.h.0.mlp.c_fc.bias")!.allSatisfy { $0 == 0 })
        XCTAssertEqual(try GPT(config: config, seed: 11).params.storage.toArray(), model.params.storage.toArray())

        XCTAssertThrowsError(try GPT(config: GPTConfig(nLayer: 1, nHead: 3, dModel: 16, nCtx: 8, vocabSize: 10), seed: 0)) { error in
            XCTAssertTrue("\(error)".contains("not divisible"))
        }
        XCTAssertThrowsError(try GPT(config: GPTConfig(nLayer: 0, nHead: 1, dModel: 16, nCtx: 8, vocabSize: 10), seed: 0)) { error in
            XCTAssertTrue("\(error)".contains("layers is 0"), "\(error)")
        }
    }
}
