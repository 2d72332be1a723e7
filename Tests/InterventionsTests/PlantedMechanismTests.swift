import XCTest
import RuleLensModel
import RuleLensNumerics
@testable import RuleLensInterventions

/// A hand-built 2-layer GPT-2 in which one known head (layer 1, head 1) carries the answer: from the query token it
/// attends uniformly over [bos, x, q] and copies x's identity into the unembedding direction of x. Every other
/// head and both MLPs have zero weights. Ablation and patching must both rank that head first.
final class PlantedMechanismTests: XCTestCase {
    static let query: Int32 = 7

    /// d_model 16, 2 heads of 8, vocab 8 (0 pad, 1 bos, 2 eos, 3…6 answers, 7 query).
    func plantedModel() throws -> GPT {
        let c = GPTConfig(nLayer: 2, nHead: 2, dModel: 16, dMLP: 16, nCtx: 8, vocabSize: 8)
        let model = try GPT(config: c, seed: 0)
        let p = model.params
        for t in p.tensors where !(t.name.hasSuffix("ln_1.weight") || t.name.hasSuffix("ln_2.weight") || t.name.hasSuffix("ln_f.weight")) {
            p.pointer(t.name).update(repeating: 0, count: t.count)
        }
        // Token v ↦ +1 at dim v, −1 at dim v+8 (zero mean, so LayerNorm keeps the direction).
        let wte = p.pointer("transformer.wte.weight")
        for v in 0..<8 { wte[v * 16 + v] = 1; wte[v * 16 + v + 8] = -1 }
        // Layer 1, head 1 values: input dims x and x+8 (x in 3…6) → value dim x of head 1 (z index 8 + x).
        let qkv = p.pointer("transformer.h.1.attn.c_attn.weight")   // [16, 48]: q | k | v
        for x in 3...6 { qkv[x * 48 + 32 + 8 + x] = 1; qkv[(x + 8) * 48 + 32 + 8 + x] = -1 }
        // Output: z index 8 + x → +10 at dim x, −10 at dim x+8 (the unembedding direction of token x).
        let proj = p.pointer("transformer.h.1.attn.c_proj.weight")  // [16 in, 16 out]
        for x in 3...6 { proj[(8 + x) * 16 + x] = 10; proj[(8 + x) * 16 + x + 8] = -10 }
        return model
    }

    func items() -> [InterventionItem] {
        (3...6).map { x in InterventionItem(tokens: [1, Int32(x), Self.query, Int32(x), 2], promptLength: 3) }
    }

    func testCleanModelAnswersThroughTheHead() throws {
        let model = try plantedModel()
        let lens = try Lens.run(model, items: items())
        XCTAssertEqual(lens.correct.suffix(lens.count), [true, true, true, true])   // final_post: top-1 for every x
        // Direct logit attribution: the head holds (nearly) all of the logit difference; the other head nothing.
        let n = lens.count
        let head = lens.components.firstIndex(of: "L1 H1")!, other = lens.components.firstIndex(of: "L1 H0")!
        for i in 0..<n {
            XCTAssertGreaterThan(lens.attribution[head * n + i], 0.9 * lens.logitDiff[i])
            XCTAssertEqual(lens.attribution[other * n + i], 0, accuracy: 1e-9)
        }
    }

    func testAblationRanksThePlantedHeadFirst() throws {
        let model = try plantedModel()
        var cells: [AblationCell] = []
        for l in 0..<2 {
            cells += [AblationCell(layer: l, component: .attn), AblationCell(layer: l, component: .mlp)]
            cells += (0..<2).map { AblationCell(layer: l, component: .head, head: $0) }
        }
        for method in AblationMethod.allCases {
            var options = AblationOptions(cells: cells)
            options.method = method
            let sweep = try Ablation.sweep(model, items: items(), options: options)
            let summary = sweep.summary(indices: Array(0..<4), label: nil, resamples: 200, seed: 1)
            let heads = summary.cells.filter { $0.cell.component == .head }
            let ranked = heads.sorted { $0.effects[.logitDiff]!.change.value < $1.effects[.logitDiff]!.change.value }
            XCTAssertEqual(ranked.first!.cell, AblationCell(layer: 1, component: .head, head: 1), "\(method)")
            XCTAssertLessThan(ranked.first!.effects[.logitDiff]!.change.value, -1, "\(method)")
            for other in ranked.dropFirst() { XCTAssertEqual(other.effects[.logitDiff]!.change.value, 0, accuracy: 1e-6, "\(method) \(other.cell.name)") }
            // Among layer components, layer 1's attention is the one that matters; the loss rises there only.
            let components = summary.cells.filter { $0.cell.component != .head }
            let worst = components.max { $0.effects[.loss]!.change.value < $1.effects[.loss]!.change.value }!
            XCTAssertEqual(worst.cell, AblationCell(layer: 1, component: .attn), "\(method)")
            // The FFN-versus-attention contrast of layer 1: attention's loss change exceeds the FFN's, interval above 0.
            let contrast = summary.contrasts.first { $0.layer == 1 }!
            XCTAssertGreaterThan(contrast.difference[.loss]!.lower!, 0, "\(method)")
        }
    }

    func testPatchingRanksThePlantedHeadFirst() throws {
        let model = try plantedModel()
        // Clean x, corrupt y = the next answer token: the head alone moves the answer.
        let pairs = (3...6).map { x -> PatchPair in
            let y = Int32(x == 6 ? 3 : x + 1)
            return PatchPair(clean: [1, Int32(x), Self.query], corrupt: [1, y, Self.query], cleanAnswer: Int32(x), corruptAnswer: y)
        }
        let result = try Patching.sweep(model, pairs: pairs, sites: [.z, .residPre])
        XCTAssertGreaterThan(result.cleanBaseline, 1)
        XCTAssertLessThan(result.corruptBaseline, -1)
        let z = result.matrices[0]
        XCTAssertEqual(z.site, .z)
        let best = z.normalized.indices.max { z.normalized[$0] < z.normalized[$1] }!
        XCTAssertEqual(best, 1 * z.cols + 1)                        // [layer 1, head 1]
        XCTAssertEqual(z.normalized[best], 1, accuracy: 1e-5)
        for i in z.normalized.indices where i != best { XCTAssertEqual(z.normalized[i], 0, accuracy: 1e-5) }
        // resid_pre: the answer lives at position 1 until layer 1's attention moves it to position 2.
        let r = result.matrices[1]
        XCTAssertEqual(r.normalized[0 * 3 + 1], 1, accuracy: 1e-5)
        XCTAssertEqual(r.normalized[1 * 3 + 1], 1, accuracy: 1e-5)
        XCTAssertEqual(r.normalized[1 * 3 + 2], 0, accuracy: 1e-5)
    }

    func testBootstrapIntervalMatchesPercentileDefinition() {
        // Every resample mean of a constant is the constant; of 0/1 values the interval brackets the mean.
        let plan = BootstrapPlan(n: 50, resamples: 500, seed: 3, stream: "t")
        let constant = plan.mean([Double](repeating: 2.5, count: 50))
        XCTAssertEqual(constant.lower, 2.5); XCTAssertEqual(constant.upper, 2.5)
        let values = (0..<50).map { Double($0 % 2) }
        let e = plan.mean(values)
        XCTAssertEqual(e.value, 0.5)
        XCTAssertLessThan(e.lower!, 0.5); XCTAssertGreaterThan(e.upper!, 0.5)
        XCTAssertGreaterThan(e.lower!, 0.25); XCTAssertLessThan(e.upper!, 0.75)   // ±3.5 standard errors
        XCTAssertEqual(BootstrapPlan.quantile([1, 2, 3, 4], 0.5), 2.5)           // numpy.percentile([1,2,3,4], 50)
    }
}
