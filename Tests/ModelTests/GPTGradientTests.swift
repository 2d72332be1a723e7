import Foundation
import XCTest
import RuleLensNumerics
@testable import RuleLensModel

/// The whole model against the naive Double reference (`ReferenceGPT`): logits, loss, and the gradient of
/// every parameter tensor by central differences of the Double loss.
final class GPTGradientTests: XCTestCase {
    override func setUp() { Parallel.configure(threads: 2) }

    let (B, T) = (2, 5)
    let tokens: [Int32] = [1, 4, 2, 6, 3, 0, 5, 5, 2, 1]
    let targets: [Int32] = [4, 2, 6, 3, 0, 5, 5, 2, 1, 3]
    let mask: [Float] = [0, 1, 1, 0.5, 1, 1, 0, 2, 1, 1]

    func testLogitsAndLossMatchDoubleReference() throws {
        let model = try tinyModel()
        let reference = ReferenceGPT(model.params)
        let logits = model.forward(tokens: tokens, batch: B, seqLen: T)
        let V = model.config.vocabSize
        for b in 0..<B {
            let expected = reference.logits(Array(tokens[(b * T)..<((b + 1) * T)]))
            for t in 0..<T { for v in 0..<V {
                XCTAssertEqual(Double(logits[(b * T + t) * V + v]), expected[t][v], accuracy: 1e-4, "logit b\(b) t\(t) v\(v)")
            } }
        }
        let loss = model.loss(targets: targets, lossMask: mask)
        XCTAssertEqual(Double(loss), reference.loss(tokens: tokens, batch: B, seqLen: T, targets: targets, mask: mask), accuracy: 1e-5)
    }

    /// Step 1e-5 in Double: truncation ≈ 1e-10·|f‴| and rounding ≈ 1e-16/1e-5, both ≪ the tolerance. The analytic
    /// gradient is computed in Float, so it carries relative error ~1e-6 of the summed contributions:
    /// atol 2e-5 + 1e-3 relative covers that. The large random parameters of `tinyModel` make every gradient
    /// O(1e-2…1), so a broken backward term is far outside the tolerance.
    func testEveryParameterGradientMatchesFiniteDifferences() throws {
        let model = try tinyModel()
        model.zeroGrads()
        _ = model.forward(tokens: tokens, batch: B, seqLen: T)
        _ = model.loss(targets: targets, lossMask: mask)
        model.backward()
        var reference = ReferenceGPT(model.params)
        var rng = SeededRNG(seed: 77)
        var checked = 0
        for tensor in model.params.tensors {
            let analytic = model.grads.values(tensor.name)!
            let indices = tensor.count <= 12 ? Array(0..<tensor.count) : (0..<12).map { _ in rng.int(below: tensor.count) }
            for i in indices {
                let original = reference.p[tensor.name]![i]
                reference.p[tensor.name]![i] = original + 1e-5
                let up = reference.loss(tokens: tokens, batch: B, seqLen: T, targets: targets, mask: mask)
                reference.p[tensor.name]![i] = original - 1e-5
                let down = reference.loss(tokens: tokens, batch: B, seqLen: T, targets: targets, mask: mask)
                reference.p[tensor.name]![i] = original
                let numeric = (up - down) / 2e-5
                XCTAssertEqual(Double(analytic[i]), numeric, accuracy: 2e-5 + 1e-3 * abs(numeric), "\(tensor.name)[\(i)]")
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 250)
        // Gradients accumulate across backward calls until zeroGrads().
        let first = model.grads.storage.toArray()
        _ = model.forward(tokens: tokens, batch: B, seqLen: T)
        _ = model.loss(targets: targets, lossMask: mask)
        model.backward()
        let second = model.grads.storage.toArray()
        for i in stride(from: 0, to: first.count, by: 7) { XCTAssertEqual(second[i], 2 * first[i], accuracy: 1e-5 + 1e-5 * abs(first[i])) }
        model.zeroGrads()
        XCTAssertTrue(model.grads.storage.toArray().allSatisfy { $0 == 0 })
    }
}
