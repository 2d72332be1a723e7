import Foundation
import XCTest
import RuleLensNumerics
@testable import RuleLensModel

final class HookTests: XCTestCase {
    override func setUp() { Parallel.configure(threads: 2) }

    let (B, T) = (3, 5)
    let tokens: [Int32] = [1, 4, 2, 6, 3, 0, 5, 5, 2, 1, 6, 6, 1, 0, 2]
    let otherTokens: [Int32] = [2, 2, 3, 1, 0, 4, 4, 6, 1, 5, 3, 0, 1, 2, 6]

    private func logits(_ model: GPT, _ tokens: [Int32], _ hooks: HookSet? = nil) -> [Float] {
        let p = model.forward(tokens: tokens, batch: B, seqLen: T, hooks: hooks)
        return Array(UnsafeBufferPointer(start: p, count: B * T * model.config.vocabSize))
    }

    func testEverySiteFiresInOrderWithItsShapeAndObservingChangesNothing() throws {
        let model = try tinyModel()
        let baseline = logits(model, tokens)
        let hooks = HookSet()
        var seen: [(String, [Int])] = []
        hooks.observe(["*"]) { name, _, shape in seen.append((name, shape)) }
        XCTAssertEqual(logits(model, tokens, hooks), baseline, "observing every site must not change a bit")
        let expected = HookSites.names(for: model.config)
        XCTAssertEqual(seen.map { $0.0 }, expected)
        XCTAssertEqual(expected.count, 2 + 15 * model.config.nLayer + 2)
        for (name, shape) in seen { XCTAssertEqual(shape, HookSites.shape(of: name, config: model.config, batch: B, seqLen: T), name) }
        XCTAssertEqual(HookSites.shape(of: "blocks.1.attn.hook_pattern", config: model.config, batch: B, seqLen: T), [B, 2, T, T])
        XCTAssertEqual(HookSites.dims(of: "blocks.0.attn.hook_z"), ["batch", "pos", "head", "d_head"])
        // An empty hook set is the fast path.
        XCTAssertEqual(logits(model, tokens, HookSet()), baseline)
    }

    func testResidualIdentitiesAreExact() throws {
        let model = try tinyModel()
        let hooks = HookSet()
        let cache = hooks.cache(["hook_embed", "hook_pos_embed", "blocks.*.hook_resid_*", "blocks.*.hook_attn_out", "blocks.*.hook_mlp_out"])
        _ = logits(model, tokens, hooks)
        func v(_ name: String) -> [Float] { cache[name]!.values }
        XCTAssertEqual(zip(v("hook_embed"), v("hook_pos_embed")).map { $0 + $1 }, v("blocks.0.hook_resid_pre"))
        for l in 0..<model.config.nLayer {
            let p = "blocks.\(l)."
            XCTAssertEqual(zip(v(p + "hook_resid_pre"), v(p + "hook_attn_out")).map { $0 + $1 }, v(p + "hook_resid_mid"))
            XCTAssertEqual(zip(v(p + "hook_resid_mid"), v(p + "hook_mlp_out")).map { $0 + $1 }, v(p + "hook_resid_post"))
            if l > 0 { XCTAssertEqual(v("blocks.\(l - 1).hook_resid_post"), v(p + "hook_resid_pre")) }
        }
    }

    func testNormalizedIsTakenBeforeTheAffineParameters() throws {
        let model = try tinyModel()
        let hooks = HookSet()
        let cache = hooks.cache(["blocks.1.hook_resid_mid", "blocks.1.ln2.hook_normalized"])
        _ = logits(model, tokens, hooks)
        let x = cache["blocks.1.hook_resid_mid"]!.values, n = cache["blocks.1.ln2.hook_normalized"]!.values
        let d = model.config.dModel
        for row in 0..<(B * T) {
            let xs = x[(row * d)..<((row + 1) * d)].map(Double.init)
            let mean = xs.reduce(0, +) / Double(d)
            let variance = xs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(d)
            for i in 0..<d {
                XCTAssertEqual(Double(n[row * d + i]), (xs[i] - mean) / (variance + 1e-5).squareRoot(), accuracy: 1e-5)
            }
        }
    }

    func testAttentionSitesAreConsistent() throws {
        let model = try tinyModel()
        let hooks = HookSet()
        let cache = hooks.cache(["blocks.0.attn.*"])
        _ = logits(model, tokens, hooks)
        XCTAssertEqual(cache.names, ["blocks.0.attn.hook_q", "blocks.0.attn.hook_k", "blocks.0.attn.hook_v", "blocks.0.attn.hook_attn_scores",
                                     "blocks.0.attn.hook_pattern", "blocks.0.attn.hook_z"])
        let H = model.config.nHead, dh = model.config.dHead, d = model.config.dModel
        let q = cache["blocks.0.attn.hook_q"]!.values, k = cache["blocks.0.attn.hook_k"]!.values, v = cache["blocks.0.attn.hook_v"]!.values
        let scores = cache["blocks.0.attn.hook_attn_scores"]!.values, pattern = cache["blocks.0.attn.hook_pattern"]!.values
        let z = cache["blocks.0.attn.hook_z"]!.values
        for b in 0..<B { for h in 0..<H { for t in 0..<T {
            let row = ((b * H + h) * T + t) * T
            var expScores = [Double](repeating: 0, count: T)
            for s in 0..<T {
                if s > t {
                    XCTAssertEqual(scores[row + s], -Float.infinity); XCTAssertEqual(pattern[row + s], 0)
                    continue
                }
                var dot = 0.0
                for i in 0..<dh { dot += Double(q[(b * T + t) * d + h * dh + i]) * Double(k[(b * T + s) * d + h * dh + i]) }
                XCTAssertEqual(Double(scores[row + s]), dot / Double(dh).squareRoot(), accuracy: 1e-5)
                expScores[s] = exp(Double(scores[row + s]))
            }
            let total = expScores.reduce(0, +)
            for s in 0...t { XCTAssertEqual(Double(pattern[row + s]), expScores[s] / total, accuracy: 1e-6) }
            for i in 0..<dh {
                var expected = 0.0
                for s in 0...t { expected += Double(pattern[row + s]) * Double(v[(b * T + s) * d + h * dh + i]) }
                XCTAssertEqual(Double(z[(b * T + t) * d + h * dh + i]), expected, accuracy: 1e-5)
            }
        } } }
    }

    func testZeroAttnOutMakesResidMidEqualResidPreAndChangesLogits() throws {
        let model = try tinyModel()
        let baseline = logits(model, tokens)
        let hooks = HookSet()
        try hooks.zero(["blocks.0.hook_attn_out"])
        let cache = hooks.cache(["blocks.0.hook_attn_out", "blocks.0.hook_resid_pre", "blocks.0.hook_resid_mid"])
        let edited = logits(model, tokens, hooks)
        XCTAssertTrue(cache["blocks.0.hook_attn_out"]!.values.allSatisfy { $0 == 0 })
        XCTAssertEqual(cache["blocks.0.hook_resid_mid"]!.values, cache["blocks.0.hook_resid_pre"]!.values)
        XCTAssertNotEqual(edited, baseline)
        // Without the hooks the model is unchanged.
        XCTAssertEqual(logits(model, tokens), baseline)
    }

    func testAddAtLastPositionChangesOnlyThatPosition() throws {
        let model = try tinyModel()
        let V = model.config.vocabSize, d = model.config.dModel
        let before = HookSet(), after = HookSet()
        let clean = before.cache(["blocks.1.hook_resid_mid"])
        let baseline = logits(model, tokens, before)
        let vector = randomFloats(d, seed: 5)
        try after.add(["blocks.1.hook_resid_mid"], vector: vector, scale: 2, selection: HookSelection(positions: [-1]))
        let edited = after.cache(["blocks.1.hook_resid_mid"])
        let out = logits(model, tokens, after)
        let x0 = clean["blocks.1.hook_resid_mid"]!.values, x1 = edited["blocks.1.hook_resid_mid"]!.values
        for b in 0..<B { for t in 0..<T { for i in 0..<d {
            let idx = (b * T + t) * d + i
            if t == T - 1 { XCTAssertEqual(x1[idx], x0[idx] + 2 * vector[i]) } else { XCTAssertEqual(x1[idx], x0[idx]) }
        } }
            for t in 0..<T {
                let row = Array(out[((b * T + t) * V)..<((b * T + t + 1) * V)]), base = Array(baseline[((b * T + t) * V)..<((b * T + t + 1) * V)])
                if t == T - 1 { XCTAssertNotEqual(row, base) } else { XCTAssertEqual(row, base, "causal: position \(t) unaffected") }
            }
        }
    }

    func testReplaceMeanResampleAndHeadSelection() throws {
        let model = try tinyModel()
        let site = "blocks.0.mlp.hook_post", dMLP = model.config.dMLP
        let base = HookSet()
        let clean = base.cache([site, "blocks.0.attn.hook_z"])
        _ = logits(model, tokens, base)
        let x = clean[site]!.values, per = T * dMLP

        let replaced = HookSet()
        let vector = randomFloats(dMLP, seed: 8)
        try replaced.replace([site], with: vector)
        let r = replaced.cache([site])
        _ = logits(model, tokens, replaced)
        for row in 0..<(B * T) { XCTAssertEqual(Array(r[site]!.values[(row * dMLP)..<((row + 1) * dMLP)]), vector) }

        let meaned = HookSet()
        try meaned.mean([site])
        let m = meaned.cache([site])
        _ = logits(model, tokens, meaned)
        for i in 0..<per {
            let expected = (0..<B).map { Double(x[$0 * per + i]) }.reduce(0, +) / Double(B)
            for b in 0..<B { XCTAssertEqual(Double(m[site]!.values[b * per + i]), expected, accuracy: 1e-6) }
        }

        func resampled(seed: UInt64) throws -> [Float] {
            let hooks = HookSet()
            try hooks.resample([site], seed: seed)
            let c = hooks.cache([site])
            _ = logits(model, tokens, hooks)
            return c[site]!.values
        }
        let s = try resampled(seed: 42)
        XCTAssertEqual(s, try resampled(seed: 42), "same seed, same donors")
        for b in 0..<B {
            let mine = Array(s[(b * per)..<((b + 1) * per)])
            let donors = (0..<B).filter { Array(x[($0 * per)..<(($0 + 1) * per)]) == mine }
            XCTAssertFalse(donors.isEmpty, "example \(b) holds another example's values")
            XCTAssertFalse(donors == [b], "example \(b) was not resampled from itself")
        }

        let headAblated = HookSet()
        try headAblated.zero(["blocks.0.attn.hook_z"], selection: HookSelection(heads: [1]))
        let hz = headAblated.cache(["blocks.0.attn.hook_z"])
        _ = logits(model, tokens, headAblated)
        let z0 = clean["blocks.0.attn.hook_z"]!.values, z1 = hz["blocks.0.attn.hook_z"]!.values, dh = model.config.dHead
        for i in z0.indices {
            if (i / dh) % model.config.nHead == 1 { XCTAssertEqual(z1[i], 0) } else { XCTAssertEqual(z1[i], z0[i]) }
        }
        XCTAssertThrowsError(try HookSet().zero(["blocks.0.hook_resid_pre"], selection: HookSelection(heads: [0])))
    }

    func testPatchingTheWholeResidualReproducesTheSourceRun() throws {
        let model = try tinyModel()
        let source = HookSet()
        let cache = source.cache(["blocks.0.hook_resid_pre", "blocks.1.attn.hook_pattern"])
        let sourceLogits = logits(model, otherTokens, source)
        XCTAssertNotEqual(logits(model, tokens), sourceLogits)
        let patched = HookSet()
        try patched.patch(["blocks.0.hook_resid_pre"], from: cache)
        XCTAssertEqual(logits(model, tokens, patched), sourceLogits)
        // Patching the pattern at one query position only changes that position onwards (the pattern feeds z).
        let one = HookSet()
        try one.patch(["blocks.1.attn.hook_pattern"], from: cache, selection: HookSelection(positions: [2]))
        let seen = one.cache(["blocks.1.attn.hook_pattern"])
        _ = logits(model, tokens, one)
        let p = seen["blocks.1.attn.hook_pattern"]!.values, src = cache["blocks.1.attn.hook_pattern"]!.values
        for i in p.indices where (i / T) % T == 2 { XCTAssertEqual(p[i], src[i]) }
        XCTAssertThrowsError(try HookSet().patch(["blocks.0.hook_mlp_out"], from: cache)) { error in
            XCTAssertTrue("\(error)".contains("has no 'blocks.0.hook_mlp_out'"), "\(error)")
        }
    }

    func testEditsFlowDownstream() throws {
        let model = try tinyModel()
        let base = HookSet()
        let clean = base.cache(["blocks.0.attn.hook_pattern", "blocks.0.hook_resid_pre"])
        _ = logits(model, tokens, base)
        let hooks = HookSet()
        hooks.edit(["blocks.0.attn.hook_q"]) { _, values, shape in
            for i in 0..<shape.reduce(1, *) { values[i] *= 3 }
        }
        hooks.edit(["hook_pos_embed"]) { _, values, _ in values[0] += 1 }
        let edited = hooks.cache(["blocks.0.attn.hook_pattern", "blocks.0.hook_resid_pre"])
        _ = logits(model, tokens, hooks)
        XCTAssertNotEqual(edited["blocks.0.attn.hook_pattern"]!.values, clean["blocks.0.attn.hook_pattern"]!.values)
        XCTAssertEqual(edited["blocks.0.hook_resid_pre"]!.values[0], clean["blocks.0.hook_resid_pre"]!.values[0] + 1)
    }

    func testNamesPatternsAndUnknownNames() throws {
        let config = GPTConfig(nLayer: 3, nHead: 2, dModel: 8, nCtx: 8, vocabSize: 10)
        XCTAssertEqual(try HookSites.resolve(["blocks.*.hook_mlp_out"], config: config), (0..<3).map { "blocks.\($0).hook_mlp_out" })
        XCTAssertEqual(try HookSites.resolve(["blocks.1.attn.*"], config: config).count, 6)
        XCTAssertEqual(try HookSites.resolve(["*"], config: config), HookSites.names(for: config))
        XCTAssertEqual(try HookSites.resolve(["unembed.hook_out", "hook_embed", "hook_embed"], config: config), ["hook_embed", "unembed.hook_out"])
        XCTAssertThrowsError(try HookSites.resolve(["blocks.0.hook_resd_pre"], config: config)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("unknown hook site 'blocks.0.hook_resd_pre'"), text)
            XCTAssertTrue(text.contains("closest match: 'blocks.0.hook_resid_pre'"), text)
            XCTAssertTrue(text.contains("blocks.2.mlp.hook_post"), "lists the valid names: \(text)")
            XCTAssertTrue(text.contains("fix:"), text)
        }
        XCTAssertThrowsError(try HookSites.resolve(["blocks.7.*"], config: config))
        let hooks = HookSet()
        hooks.observe(["blocks.0.attn.hook_patern"]) { _, _, _ in }
        XCTAssertThrowsError(try hooks.validate(for: config))
        XCTAssertThrowsError(try HookSet().zero(["blocks.0.hook_nothing"]))
        XCTAssertEqual(HookSites.editDistance("kitten", "sitting"), 3)
    }

    func testRightPaddingNeverChangesEarlierPositions() throws {
        let model = try tinyModel()
        let V = model.config.vocabSize
        let short: [Int32] = [1, 4, 2]
        let a = Array(UnsafeBufferPointer(start: model.forward(tokens: short, batch: 1, seqLen: 3), count: 3 * V))
        let b = Array(UnsafeBufferPointer(start: model.forward(tokens: short + [0, 0, 0], batch: 1, seqLen: 6), count: 3 * V))
        for i in a.indices { XCTAssertEqual(a[i], b[i], accuracy: 1e-5) }
    }
}

final class ReadmeExampleTests: XCTestCase {
    /// The "Model and hooks" example of docs/hooks-and-store.md, verbatim apart from the token batch.
    func testReadmeExampleRuns() throws {
        let tokens = (0..<(4 * 32)).map { Int32($0 % 99) }
        let model = try GPT(config: GPTConfig(nLayer: 2, nHead: 4, dModel: 128, nCtx: 32, vocabSize: 99), seed: 0)
        let hooks = HookSet()
        let cache = hooks.cache(["blocks.*.hook_resid_post", "blocks.0.attn.hook_pattern"])   // observe (globs ok)
        try hooks.zero(["blocks.1.attn.hook_z"], selection: HookSelection(heads: [2]))          // ablate head 1.2
        hooks.edit(["blocks.0.hook_mlp_out"]) { _, values, shape in                            // any in-place edit
            for i in 0..<shape.reduce(1, *) { values[i] *= 0.5 }
        }
        try hooks.validate(for: model.config)          // typo → error with the closest site name
        let logits = model.forward(tokens: tokens, batch: 4, seqLen: 32, hooks: hooks)     // [4, 32, 99]
        let (shape, values) = cache["blocks.0.attn.hook_pattern"]!                          // [4, 4, 32, 32]
        XCTAssertEqual(shape, [4, 4, 32, 32]); XCTAssertEqual(values.count, 4 * 4 * 32 * 32)
        XCTAssertTrue(logits[0].isFinite)
        XCTAssertEqual(cache.names, ["blocks.0.attn.hook_pattern", "blocks.0.hook_resid_post", "blocks.1.hook_resid_post"])
    }

    func testCheckInputErrors() throws {
        let model = try GPT(config: GPTConfig(nLayer: 1, nHead: 1, dModel: 4, nCtx: 4, vocabSize: 5), seed: 0)
        XCTAssertNoThrow(try model.checkInput(tokens: [1, 2, 3, 4], batch: 1, seqLen: 4))
        XCTAssertThrowsError(try model.checkInput(tokens: [Int32](repeating: 1, count: 5), batch: 1, seqLen: 5)) {
            XCTAssertTrue("\($0)".contains("exceeds the model's context of 4"), "\($0)")
        }
        XCTAssertThrowsError(try model.checkInput(tokens: [1, 9], batch: 1, seqLen: 2)) { XCTAssertTrue("\($0)".contains("token id 9")) }
        XCTAssertThrowsError(try model.checkInput(tokens: [1, 2, 3], batch: 2, seqLen: 2))
    }
}

final class InferenceModeTests: XCTestCase {
    /// Inference-only passes reuse one block's buffers; logits and every hook value must be bit-for-bit unchanged.
    func testInferenceOnlyPassesMatchTrainingPassesBitForBit() throws {
        for layers in [1, 2, 3] {
            let model = try tinyModel(layers: layers)
            let tokens: [Int32] = [1, 4, 2, 6, 3, 0, 5, 5, 2, 1]
            func run() -> ([Float], ActivationCache) {
                let hooks = HookSet()
                let cache = hooks.cache(["*"])
                let p = model.forward(tokens: tokens, batch: 2, seqLen: 5, hooks: hooks)
                return (Array(UnsafeBufferPointer(start: p, count: 2 * 5 * model.config.vocabSize)), cache)
            }
            let (trainLogits, trainCache) = run()
            model.retainsActivationsForBackward = false
            let (inferLogits, inferCache) = run()
            let plain = model.forward(tokens: tokens, batch: 2, seqLen: 5)
            XCTAssertEqual(inferLogits, trainLogits, "\(layers) layers")
            XCTAssertEqual(Array(UnsafeBufferPointer(start: plain, count: inferLogits.count)), trainLogits)
            XCTAssertEqual(inferCache.names, trainCache.names)
            for name in trainCache.names { XCTAssertEqual(inferCache[name]!.values, trainCache[name]!.values, name) }
            // Loss still works on an inference pass.
            let loss = model.loss(targets: tokens, lossMask: [Float](repeating: 1, count: 10))
            XCTAssertTrue(loss.isFinite)
        }
    }
}
