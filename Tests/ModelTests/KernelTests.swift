import Foundation
import XCTest
import RuleLensNumerics
@testable import RuleLensModel

/// The shared layer kernels that the GPT, the Llama/Qwen2 family and the VAE compose: each checked against a naive
/// Double reference (forward) and by finite differences (backward). Tolerances as in `LayerGradientTests`.
final class KernelTests: XCTestCase {
    override func setUp() { Parallel.configure(threads: 2) }

    /// Naive Double attention: the reference for every mask/prefix/grouping combination.
    private func referenceAttention(q: [Float], k: [Float], v: [Float], prefixK: [Float], prefixV: [Float], lengths: [Int32]?,
                                    dims: AttentionDims) -> (z: [Double], pattern: [Double]) {
        let (B, T, H, Hkv, dh, P) = (dims.B, dims.T, dims.H, dims.Hkv, dims.dh, dims.P)
        let K = P + T, group = H / Hkv
        var z = [Double](repeating: 0, count: B * T * H * dh), pattern = [Double](repeating: 0, count: B * H * T * K)
        for b in 0..<B { for h in 0..<H { for t in 0..<T {
            let g = h / group
            let length = lengths.map { Int($0[b]) } ?? T
            let end = P + (dims.causal ? min(t + 1, length) : length)
            func key(_ j: Int, _ i: Int) -> Double {
                j < P ? Double(prefixK[(b * P + j) * Hkv * dh + g * dh + i]) : Double(k[(b * T + j - P) * Hkv * dh + g * dh + i])
            }
            func value(_ j: Int, _ i: Int) -> Double {
                j < P ? Double(prefixV[(b * P + j) * Hkv * dh + g * dh + i]) : Double(v[(b * T + j - P) * Hkv * dh + g * dh + i])
            }
            var scores = [Double](repeating: -.infinity, count: K)
            for j in 0..<end {
                var s = 0.0
                for i in 0..<dh { s += Double(q[(b * T + t) * H * dh + h * dh + i]) * key(j, i) }
                scores[j] = s / Double(dh).squareRoot()
            }
            let m = scores[0..<end].max()!
            let e = scores.map { $0 == -.infinity ? 0 : exp($0 - m) }, sum = e.reduce(0, +)
            for j in 0..<K {
                let p = e[j] / sum
                pattern[((b * H + h) * T + t) * K + j] = p
                for i in 0..<dh { z[(b * T + t) * H * dh + h * dh + i] += p * (j < end ? value(j, i) : 0) }
            }
        } } }
        return (z, pattern)
    }

    /// Grouped-query heads, a prefix slot and both masks: forward against the Double reference, backward (q, k, v and
    /// both prefix tensors) by finite differences, and the hooked three-phase path bit-equal to the fused one.
    func testAttentionGroupedPrefixAndMasks() {
        for (causal, lengths) in [(true, nil), (false, [Int32(3), 5]), (false, nil)] as [(Bool, [Int32]?)] {
            let dims = AttentionDims(B: 2, T: 5, H: 4, Hkv: 2, dh: 3, P: 1, causal: causal)
            let (B, T, H, Hkv, dh, P) = (dims.B, dims.T, dims.H, dims.Hkv, dims.dh, dims.P)
            let q = randomFloats(B * T * H * dh, seed: 21), k = randomFloats(B * T * Hkv * dh, seed: 22)
            let v = randomFloats(B * T * Hkv * dh, seed: 23)
            let pk = randomFloats(B * P * Hkv * dh, seed: 24), pv = randomFloats(B * P * Hkv * dh, seed: 25)
            let r = randomFloats(B * T * H * dh, seed: 26)
            func run(_ q: [Float], _ k: [Float], _ v: [Float], _ pk: [Float], _ pv: [Float], phased: Bool = false) -> (z: [Float], pattern: [Float]) {
                var z = [Float](repeating: 0, count: B * T * H * dh), pattern = [Float](repeating: 0, count: B * H * T * dims.keys)
                q.withUnsafeBufferPointer { qp in k.withUnsafeBufferPointer { kp in v.withUnsafeBufferPointer { vp in
                pk.withUnsafeBufferPointer { pkp in pv.withUnsafeBufferPointer { pvp in
                    let body = { (lp: UnsafePointer<Int32>?) in
                        let x = AttentionInput(q: qp.baseAddress!, qStride: H * dh, k: kp.baseAddress!, kStride: Hkv * dh,
                                               v: vp.baseAddress!, vStride: Hkv * dh, prefixK: pkp.baseAddress!, prefixV: pvp.baseAddress!,
                                               keyLengths: lp)
                        if phased {
                            Attention.scoresPhase(pattern: &pattern, input: x, dims: dims)
                            Attention.softmaxPhase(pattern: &pattern, input: x, dims: dims)
                            Attention.valuesPhase(z: &z, pattern: pattern, input: x, dims: dims)
                        } else {
                            Attention.forward(z: &z, pattern: &pattern, input: x, dims: dims)
                        }
                    }
                    if let lengths { lengths.withUnsafeBufferPointer { body($0.baseAddress!) } } else { body(nil) }
                } } } } }
                return (z, pattern)
            }
            let (z, pattern) = run(q, k, v, pk, pv)
            let reference = referenceAttention(q: q, k: k, v: v, prefixK: pk, prefixV: pv, lengths: lengths, dims: dims)
            for i in z.indices { XCTAssertEqual(Double(z[i]), reference.z[i], accuracy: 1e-5, "z[\(i)] causal \(causal)") }
            for i in pattern.indices { XCTAssertEqual(Double(pattern[i]), reference.pattern[i], accuracy: 1e-6, "pattern[\(i)]") }
            let phased = run(q, k, v, pk, pv, phased: true)
            XCTAssertEqual(phased.z, z, "phased path, causal \(causal)"); XCTAssertEqual(phased.pattern, pattern)

            let dq = FloatBuffer(count: q.count), dk = FloatBuffer(count: k.count), dv = FloatBuffer(count: v.count)
            let dpk = FloatBuffer(count: pk.count), dpv = FloatBuffer(count: pv.count), dpattern = FloatBuffer(pattern)
            let (qb, kb, vb, pkb, pvb) = (FloatBuffer(q), FloatBuffer(k), FloatBuffer(v), FloatBuffer(pk), FloatBuffer(pv))
            let lengthBuffer = lengths ?? []
            lengthBuffer.withUnsafeBufferPointer { lp in
                let x = AttentionInput(q: qb.ptr, qStride: H * dh, k: kb.ptr, kStride: Hkv * dh, v: vb.ptr, vStride: Hkv * dh,
                                       prefixK: pkb.ptr, prefixV: pvb.ptr, keyLengths: lengths == nil ? nil : lp.baseAddress)
                let grads = AttentionGradients(dq: dq.ptr, dk: dk.ptr, dv: dv.ptr, dPrefixK: dpk.ptr, dPrefixV: dpv.ptr)
                for buffer in [dq, dk, dv, dpk, dpv] { buffer.ptr.update(repeating: 9, count: buffer.count) }   // overwritten, not accumulated
                Attention.backward(grads, dpattern: dpattern.ptr, dz: r, input: x, pattern: pattern, dims: dims)
            }
            assertGradient("attention dq (causal \(causal))", input: q, analytic: dq.toArray()) { project(run($0, k, v, pk, pv).z, r) }
            assertGradient("attention dk", input: k, analytic: dk.toArray()) { project(run(q, $0, v, pk, pv).z, r) }
            assertGradient("attention dv", input: v, analytic: dv.toArray()) { project(run(q, k, $0, pk, pv).z, r) }
            assertGradient("attention dPrefixK", input: pk, analytic: dpk.toArray()) { project(run(q, k, v, $0, pv).z, r) }
            assertGradient("attention dPrefixV", input: pv, analytic: dpv.toArray()) { project(run(q, k, v, pk, $0).z, r) }
        }
    }

    func testLinearOutInLayout() {
        let (N, C, OC) = (3, 4, 5)
        let inp = randomFloats(N * C, seed: 31), w = randomFloats(OC * C, seed: 32), b = randomFloats(OC, seed: 33)
        let r = randomFloats(N * OC, seed: 34)
        func run(_ inp: [Float], _ w: [Float], _ b: [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: N * OC)
            Linear.forward(out: &out, inp: inp, weight: w, bias: b, rows: N, inDim: C, outDim: OC, layout: .outIn)
            return out
        }
        let out = run(inp, w, b)
        for n in 0..<N { for o in 0..<OC {
            var s = Double(b[o]); for c in 0..<C { s += Double(inp[n * C + c]) * Double(w[o * C + c]) }
            XCTAssertEqual(Double(out[n * OC + o]), s, accuracy: 1e-5)
        } }
        var dinp = [Float](repeating: 0, count: N * C), dw = [Float](repeating: 0, count: OC * C), db = [Float](repeating: 0, count: OC)
        Linear.backward(dinp: &dinp, accumulateInput: false, dweight: &dw, dbias: &db, dout: r, inp: inp, weight: w, rows: N, inDim: C,
                        outDim: OC, layout: .outIn)
        assertGradient("linear outIn dinp", input: inp, analytic: dinp) { project(run($0, w, b), r) }
        assertGradient("linear outIn dweight", input: w, analytic: dw) { project(run(inp, $0, b), r) }
        assertGradient("linear outIn dbias", input: b, analytic: db) { project(run(inp, w, $0), r) }
    }

    func testRMSNormForwardBackwardAndSplitPath() {
        let (N, C) = (3, 8)
        let inp = randomFloats(N * C, seed: 41), w = randomFloats(C, seed: 42).map { 1 + 0.3 * $0 }, r = randomFloats(N * C, seed: 43)
        func run(_ inp: [Float], _ w: [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: N * C), rstd = [Float](repeating: 0, count: N)
            RMSNorm.forward(out: &out, rstd: &rstd, inp: inp, weight: w, rows: N, cols: C, eps: 1e-6)
            return out
        }
        let out = run(inp, w)
        for n in 0..<N {
            let row = (0..<C).map { Double(inp[n * C + $0]) }
            let s = 1 / (row.map { $0 * $0 }.reduce(0, +) / Double(C) + 1e-6).squareRoot()
            for i in 0..<C { XCTAssertEqual(Double(out[n * C + i]), row[i] * s * Double(w[i]), accuracy: 1e-5) }
        }
        var normalized = [Float](repeating: 0, count: N * C), rstd = [Float](repeating: 0, count: N), split = normalized
        RMSNorm.normalize(normalized: &normalized, rstd: &rstd, inp: inp, rows: N, cols: C, eps: 1e-6)
        RMSNorm.scale(out: &split, normalized: normalized, weight: w, rows: N, cols: C)
        XCTAssertEqual(split, out, "hooked (split) and fused paths agree bitwise")
        var dinp = [Float](repeating: 0, count: N * C), dw = [Float](repeating: 0, count: C)
        RMSNorm.backward(dinp: &dinp, dweight: &dw, dout: r, inp: inp, weight: w, rstd: rstd, rows: N, cols: C)
        assertGradient("rmsnorm dinp", input: inp, analytic: dinp) { project(run($0, w), r) }
        assertGradient("rmsnorm dweight", input: w, analytic: dw) { project(run(inp, $0), r) }
    }

    func testRotaryMatchesRotateHalfAndInverts() {
        let (B, T, heads, dh) = (2, 5, 3, 8)
        let stride = heads * dh + 4            // rows wider than the heads (a fused buffer)
        let x = randomFloats(B * T * stride, seed: 51), r = randomFloats(B * T * stride, seed: 52)
        let tables = Rotary.Tables(positions: 16, dHead: dh, base: 10_000)
        func run(_ x: [Float], offset: Int = 2) -> [Float] {
            var y = x
            Rotary.apply(&y, stride: stride, batch: B, seqLen: T, heads: heads, dHead: dh, tables: tables, positionOffset: offset)
            return y
        }
        let y = run(x)
        let half = dh / 2
        for n in 0..<(B * T) { for h in 0..<heads { for i in 0..<half {
            let p = Double(2 + n % T), theta = 1 / pow(10_000.0, Double(2 * i) / Double(dh))
            let a = Double(x[n * stride + h * dh + i]), b = Double(x[n * stride + h * dh + half + i])
            XCTAssertEqual(Double(y[n * stride + h * dh + i]), a * cos(p * theta) - b * sin(p * theta), accuracy: 1e-5)
            XCTAssertEqual(Double(y[n * stride + h * dh + half + i]), b * cos(p * theta) + a * sin(p * theta), accuracy: 1e-5)
        } } }
        for n in 0..<(B * T) { for c in (heads * dh)..<stride { XCTAssertEqual(y[n * stride + c], x[n * stride + c], "columns past the heads untouched") } }
        var back = y
        Rotary.apply(&back, stride: stride, batch: B, seqLen: T, heads: heads, dHead: dh, tables: tables, positionOffset: 2, inverse: true)
        for i in x.indices { XCTAssertEqual(back[i], x[i], accuracy: 1e-5) }
        var grad = r
        Rotary.backward(&grad, stride: stride, batch: B, seqLen: T, heads: heads, dHead: dh, tables: tables, positionOffset: 2)
        assertGradient("rotary backward", input: x, analytic: grad) { project(run($0), r) }
    }

    func testSwiGLUForwardBackward() {
        let n = 64
        let gate = randomFloats(n, std: 3, seed: 61), up = randomFloats(n, seed: 62), r = randomFloats(n, seed: 63)
        func run(_ gate: [Float], _ up: [Float]) -> [Float] {
            var hidden = [Float](repeating: 0, count: n)
            SwiGLU.forward(hidden: &hidden, gate: gate, up: up, count: n)
            return hidden
        }
        let hidden = run(gate, up)
        for i in 0..<n {
            let g = Double(gate[i])
            XCTAssertEqual(Double(hidden[i]), g / (1 + exp(-g)) * Double(up[i]), accuracy: 1e-5)
        }
        var dgate = [Float](repeating: 0, count: n), dup = dgate
        SwiGLU.backward(dgate: &dgate, dup: &dup, dhidden: r, gate: gate, up: up, count: n)
        assertGradient("swiglu dgate", input: gate, analytic: dgate) { project(run($0, up), r) }
        assertGradient("swiglu dup", input: up, analytic: dup) { project(run(gate, $0), r) }
    }

    func testPerExampleAddAndBackward() {
        let (B, T, width, stride) = (3, 4, 5, 7)
        let x = randomFloats(B * T * stride, seed: 71), vectors = randomFloats(B * width, seed: 72), r = randomFloats(B * T * stride, seed: 73)
        func run(_ vectors: [Float]) -> [Float] {
            var y = x
            PerExample.add(&y, stride: stride, vectors: vectors, batch: B, seqLen: T, width: width, scale: 0.5)
            return y
        }
        let y = run(vectors)
        for b in 0..<B { for t in 0..<T { for c in 0..<stride {
            let i = (b * T + t) * stride + c
            XCTAssertEqual(y[i], c < width ? x[i] + 0.5 * vectors[b * width + c] : x[i])
        } } }
        var dvectors = [Float](repeating: 0, count: B * width)
        PerExample.backward(dvectors: &dvectors, dx: r, stride: stride, batch: B, seqLen: T, width: width, scale: 0.5)
        assertGradient("per-example add", input: vectors, analytic: dvectors) { project(run($0), r) }
    }
}
