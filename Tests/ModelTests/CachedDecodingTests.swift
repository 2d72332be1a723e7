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
        XCTAssertLessThan(worstDecodeError(m, batch: 3, seqLen: 20, chunks: [7] + Array(repeating: 1, count: 13)), 1e-5,
                          "cached logits agree with the full forward to rounding")
    }

    /// Decodes random tokens [batch, seqLen] in chunks of the given lengths (the prompt first) and returns the worst
    /// relative difference between each call's logits and the full forward's at the same position.
    private func worstDecodeError(_ m: any CachedDecoder, batch B: Int, seqLen T: Int, chunks: [Int]) -> Float {
        precondition(chunks.reduce(0, +) == T)
        var rng = SeededRNG(seed: 5)
        let V = m.vocabSize
        let tokens = (0..<(B * T)).map { _ in Int32(rng.int(below: V)) }
        let full = Array(UnsafeBufferPointer(start: m.forward(tokens: tokens, batch: B, seqLen: T, hooks: nil), count: B * T * V))
        let cache = m.makeKVCache(batch: B, capacity: T)
        var worst: Float = 0, start = 0
        for length in chunks {
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
            start += length
        }
        return worst
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

    private func llama(_ family: LlamaConfig.Family, positions: LlamaConfig.Positions = .rope) throws -> LlamaModel {
        try tinyLlama(family, positions: positions, seed: 4, nCtx: 40, vocabSize: 23, scale: 0.5)
    }

    func testLlamaFamilyDecodeLogitsMatchTheFullForwardAtEveryPosition() throws {
        for (family, positions) in [(LlamaConfig.Family.qwen2, LlamaConfig.Positions.rope), (.llama, .rope), (.llama, .none)] {
            let worst = worstDecodeError(try llama(family, positions: positions), batch: 3, seqLen: 18,
                                         chunks: [5, 3] + Array(repeating: 1, count: 10))
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
