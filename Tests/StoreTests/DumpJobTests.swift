import Foundation
import XCTest
@testable import RuleLensJobs
import RuleLensModel
import RuleLensNumerics
import RuleLensStore
import RuleLensTasks

/// The dump against the model's own in-process hook cache, bit for bit, on a tiny random model.
final class DumpJobTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("rulelens-dump-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    static let config = GPTConfig(nLayer: 2, nHead: 2, dModel: 8, dMLP: 16, nCtx: 16, vocabSize: 99)

    static func examples() -> [Example] {
        (0..<11).map { i in
            let a = (i * 37) % 100, b = (i * 53) % 10
            return Example(id: 100 + i, prompt: "\(a)+\(b)=", target: "\(a + b)", rule: i % 2 == 0 ? "even" : "odd", ruleId: i % 2, a: a, b: b)
        }
    }

    func options(_ name: String, positions: String = "all", batch: Int = 4) -> DumpOptions {
        var o = DumpOptions(checkpoint: "(in memory)", examples: Self.examples(), sourceData: "(in memory)", hooks: ["*"],
                            out: dir.appendingPathComponent(name).path)
        o.positions = positions; o.batch = batch; o.progress = false
        return o
    }

    func testEverySiteEqualsTheInProcessCacheBitForBit() throws {
        let model = try GPT(config: Self.config, seed: 3)
        let opts = options("all.h5")
        let summary = try Jobs.dump(model: model, vocab: nil, opts)
        XCTAssertEqual(summary.examples, 11)
        let reader = try ActivationStoreReader(path: opts.out)
        XCTAssertEqual(reader.sites.map(\.name), HookSites.names(for: Self.config))
        let lengths = try reader.intColumn("length")
        let T = reader.sites[0].shape[1]
        XCTAssertEqual(T, lengths.max())
        XCTAssertEqual(try reader.intColumn("id"), (0..<11).map { 100 + $0 })
        XCTAssertEqual(try reader.stringColumn("rule").prefix(2), ["even", "odd"])

        // Recompute each batch exactly as the dump did (same composition, same padding) with the model's cache.
        let exs = Self.examples()
        var start = 0
        while start < exs.count {
            let end = min(exs.count, start + opts.batch)
            let seqs = exs[start..<end].map { [CharTokenizer.bos] + (try! CharTokenizer.standard.encode($0.prompt + $0.target)) + [CharTokenizer.eos] }
            let S = seqs.map(\.count).max()!
            var tokens = [Int32](repeating: 0, count: seqs.count * S)
            for (i, s) in seqs.enumerated() { for (p, t) in s.enumerated() { tokens[i * S + p] = t } }
            let hooks = HookSet()
            let cache = ActivationCache()
            hooks.observe(["*"]) { name, values, shape in cache.store(name, shape: shape, values: Array(UnsafeBufferPointer(start: values, count: shape.reduce(1, *)))) }
            _ = model.forward(tokens: tokens, batch: seqs.count, seqLen: S, hooks: hooks)
            for site in reader.sites {
                let (shape, stored) = try reader.read(site: site.name, examples: start..<end)
                let cached = cache[site.name]!
                let posAxes = site.dims.enumerated().filter { ["pos", "q_pos", "k_pos"].contains($0.element) }.map(\.offset)
                // Walk every stored element: inside the example it must equal the cache bit for bit, outside it is 0.
                let rank = shape.count
                var index = [Int](repeating: 0, count: rank)
                for flat in 0..<stored.count {
                    var rem = flat
                    for a in stride(from: rank - 1, through: 0, by: -1) { index[a] = rem % shape[a]; rem /= shape[a] }
                    let e = index[0], L = seqs[e].count
                    let inside = posAxes.allSatisfy { index[$0] < L }
                    if inside {
                        var src = 0
                        for a in 0..<rank { src = src * cached.shape[a] + index[a] }
                        XCTAssertEqual(stored[flat].bitPattern, cached.values[src].bitPattern, "\(site.name) at \(index)")
                    } else {
                        XCTAssertEqual(stored[flat], 0, "\(site.name) padding at \(index)")
                    }
                }
            }
            start = end
        }
        // Residual identities hold exactly in the file.
        for l in 0..<Self.config.nLayer {
            let pre = try reader.read(site: "blocks.\(l).hook_resid_pre").values
            let attn = try reader.read(site: "blocks.\(l).hook_attn_out").values
            let mid = try reader.read(site: "blocks.\(l).hook_resid_mid").values
            let mlp = try reader.read(site: "blocks.\(l).hook_mlp_out").values
            let post = try reader.read(site: "blocks.\(l).hook_resid_post").values
            for i in 0..<pre.count {
                XCTAssertEqual((pre[i] + attn[i]).bitPattern, mid[i].bitPattern)
                XCTAssertEqual((mid[i] + mlp[i]).bitPattern, post[i].bitPattern)
            }
        }
    }

    func testSinglePositionFilesEqualTheGatheredFullFile() throws {
        let model = try GPT(config: Self.config, seed: 5)
        let full = options("full.h5")
        _ = try Jobs.dump(model: model, vocab: nil, full)
        let fullReader = try ActivationStoreReader(path: full.out)
        for (mode, selector) in [("answer", PositionSelector.answer), ("last", .last), ("2", .index(2)), ("-2", .index(-2))] {
            let one = options("pos\(mode).h5", positions: mode)
            _ = try Jobs.dump(model: model, vocab: nil, one)
            let reader = try ActivationStoreReader(path: one.out)
            for site in ["blocks.1.hook_resid_post", "blocks.0.attn.hook_pattern", "blocks.1.attn.hook_q", "unembed.hook_out"] {
                let gathered = try fullReader.readPosition(site: site, selector)
                let stored = try reader.readPosition(site: site, nil)
                XCTAssertEqual(stored.cols, gathered.cols, site)
                XCTAssertEqual(stored.values.toArray().map(\.bitPattern), gathered.values.toArray().map(\.bitPattern), "\(site) \(mode)")
            }
        }
    }

    func testPredictionAndCorrectComeFromTheLogits() throws {
        let model = try GPT(config: Self.config, seed: 7)
        let opts = options("pred.h5")
        _ = try Jobs.dump(model: model, vocab: nil, opts)
        let reader = try ActivationStoreReader(path: opts.out)
        let (shape, logits) = try reader.read(site: "unembed.hook_out")
        let (T, V) = (shape[1], shape[2])
        let tokens = try reader.intColumn("tokens"), lengths = try reader.intColumn("length"), answers = try reader.intColumn("answer_pos")
        let predictions = try reader.stringColumn("prediction"), correct = try reader.intColumn("correct")
        for e in 0..<reader.count {
            var ok = true, text = "", stopped = false
            for p in answers[e]..<(lengths[e] - 1) {
                let row = (0..<V).map { logits[(e * T + p) * V + $0] }
                let best = row.indices.max { row[$0] < row[$1] || (row[$0] == row[$1] && $0 > $1) }!
                if best != tokens[e * T + p + 1] { ok = false }
                if !stopped { if best == 2 { stopped = true } else { text += CharTokenizer.standard.decode([Int32(best)]) } }
            }
            XCTAssertEqual(correct[e], ok ? 1 : 0)
            XCTAssertEqual(predictions[e], text)
        }
    }

    func testCorrectWhenTheModelPredictsTheTarget() throws {
        // A model that always predicts <eos>: the final LayerNorm outputs its bias, which is <eos>'s embedding.
        let model = try GPT(config: Self.config, seed: 9)
        let d = Self.config.dModel
        let wte = model.params.pointer("transformer.wte.weight")
        for i in 0..<d { wte[2 * d + i] = 1 }
        let lnfWeight = model.params.pointer("transformer.ln_f.weight"), lnfBias = model.params.pointer("transformer.ln_f.bias")
        for i in 0..<d { lnfWeight[i] = 0; lnfBias[i] = 1 }
        var opts = options("eos.h5")
        opts.examples = [Example(prompt: "1+2=", target: ""), Example(prompt: "1+2=", target: "3"), Example(prompt: "4=", target: "")]
        opts.hooks = ["hook_embed"]
        _ = try Jobs.dump(model: model, vocab: nil, opts)
        let reader = try ActivationStoreReader(path: opts.out)
        XCTAssertEqual(try reader.intColumn("correct"), [1, 0, 1])
        XCTAssertEqual(try reader.stringColumn("prediction"), ["", "", ""])
    }

    func testRefusalsHappenBeforeAnyOutput() throws {
        let model = try GPT(config: Self.config, seed: 1)
        var bad = options("bad.h5"); bad.hooks = ["blocks.0.hook_resid_prex"]
        XCTAssertThrowsError(try Jobs.dump(model: model, vocab: nil, bad)) { error in
            XCTAssertTrue((error as? RuleLensError)?.problem.contains("blocks.0.hook_resid_pre") ?? false, "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: bad.out))
        var tooFar = options("far.h5", positions: "9")
        tooFar.hooks = ["hook_embed"]
        XCTAssertThrowsError(try Jobs.dump(model: model, vocab: nil, tooFar))
        XCTAssertFalse(FileManager.default.fileExists(atPath: tooFar.out))
        let existing = options("exists.h5")
        try Data("mine".utf8).write(to: URL(fileURLWithPath: existing.out))
        XCTAssertThrowsError(try Jobs.dump(model: model, vocab: nil, existing))
        XCTAssertEqual(try String(contentsOfFile: existing.out, encoding: .utf8), "mine")
    }
}
