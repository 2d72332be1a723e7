import Foundation
import XCTest
import RuleLensNumerics
@testable import RuleLensModel

/// Cached decoding (`KVCache`, `GPT.decode`) against the uncached forward over the whole sequence.
final class CachedDecodingTests: XCTestCase {
    override func setUp() { Parallel.configure(threads: 2) }

    /// A random GPT-2 with scaled-up embeddings: logits are decisive (no near-ties for greedy to break differently on
    /// rounding), and the large position embedding makes each step's token depend on the position (a random model with
    /// tied embeddings otherwise just repeats its last token), so rows emit a given token at different steps.
    private func model(seed: UInt64 = 3, tiedHead: Bool = true) throws -> GPT {
        let m = try GPT(config: GPTConfig(nLayer: 2, nHead: 4, dModel: 32, nCtx: 48, vocabSize: 23, tiedHead: tiedHead), seed: seed)
        for i in 0..<(23 * 32) { m.params.wte[i] *= 4 }
        for i in 0..<(48 * 32) { m.params.wpe[i] *= 25 }
        return m
    }

    func testDecodeLogitsMatchTheFullForwardAtEveryPosition() throws {
        try checkDecodeLogits(try model())
    }

    /// An untied head (`lm_head.weight`, as HF GPT-2 folders may have): decode must read it, not wte.
    func testDecodeUsesAnUntiedHead() throws {
        let m = try model(tiedHead: false)
        for i in 0..<(23 * 32) { m.params.head[i] = m.params.wte[(i * 7) % (23 * 32)] * 0.5 + 0.1 }   // unlike wte
        try checkDecodeLogits(m)
    }

    private func checkDecodeLogits(_ m: GPT) throws {
        var rng = SeededRNG(seed: 5)
        let B = 3, T = 20, prompt = 7, V = m.config.vocabSize
        let tokens = (0..<(B * T)).map { _ in Int32(rng.int(below: V)) }
        let full = Array(UnsafeBufferPointer(start: m.forward(tokens: tokens, batch: B, seqLen: T), count: B * T * V))
        // Prompt in one call, then one position per call; each call's logits are those of its last position.
        let cache = KVCache(model: m, batch: B, capacity: T)
        var worst: Float = 0
        for (start, length) in [(0, prompt)] + (prompt..<T).map({ ($0, 1) }) {
            let chunk = (0..<B).flatMap { b in tokens[(b * T + start)..<(b * T + start + length)] }
            let logits = m.decode(tokens: chunk, batch: B, seqLen: length, cache: cache)
            XCTAssertEqual(cache.length, start + length)
            for b in 0..<B {
                let t = start + length - 1
                for v in 0..<V {
                    let reference = full[(b * T + t) * V + v]
                    worst = max(worst, abs(logits[b * V + v] - reference) / max(1, abs(reference)))
                }
            }
        }
        XCTAssertLessThan(worst, 1e-5, "cached logits agree with the full forward to rounding")
    }

    func testGreedyCachedEqualsUncachedWithRowsLeavingAsTheyFinish() throws {
        let m = try model()
        var rng = SeededRNG(seed: 8)
        // Prompts of three lengths (several per length, so groups have several rows).
        let prompts: [[Int32]] = (0..<11).map { i in [1] + (0..<(3 + i % 3)).map { _ in Int32(3 + rng.int(below: 20)) } }
        // An end token that rows emit at many different steps (or never): of the tokens a run without one produces,
        // the one whose first occurrences are spread over the most distinct steps.
        let free = Generate.greedy(m, prompts: prompts, maxNewTokens: 30, eos: -1, cached: false)
        let candidates = Set(free.flatMap { $0 })
        func finishSteps(_ t: Int32) -> Int { Set(free.map { $0.firstIndex(of: t) ?? 30 }).count }
        let eos = candidates.sorted().max { finishSteps($0) < finishSteps($1) }!
        for batchSize in [64, 2] {
            let uncached = Generate.greedy(m, prompts: prompts, maxNewTokens: 30, eos: eos, batchSize: batchSize, cached: false)
            let cached = Generate.greedy(m, prompts: prompts, maxNewTokens: 30, eos: eos, batchSize: batchSize, cached: true)
            XCTAssertEqual(cached, uncached, "batch size \(batchSize)")
            let lengths = Set(cached.map(\.count))
            XCTAssertGreaterThan(lengths.count, 2, "rows finished at different steps (\(lengths.sorted()))")
        }
        // Up to the context: a prompt of 40 with 30 new tokens stops when the sequence fills nCtx = 48, both ways.
        let long: [[Int32]] = [[1] + (0..<39).map { _ in Int32(3 + rng.int(below: 20)) }]
        let a = Generate.greedy(m, prompts: long, maxNewTokens: 30, eos: -1, cached: false)
        let b = Generate.greedy(m, prompts: long, maxNewTokens: 30, eos: -1, cached: true)
        XCTAssertEqual(a, b)
        XCTAssertEqual(a[0].count, 48 - 40 + 1)
    }

    // MARK: the Llama/Qwen2 family

    /// Qwen2-like (GQA 4:2, q/k/v biases, tied) or Llama-like (untied, biases everywhere, head width ≠ d/H), rotary or
    /// no positions, with large random parameters so logits are decisive and position-dependent.
    private func llama(_ family: LlamaConfig.Family, positions: LlamaConfig.Positions = .rope, seed: UInt64 = 4) throws -> LlamaModel {
        let config = family == .qwen2
            ? LlamaConfig(family: .qwen2, nLayer: 2, nHead: 4, nKVHead: 2, dModel: 16, dMLP: 24, nCtx: 40, vocabSize: 23,
                          ropeTheta: 50, positions: positions, tiedEmbeddings: true)
            : LlamaConfig(family: .llama, nLayer: 2, nHead: 4, nKVHead: 2, dModel: 12, dHead: 6, dMLP: 20, nCtx: 40, vocabSize: 23,
                          ropeTheta: 30, positions: positions, tiedEmbeddings: false, qkvBias: true, outputBias: true, mlpBias: true)
        let model = try LlamaModel(config: config, seed: seed)
        var rng = SeededRNG(seed: seed, stream: "perturb")
        for t in model.params.tensors {
            let p = model.params.storage.ptr + t.offset
            for i in 0..<t.count { p[i] += 0.5 * rng.normal() }
        }
        return model
    }

    func testLlamaFamilyDecodeLogitsMatchTheFullForwardAtEveryPosition() throws {
        for (family, positions) in [(LlamaConfig.Family.qwen2, LlamaConfig.Positions.rope), (.llama, .rope), (.llama, .none)] {
            let m = try llama(family, positions: positions)
            var rng = SeededRNG(seed: 6)
            let B = 3, T = 18, prompt = 5, V = m.config.vocabSize
            let tokens = (0..<(B * T)).map { _ in Int32(rng.int(below: V)) }
            let full = Array(UnsafeBufferPointer(start: m.forward(tokens: tokens, batch: B, seqLen: T, hooks: nil), count: B * T * V))
            let cache = m.makeKVCache(batch: B, capacity: T)
            var worst: Float = 0
            for (start, length) in [(0, prompt), (prompt, 3)] + ((prompt + 3)..<T).map({ ($0, 1) }) {
                let chunk = (0..<B).flatMap { b in tokens[(b * T + start)..<(b * T + start + length)] }
                let logits = m.decode(tokens: chunk, batch: B, seqLen: length, cache: cache)
                XCTAssertEqual(cache.length, start + length)
                for b in 0..<B {
                    let t = start + length - 1
                    for v in 0..<V {
                        let reference = full[(b * T + t) * V + v]
                        worst = max(worst, abs(logits[b * V + v] - reference) / max(1, abs(reference)))
                    }
                }
            }
            XCTAssertLessThan(worst, 1e-5, "\(family) \(positions): cached logits agree with the full forward to rounding")
        }
    }

    func testLlamaFamilyGreedyCachedEqualsUncached() throws {
        for family in [LlamaConfig.Family.qwen2, .llama] {
            let m = try llama(family)
            var rng = SeededRNG(seed: 9)
            let prompts: [[Int32]] = (0..<9).map { i in [1] + (0..<(2 + i % 3)).map { _ in Int32(3 + rng.int(below: 20)) } }
            let free = Generate.greedy(m, prompts: prompts, maxNewTokens: 20, eos: -1, cached: false)
            // An end token that some rows emit early and others late or never.
            let eos = Set(free.flatMap { $0 }).sorted().max { a, b in
                Set(free.map { $0.firstIndex(of: a) ?? 20 }).count < Set(free.map { $0.firstIndex(of: b) ?? 20 }).count
            }!
            for batchSize in [64, 2] {
                let uncached = Generate.greedy(m, prompts: prompts, maxNewTokens: 20, eos: eos, batchSize: batchSize, cached: false)
                let cached = Generate.greedy(m, prompts: prompts, maxNewTokens: 20, eos: eos, batchSize: batchSize, cached: true)
                XCTAssertEqual(cached, uncached, "\(family), batch size \(batchSize)")
            }
        }
    }
}
