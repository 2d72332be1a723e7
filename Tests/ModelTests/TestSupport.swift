import Foundation
import XCTest
import RuleLensNumerics
@testable import RuleLensModel

/// Seeded random Floats, N(0, std).
func randomFloats(_ n: Int, std: Float = 1, seed: UInt64) -> [Float] {
    var rng = SeededRNG(seed: seed)
    return (0..<n).map { _ in std * rng.normal() }
}

/// Compares an analytic gradient with central finite differences of `objective` (evaluated in Double) over
/// every element of `input`. Float inputs with step `eps`; see the callers for the tolerances' justification.
func assertGradient(_ name: String, input: [Float], analytic: [Float], eps: Float = 1e-2, atol: Double = 1e-3, rtol: Double = 1e-2,
                    file: StaticString = #filePath, line: UInt = #line, objective: ([Float]) -> Double) {
    XCTAssertEqual(input.count, analytic.count, "\(name): gradient size", file: file, line: line)
    var worst = 0.0
    for i in input.indices {
        var plus = input, minus = input
        plus[i] += eps; minus[i] -= eps
        let numeric = (objective(plus) - objective(minus)) / Double(Float(input[i] + eps) - Float(input[i] - eps))
        let error = abs(Double(analytic[i]) - numeric)
        worst = max(worst, error / (atol + rtol * abs(numeric)))
        if error > atol + rtol * abs(numeric) {
            XCTFail("\(name)[\(i)]: analytic \(analytic[i]) vs numeric \(numeric)", file: file, line: line)
            return
        }
    }
    XCTAssertLessThanOrEqual(worst, 1, file: file, line: line)
}

/// Σ values·weights in Double: a scalar objective whose gradient with respect to `values` is `weights`.
func project(_ values: UnsafePointer<Float>, _ weights: [Float]) -> Double {
    var sum = 0.0
    for i in weights.indices { sum += Double(values[i]) * Double(weights[i]) }
    return sum
}

/// A tiny model with large random parameters (so every path carries gradient) for gradient and hook tests.
func tinyModel(layers: Int = 2, heads: Int = 2, dModel: Int = 8, dMLP: Int = 16, ctx: Int = 6, vocab: Int = 7, seed: UInt64 = 3) throws -> GPT {
    let model = try GPT(config: GPTConfig(nLayer: layers, nHead: heads, dModel: dModel, dMLP: dMLP, nCtx: ctx, vocabSize: vocab), seed: seed)
    var rng = SeededRNG(seed: seed &+ 100)
    for t in model.params.tensors {
        let p = model.params.pointer(t.name)
        let isLNWeight = t.name.hasSuffix("ln_1.weight") || t.name.hasSuffix("ln_2.weight") || t.name.hasSuffix("ln_f.weight")
        for i in 0..<t.count {
            p[i] = isLNWeight ? 1 + 0.2 * rng.normal() : (t.shape.count == 2 ? 0.4 : 0.1) * rng.normal()
        }
    }
    return model
}

/// A tiny model of the Llama/Qwen2 family: Qwen2-like (q/k/v biases, tied) or Llama-like (untied, biases everywhere,
/// head width ≠ d/H), GQA 4:2, with large random parameters (N(0, `scale`) added) so every path carries gradient and
/// logits are decisive.
func tinyLlama(_ family: LlamaConfig.Family, positions: LlamaConfig.Positions = .rope, seed: UInt64 = 5,
               nCtx: Int = 8, vocabSize: Int = 7, scale: Float = 0.4) throws -> LlamaModel {
    let config = family == .qwen2
        ? LlamaConfig(family: .qwen2, nLayer: 2, nHead: 4, nKVHead: 2, dModel: 16, dMLP: 20, nCtx: nCtx, vocabSize: vocabSize,
                      rmsNormEps: 1e-6, ropeTheta: 10_000, positions: positions, tiedEmbeddings: true)
        : LlamaConfig(family: .llama, nLayer: 2, nHead: 4, nKVHead: 2, dModel: 8, dHead: 6, dMLP: 12, nCtx: nCtx, vocabSize: vocabSize,
                      rmsNormEps: 1e-5, ropeTheta: 500, positions: positions, tiedEmbeddings: false, qkvBias: true,
                      outputBias: true, mlpBias: true)
    let model = try LlamaModel(config: config, seed: seed)
    var rng = SeededRNG(seed: seed, stream: "perturb")
    for t in model.params.tensors {
        let p = model.params.storage.ptr + t.offset
        for i in 0..<t.count { p[i] += scale * rng.normal() }
    }
    return model
}
