import Foundation
import XCTest
import RuleLensNumerics
@testable import RuleLensModel

/// Finite-difference checks of each layer's backward.
///
/// Tolerances: each layer runs in Float and the objective J = Σ out·R is summed in Double. With step 1e-2 the
/// central difference has truncation error ≈ eps²/6·|f‴| ≲ 1e-4 for these O(1) inputs, and Float rounding of the
/// outputs (≈ 6e-8 relative, ~100 terms) perturbs J by ≲ 1e-6, i.e. ≲ 1e-4 after dividing by 2·eps. So
/// atol 1e-3 + 1% relative sits well above that noise, while a wrong or missing backward term shows up as an
/// error of the size of the gradient itself (≫ 1e-2 here).
final class LayerGradientTests: XCTestCase {
    override func setUp() { Parallel.configure(threads: 2) }

    func testLinearBackward() {
        let (N, C, OC) = (3, 4, 5)
        let inp = randomFloats(N * C, seed: 1), w = randomFloats(C * OC, seed: 2), b = randomFloats(OC, seed: 3)
        let r = randomFloats(N * OC, seed: 4)
        func run(_ inp: [Float], _ w: [Float], _ b: [Float]) -> Double {
            var out = [Float](repeating: 0, count: N * OC)
            Linear.forward(out: &out, inp: inp, weight: w, bias: b, rows: N, inDim: C, outDim: OC)
            return project(out, r)
        }
        var dinp = [Float](repeating: 0, count: N * C), dw = [Float](repeating: 0, count: C * OC), db = [Float](repeating: 0, count: OC)
        Linear.backward(dinp: &dinp, accumulateInput: false, dweight: &dw, dbias: &db, dout: r, inp: inp, weight: w, rows: N, inDim: C, outDim: OC)
        assertGradient("linear dinp", input: inp, analytic: dinp) { run($0, w, b) }
        assertGradient("linear dweight", input: w, analytic: dw) { run(inp, $0, b) }
        assertGradient("linear dbias", input: b, analytic: db) { run(inp, w, $0) }
        // Parameter gradients accumulate.
        let dw1 = dw
        Linear.backward(dinp: &dinp, accumulateInput: false, dweight: &dw, dbias: &db, dout: r, inp: inp, weight: w, rows: N, inDim: C, outDim: OC)
        for i in dw.indices { XCTAssertEqual(dw[i], 2 * dw1[i], accuracy: 1e-5) }
    }

    func testLayerNormBackward() {
        let (N, C) = (3, 6)
        let inp = randomFloats(N * C, seed: 5), w = randomFloats(C, seed: 6).map { 1 + 0.3 * $0 }, b = randomFloats(C, seed: 7)
        let r = randomFloats(N * C, seed: 8)
        func run(_ inp: [Float], _ w: [Float], _ b: [Float]) -> Double {
            var out = [Float](repeating: 0, count: N * C), mean = [Float](repeating: 0, count: N), rstd = mean
            LayerNorm.forward(out: &out, mean: &mean, rstd: &rstd, inp: inp, weight: w, bias: b, rows: N, cols: C, eps: 1e-5)
            return project(out, r)
        }
        var out = [Float](repeating: 0, count: N * C), mean = [Float](repeating: 0, count: N), rstd = mean
        LayerNorm.forward(out: &out, mean: &mean, rstd: &rstd, inp: inp, weight: w, bias: b, rows: N, cols: C, eps: 1e-5)
        var dinp = [Float](repeating: 0, count: N * C), dw = [Float](repeating: 0, count: C), db = dw
        LayerNorm.backward(dinp: &dinp, dweight: &dw, dbias: &db, dout: r, inp: inp, weight: w, mean: mean, rstd: rstd, rows: N, cols: C)
        assertGradient("layernorm dinp", input: inp, analytic: dinp) { run($0, w, b) }
        assertGradient("layernorm dweight", input: w, analytic: dw) { run(inp, $0, b) }
        assertGradient("layernorm dbias", input: b, analytic: db) { run(inp, w, $0) }
    }

    func testAttentionBackwardAndPhasesMatchFused() {
        let dims = AttentionDims(B: 2, T: 4, H: 2, dh: 3)
        let N = dims.B * dims.T, d = dims.H * dims.dh
        let qkv = randomFloats(N * 3 * d, seed: 9), r = randomFloats(N * d, seed: 10)
        func input(_ qkv: UnsafePointer<Float>) -> AttentionInput {
            AttentionInput(q: qkv, qStride: 3 * d, k: qkv + d, kStride: 3 * d, v: qkv + 2 * d, vStride: 3 * d)
        }
        func forward(_ qkv: [Float]) -> (z: [Float], pattern: [Float]) {
            var z = [Float](repeating: 0, count: N * d), pattern = [Float](repeating: 0, count: dims.B * dims.H * dims.T * dims.T)
            qkv.withUnsafeBufferPointer { Attention.forward(z: &z, pattern: &pattern, input: input($0.baseAddress!), dims: dims) }
            return (z, pattern)
        }
        let (z, pattern) = forward(qkv)
        var dqkv = [Float](repeating: 0, count: N * 3 * d), dpattern = pattern
        qkv.withUnsafeBufferPointer { q in
            dqkv.withUnsafeMutableBufferPointer { g in
                let grads = AttentionGradients(dq: g.baseAddress!, dk: g.baseAddress! + d, dv: g.baseAddress! + 2 * d)
                Attention.backward(grads, dpattern: &dpattern, dz: r, input: input(q.baseAddress!), pattern: pattern, dims: dims)
            }
        }
        assertGradient("attention dqkv", input: qkv, analytic: dqkv) { project(forward($0).z, r) }

        // The phased path (used when scores/pattern are hooked) gives the same bits.
        var z2 = [Float](repeating: 0, count: N * d), pattern2 = pattern.map { _ in Float(7) }
        qkv.withUnsafeBufferPointer { q in
            let x = input(q.baseAddress!)
            Attention.scoresPhase(pattern: &pattern2, input: x, dims: dims)
            XCTAssertEqual(pattern2[1], -Float.infinity, "masked score (q 0, k 1) is −∞")
            Attention.softmaxPhase(pattern: &pattern2, input: x, dims: dims)
            Attention.valuesPhase(z: &z2, pattern: pattern2, input: x, dims: dims)
        }
        XCTAssertEqual(pattern2, pattern)
        XCTAssertEqual(z2, z)
    }

    func testGELUForwardAndBackward() {
        // Forward against the Double formula; FastMath.tanh's absolute error is documented as ≲ 2e-7.
        let xs = stride(from: -12.0, through: 12.0, by: 0.01).map { Float($0) }
        var out = [Float](repeating: 0, count: xs.count)
        GELU.forward(out: &out, inp: xs, count: xs.count)
        func gelu(_ x: Double) -> Double { 0.5 * x * (1 + tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x))) }
        for (i, x) in xs.enumerated() { XCTAssertEqual(Double(out[i]), gelu(Double(x)), accuracy: 2e-6 * max(1, abs(Double(x)))) }
        // Backward against the Double derivative by central differences (step 1e-5 in Double: error ≲ 1e-9).
        let dout = randomFloats(xs.count, seed: 15)
        var dinp = dout
        GELU.backward(grad: &dinp, inp: xs, count: xs.count)
        for (i, x) in xs.enumerated() {
            let numeric = Double(dout[i]) * (gelu(Double(x) + 1e-5) - gelu(Double(x) - 1e-5)) / 2e-5
            XCTAssertEqual(Double(dinp[i]), numeric, accuracy: 2e-6 * max(1, abs(Double(x))) * max(1, abs(Double(dout[i]))), "gelu'(\(x))")
        }
        // tanh itself, including large arguments and the sign.
        for u in stride(from: -50.0, through: 50.0, by: 0.003) {
            XCTAssertEqual(Double(FastMath.tanh(Float(u))), tanh(Double(Float(u))), accuracy: 3e-7)
        }
    }

    func testCrossEntropyLossAndGradient() {
        let (N, V) = (4, 5)
        let logits = randomFloats(N * V, std: 2, seed: 11)
        let targets: [Int32] = [1, 4, 0, 2], weights: [Float] = [1, 0, 2, 0.5]
        func reference(_ z: [Float]) -> Double {
            var total = 0.0, wsum = 0.0
            for n in 0..<N where weights[n] > 0 {
                let row = (0..<V).map { Double(z[n * V + $0]) }
                let logSum = log(row.map { exp($0) }.reduce(0, +))
                total += Double(weights[n]) * (logSum - row[Int(targets[n])]); wsum += Double(weights[n])
            }
            return total / wsum
        }
        var dlogits = [Float](repeating: 9, count: N * V)
        let loss = CrossEntropy.forwardBackward(dlogits: &dlogits, logits: logits, targets: targets, weights: weights, rows: N, vocab: V)
        XCTAssertEqual(Double(loss), reference(logits), accuracy: 1e-5)
        // Objective in Double from Float inputs: step 1e-2, curvature of log-sum-exp ≤ 1 → truncation ≲ 1e-5.
        assertGradient("cross-entropy dlogits", input: logits, analytic: dlogits, atol: 1e-4, rtol: 1e-3) { reference($0) }
        XCTAssertEqual(Array(dlogits[V..<(2 * V)]), [Float](repeating: 0, count: V), "masked row has no gradient")
        // No selected position: loss 0, no gradient.
        let zeroLoss = CrossEntropy.forwardBackward(dlogits: &dlogits, logits: logits, targets: targets, weights: [0, 0, 0, 0], rows: N, vocab: V)
        XCTAssertEqual(zeroLoss, 0)
        XCTAssertTrue(dlogits.allSatisfy { $0 == 0 })
    }

    func testEmbeddingBackward() {
        let (B, T, d, V) = (2, 3, 4, 5)
        let wte = randomFloats(V * d, seed: 12), wpe = randomFloats(T * d, seed: 13), r = randomFloats(B * T * d, seed: 14)
        let tokens: [Int32] = [1, 3, 1, 4, 1, 0]   // repeated token 1 accumulates
        func run(_ wte: [Float], _ wpe: [Float]) -> Double {
            var out = [Float](repeating: 0, count: B * T * d)
            Embedding.forward(out: &out, tokens: tokens, wte: wte, wpe: wpe, batch: B, seqLen: T, dModel: d)
            return project(out, r)
        }
        var dwte = [Float](repeating: 0, count: V * d), dwpe = [Float](repeating: 0, count: T * d)
        Embedding.backward(dwte: &dwte, dwpe: &dwpe, dout: r, tokens: tokens, batch: B, seqLen: T, dModel: d)
        assertGradient("embedding dwte", input: wte, analytic: dwte) { run($0, wpe) }
        assertGradient("embedding dwpe", input: wpe, analytic: dwpe) { run(wte, $0) }
    }
}
