import Foundation
import XCTest
import RuleLensNumerics
@testable import RuleLensModel

/// A GPT with a trained rule prior (`RulePriorGPT`): the gradient of the prior table by finite differences at every
/// site, a zero table equals the plain GPT bit for bit, the table rows are the examples' own, AdamW steps lower the
/// loss, and a checkpoint round trip (table and rules in config.json) is exact.
final class RulePriorTests: XCTestCase {
    override func setUp() { Parallel.configure(threads: 2) }

    let (B, T) = (3, 5)
    let tokens: [Int32] = [1, 4, 2, 6, 3, 0, 5, 5, 2, 1, 3, 3, 6, 1, 2]
    let targets: [Int32] = [4, 2, 6, 3, 0, 5, 5, 2, 1, 3, 3, 6, 1, 2, 4]
    let mask: [Float] = [0, 1, 1, 0.5, 1, 1, 0, 2, 1, 1, 1, 1, 1, 0, 1]
    let rules = ["alpha", "beta", "gamma"]

    /// The tiny test GPT's weights with a prior at `site` whose table is random (std 0.5).
    private func priorModel(_ site: Injection, seed: UInt64 = 5) throws -> RulePriorGPT {
        let plain = try tinyModel()
        let model = try RulePriorGPT(config: plain.config, spec: RulePriorSpec(column: "rule", inject: site, rules: rules), seed: 0)
        model.gpt.params.storage.ptr.update(from: plain.params.storage.ptr, count: plain.params.storage.count)
        let values = randomFloats(model.table.count, std: 0.5, seed: seed)
        (model.gpt.params.storage.ptr + model.table.offset).update(from: values, count: values.count)
        return model
    }

    func testTableGradientMatchesFiniteDifferences() throws {
        for site in Injection.allCases {
            let model = try priorModel(site)
            model.ruleRows = [2, 0, 2]   // rule 1 unused: its gradient must be exactly zero
            func loss() -> Double {
                _ = model.forward(tokens: tokens, batch: B, seqLen: T, hooks: nil)
                return Double(model.loss(targets: targets, lossMask: mask))
            }
            model.zeroGrads()
            _ = loss()
            model.backward()
            let t = model.table
            let analytic = Array(UnsafeBufferPointer(start: model.gpt.grads.storage.ptr + t.offset, count: t.count))
            let width = model.spec.width(model.config)
            XCTAssertTrue(analytic[width..<(2 * width)].allSatisfy { $0 == 0 }, "\(site): an unused rule gets no gradient")
            if site == .key {   // one shift for every key of a row adds the same q·δ to every score: softmax cancels it
                XCTAssertLessThan(analytic.map(abs).max()!, 1e-5, "a key prior gets (almost) no gradient")
            } else {
                XCTAssertGreaterThan(analytic.map(abs).max()!, 1e-4, "\(site): the used rows get a gradient")
            }
            let values = Array(UnsafeBufferPointer(start: model.gpt.params.storage.ptr + t.offset, count: t.count))
            let indices = Array(stride(from: 0, to: t.count, by: max(1, t.count / 24)))
            assertGradient("rule_prior.\(site)", input: indices.map { values[$0] }, analytic: indices.map { analytic[$0] }, atol: 2e-3) { changed in
                let p = model.gpt.params.storage.ptr + t.offset
                for (j, i) in indices.enumerated() { p[i] = changed[j] }
                defer { for i in indices { p[i] = values[i] } }
                return loss()
            }
        }
    }

    /// A zero row added to Q, K, V or the embeddings changes nothing, bit for bit; the memory slot is a real extra key.
    func testZeroPriorEqualsThePlainModel() throws {
        let plain = try tinyModel()
        let V = plain.config.vocabSize
        let expected = Array(UnsafeBufferPointer(start: plain.forward(tokens: tokens, batch: B, seqLen: T), count: B * T * V))
        for site in Injection.allCases {
            let model = try priorModel(site)
            (model.gpt.params.storage.ptr + model.table.offset).update(repeating: 0, count: model.table.count)
            model.ruleRows = [0, 1, 2]
            let got = Array(UnsafeBufferPointer(start: model.forward(tokens: tokens, batch: B, seqLen: T, hooks: nil), count: B * T * V))
            if site == .memory {
                XCTAssertNotEqual(got, expected, "a zero memory slot still takes attention")
            } else {
                XCTAssertEqual(got, expected, "\(site): a zero prior is no prior")
            }
        }
    }

    /// The row a batch row gets is its rule's: the same forward with explicit override vectors equal to those rows is
    /// bitwise the same, and the prompt lookup (`select`) picks the same rows as `ruleRows`.
    func testRowsAreSelectedPerExample() throws {
        let model = try priorModel(.query)
        let V = model.vocabSize
        model.ruleRows = [2, 0, 1]
        let byRows = Array(UnsafeBufferPointer(start: model.forward(tokens: tokens, batch: B, seqLen: T, hooks: nil), count: B * T * V))
        model.ruleRows = []
        model.overrideVectors = [2, 0, 1].map { model.rowValues($0) }
        let byVectors = Array(UnsafeBufferPointer(start: model.forward(tokens: tokens, batch: B, seqLen: T, hooks: nil), count: B * T * V))
        XCTAssertEqual(byRows, byVectors)
        model.overrideVectors = nil
        try model.select(prompts: [[1, 4], [0, 5, 5], [3, 3, 6]], rows: [2, 0, 1])
        let byPrompt = Array(UnsafeBufferPointer(start: model.forward(tokens: tokens, batch: B, seqLen: T, hooks: nil), count: B * T * V))
        XCTAssertEqual(byRows, byPrompt)
        model.ruleRows = [1, 1, 1]
        let other = Array(UnsafeBufferPointer(start: model.forward(tokens: tokens, batch: B, seqLen: T, hooks: nil), count: B * T * V))
        XCTAssertNotEqual(byRows, other, "another rule's row changes the logits")
        XCTAssertThrowsError(try model.select(prompts: [[1, 4], [1, 4]], rows: [0, 1]), "one prompt, two rules")
    }

    func testAdamWStepsLowerTheLoss() throws {
        let model = try priorModel(.query)
        model.ruleRows = [0, 1, 2]
        var adam = AdamW(weightDecay: 0.01)
        var losses: [Float] = []
        let before = model.rowValues(1)
        for _ in 0..<30 {
            model.zeroGrads()
            _ = model.forward(tokens: tokens, batch: B, seqLen: T, hooks: nil)
            losses.append(model.loss(targets: targets, lossMask: mask))
            model.backward()
            adam.step(model, lr: 1e-2)
        }
        XCTAssertLessThan(losses.last!, 0.7 * losses.first!)
        XCTAssertNotEqual(model.rowValues(1), before, "the table is trained")
    }

    func testCheckpointRoundTripKeepsTableAndRules() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rule-prior-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = try priorModel(.value)
        try ModelFolder.save(model, vocab: nil, files: [:], bosTokenID: 1, eosTokenID: 2, to: dir)
        let (loaded, _) = try Checkpoint.loadRulePrior(dir)
        XCTAssertEqual(loaded.spec, model.spec)
        XCTAssertEqual(loaded.gpt.params.storage.toArray(), model.gpt.params.storage.toArray())
        XCTAssertThrowsError(try Checkpoint.load(dir)) { error in
            XCTAssertTrue("\(error)".contains("rule prior"), "\(error)")
        }
        XCTAssertThrowsError(try ModelFolder.load(dir))
        XCTAssertTrue(try ModelFolder.load(dir, rulePriors: true) is RulePriorGPT)
    }
}
