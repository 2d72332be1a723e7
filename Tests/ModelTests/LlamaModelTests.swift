import Foundation
import XCTest
import RuleLensNumerics
@testable import RuleLensModel

/// A naive Double implementation of the Llama/Qwen2 family, written from the formulas (no shared kernels, no BLAS):
/// the reference for `LlamaModel`'s logits, loss and every parameter's gradient (central differences).
struct ReferenceLlama {
    let c: LlamaConfig
    var p: [String: [Double]]

    init(_ params: LlamaParameters) {
        c = params.config
        var values: [String: [Double]] = [:]
        for t in params.tensors { values[t.name] = params.values(t.name)!.map(Double.init) }
        p = values
    }

    /// x [T][in] · W[out, in]ᵀ + b → [T][out]
    func linear(_ x: [[Double]], _ name: String, out: Int) -> [[Double]] {
        let w = p[name + ".weight"]!, b = p[name + ".bias"]
        let inDim = w.count / out
        return x.map { row in
            (0..<out).map { o in
                var s = b?[o] ?? 0
                for i in 0..<inDim { s += row[i] * w[o * inDim + i] }
                return s
            }
        }
    }

    func rmsNorm(_ x: [[Double]], _ name: String) -> [[Double]] {
        let w = p[name]!
        return x.map { row in
            let ms = row.reduce(0) { $0 + $1 * $1 } / Double(row.count)
            let r = 1 / (ms + Double(c.rmsNormEps)).squareRoot()
            return row.indices.map { row[$0] * r * w[$0] }
        }
    }

    /// Rotate-half RoPE of heads×dh rows at positions 0..<T.
    func rope(_ x: [[Double]], heads: Int) -> [[Double]] {
        guard c.positions == .rope else { return x }
        let dh = c.dHead, half = dh / 2
        return x.enumerated().map { t, row in
            var out = row
            for h in 0..<heads {
                for i in 0..<half {
                    let theta = Double(t) * pow(Double(c.ropeTheta), -Double(2 * i) / Double(dh))
                    let a = row[h * dh + i], b = row[h * dh + half + i]
                    out[h * dh + i] = a * cos(theta) - b * sin(theta)
                    out[h * dh + half + i] = b * cos(theta) + a * sin(theta)
                }
            }
            return out
        }
    }

    func logits(_ tokens: [Int32]) -> [[Double]] {
        let d = c.dModel, dh = c.dHead, H = c.nHead, Hkv = c.nKVHead, T = tokens.count
        let embed = p["model.embed_tokens.weight"]!
        var x = tokens.map { Array(embed[(Int($0) * d)..<(Int($0) * d + d)]) }
        for l in 0..<c.nLayer {
            let pre = "model.layers.\(l)."
            let n = rmsNorm(x, pre + "input_layernorm.weight")
            let q = rope(linear(n, pre + "self_attn.q_proj", out: H * dh), heads: H)
            let k = rope(linear(n, pre + "self_attn.k_proj", out: Hkv * dh), heads: Hkv)
            let v = linear(n, pre + "self_attn.v_proj", out: Hkv * dh)
            var z = [[Double]](repeating: [Double](repeating: 0, count: H * dh), count: T)
            for h in 0..<H {
                let g = h / (H / Hkv)
                for t in 0..<T {
                    var scores = (0...t).map { j in
                        (0..<dh).reduce(0.0) { $0 + q[t][h * dh + $1] * k[j][g * dh + $1] } / Double(dh).squareRoot()
                    }
                    let m = scores.max()!
                    scores = scores.map { exp($0 - m) }
                    let sum = scores.reduce(0, +)
                    for j in 0...t { for i in 0..<dh { z[t][h * dh + i] += scores[j] / sum * v[j][g * dh + i] } }
                }
            }
            let attnOut = linear(z, pre + "self_attn.o_proj", out: d)
            x = x.indices.map { t in x[t].indices.map { x[t][$0] + attnOut[t][$0] } }
            let m = rmsNorm(x, pre + "post_attention_layernorm.weight")
            let gate = linear(m, pre + "mlp.gate_proj", out: c.dMLP), up = linear(m, pre + "mlp.up_proj", out: c.dMLP)
            let hidden = gate.indices.map { t in gate[t].indices.map { gate[t][$0] / (1 + exp(-gate[t][$0])) * up[t][$0] } }
            let mlpOut = linear(hidden, pre + "mlp.down_proj", out: d)
            x = x.indices.map { t in x[t].indices.map { x[t][$0] + mlpOut[t][$0] } }
        }
        let f = rmsNorm(x, "model.norm.weight")
        let head = p[c.tiedEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight"]!
        return f.map { row in (0..<c.vocabSize).map { v in (0..<d).reduce(0.0) { $0 + row[$1] * head[v * d + $1] } } }
    }

    /// Σ mask·CE / Σ mask over the batch (each row its own sequence).
    func loss(tokens: [Int32], batch B: Int, seqLen T: Int, targets: [Int32], mask: [Float]) -> Double {
        var total = 0.0, weight = 0.0
        for b in 0..<B {
            let z = logits(Array(tokens[(b * T)..<((b + 1) * T)]))
            for t in 0..<T where mask[b * T + t] > 0 {
                let row = z[t], m = row.max()!
                let lse = log(row.reduce(0) { $0 + exp($1 - m) }) + m
                total += Double(mask[b * T + t]) * (lse - row[Int(targets[b * T + t])])
                weight += Double(mask[b * T + t])
            }
        }
        return total / weight
    }
}

final class LlamaModelTests: XCTestCase {
    override func setUp() { Parallel.configure(threads: 2) }

    let (B, T) = (2, 5)
    let tokens: [Int32] = [1, 4, 2, 6, 3, 0, 5, 5, 2, 1]
    let targets: [Int32] = [4, 2, 6, 3, 0, 5, 5, 2, 1, 3]
    let mask: [Float] = [0, 1, 1, 0.5, 1, 1, 0, 2, 1, 1]

    func testLogitsAndLossMatchDoubleReference() throws {
        for (family, positions) in [(LlamaConfig.Family.qwen2, LlamaConfig.Positions.rope), (.llama, .rope), (.llama, .none)] {
            let model = try tinyLlama(family, positions: positions)
            let reference = ReferenceLlama(model.params)
            let logits = model.forward(tokens: tokens, batch: B, seqLen: T, hooks: nil)
            let V = model.config.vocabSize
            for b in 0..<B {
                let expected = reference.logits(Array(tokens[(b * T)..<((b + 1) * T)]))
                for t in 0..<T { for v in 0..<V {
                    XCTAssertEqual(Double(logits[(b * T + t) * V + v]), expected[t][v], accuracy: 1e-4, "\(family) \(positions) b\(b) t\(t) v\(v)")
                } }
            }
            let loss = model.loss(targets: targets, lossMask: mask)
            XCTAssertEqual(Double(loss), reference.loss(tokens: tokens, batch: B, seqLen: T, targets: targets, mask: mask), accuracy: 1e-5)
        }
    }

    /// Central differences of the Double reference loss (step 1e-5) for up to 10 entries of every tensor; the
    /// tolerance covers Float accumulation in the analytic gradient (see GPTGradientTests).
    func testEveryParameterGradientMatchesFiniteDifferences() throws {
        for family in LlamaConfig.Family.allCases {
            let model = try tinyLlama(family)
            model.zeroGrads()
            _ = model.forward(tokens: tokens, batch: B, seqLen: T, hooks: nil)
            _ = model.loss(targets: targets, lossMask: mask)
            model.backward()
            var reference = ReferenceLlama(model.params)
            var rng = SeededRNG(seed: 91)
            var checked = 0
            for tensor in model.params.tensors {
                let analytic = model.grads.values(tensor.name)!
                let indices = tensor.count <= 10 ? Array(0..<tensor.count) : (0..<10).map { _ in rng.int(below: tensor.count) }
                for i in indices {
                    let original = reference.p[tensor.name]![i]
                    reference.p[tensor.name]![i] = original + 1e-5
                    let up = reference.loss(tokens: tokens, batch: B, seqLen: T, targets: targets, mask: mask)
                    reference.p[tensor.name]![i] = original - 1e-5
                    let down = reference.loss(tokens: tokens, batch: B, seqLen: T, targets: targets, mask: mask)
                    reference.p[tensor.name]![i] = original
                    let numeric = (up - down) / 2e-5
                    XCTAssertEqual(Double(analytic[i]), numeric, accuracy: 2e-5 + 1e-3 * abs(numeric), "\(family) \(tensor.name)[\(i)]")
                    checked += 1
                }
            }
            XCTAssertGreaterThan(checked, 150)
        }
    }

    func testHooksObserveEditAndKeepResidualIdentities() throws {
        let model = try tinyLlama(.qwen2)
        model.retainsActivationsForBackward = false
        let plain = Array(UnsafeBufferPointer(start: model.forward(tokens: tokens, batch: B, seqLen: T, hooks: nil), count: B * T * 7))
        let hooks = HookSet()
        let cache = hooks.cache(["*"])
        let observed = Array(UnsafeBufferPointer(start: model.forward(tokens: tokens, batch: B, seqLen: T, hooks: hooks), count: B * T * 7))
        XCTAssertEqual(plain, observed, "observing every site changes nothing, bit for bit")
        XCTAssertEqual(cache.names, model.hookSites)
        for site in model.hookSites { XCTAssertEqual(cache[site]!.shape, model.hookShape(site, batch: B, seqLen: T), site) }
        XCTAssertEqual(cache["blocks.0.attn.hook_k"]!.shape, [B, T, 2, 4])     // key/value heads, not repeated
        XCTAssertEqual(cache["blocks.1.ln2.hook_scale"]!.shape, [B, T, 1])
        for l in 0..<2 {
            let pre = cache["blocks.\(l).hook_resid_pre"]!.values, mid = cache["blocks.\(l).hook_resid_mid"]!.values
            let post = cache["blocks.\(l).hook_resid_post"]!.values
            let attn = cache["blocks.\(l).hook_attn_out"]!.values, mlp = cache["blocks.\(l).hook_mlp_out"]!.values
            for i in pre.indices { XCTAssertEqual(mid[i], pre[i] + attn[i]); XCTAssertEqual(post[i], mid[i] + mlp[i]) }
            // hook_normalized · hook_scale reproduces the residual; position 0's rotation is the identity.
            let scale = cache["blocks.\(l).ln1.hook_scale"]!.values, normalized = cache["blocks.\(l).ln1.hook_normalized"]!.values
            for i in pre.indices { XCTAssertEqual(Double(normalized[i] * scale[i / 16]), Double(pre[i]), accuracy: 1e-5) }
            let q = cache["blocks.\(l).attn.hook_q"]!.values, rq = cache["blocks.\(l).attn.hook_rot_q"]!.values
            for i in 0..<16 { XCTAssertEqual(q[i], rq[i]) }
        }
        // Editing: zeroing every layer's MLP output equals a model whose down_proj is zero.
        let zeroMLP = HookSet()
        try zeroMLP.zero(["blocks.*.hook_mlp_out"])
        let edited = Array(UnsafeBufferPointer(start: model.forward(tokens: tokens, batch: B, seqLen: T, hooks: zeroMLP), count: B * T * 7))
        for l in 0..<2 { model.params.layers[l].down.update(repeating: 0, count: 16 * 20) }
        let zeroed = Array(UnsafeBufferPointer(start: model.forward(tokens: tokens, batch: B, seqLen: T, hooks: nil), count: B * T * 7))
        for i in edited.indices { XCTAssertEqual(edited[i], zeroed[i], accuracy: 1e-6) }
    }

    func testConfigErrorsNameTheField() {
        XCTAssertThrowsError(try LlamaModel(config: LlamaConfig(family: .llama, nLayer: 1, nHead: 6, nKVHead: 4, dModel: 12, nCtx: 4, vocabSize: 5), seed: 0)) {
            XCTAssertTrue("\($0)".contains("not a multiple of 4 key/value heads"), "\($0)")
        }
        XCTAssertThrowsError(try LlamaModel(config: LlamaConfig(family: .llama, nLayer: 1, nHead: 4, dModel: 12, nCtx: 4, vocabSize: 5), seed: 0)) {
            XCTAssertTrue("\($0)".contains("head width 3 is odd"), "\($0)")
        }
        XCTAssertNoThrow(try LlamaModel(config: LlamaConfig(family: .llama, nLayer: 1, nHead: 4, dModel: 12, nCtx: 4, vocabSize: 5, positions: .none), seed: 0))
    }
}
