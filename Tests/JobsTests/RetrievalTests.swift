import XCTest
import Foundation
import RuleLensJobs
import RuleLensAnalysis
import RuleLensInterventions
import RuleLensModel
import RuleLensNumerics
import RuleLensTasks

/// The retrieval test's measurements against closed forms and independent recounts.
final class RetrievalTests: XCTestCase {
    func syllogisms(_ n: Int) throws -> [Example] {
        var rng = SeededRNG(seed: 3)
        return try Syllogisms.generate(count: n, rng: &rng)
    }

    func model(seed: UInt64 = 1, zeroAttention: Bool = false) throws -> GPT {
        let model = try GPT(config: GPTConfig(nLayer: 2, nHead: 2, dModel: 16, dMLP: 32, nCtx: 96, vocabSize: CharTokenizer.standard.count),
                            seed: seed)
        if zeroAttention {
            // q = k = 0 everywhere: every visible key gets the same weight, so the mass on the sources of query q is
            // |sources| / (q + 1), the best source's rank is 1 and the entropy is log(q + 1).
            for l in 0..<2 { for part in ["weight", "bias"] {
                let name = "transformer.h.\(l).attn.c_attn.\(part)"
                model.params.pointer(name).update(repeating: 0, count: model.params.tensor(name)!.count)
            } }
        }
        return model
    }

    func testUniformAttentionGivesTheClosedForm() throws {
        let examples = try syllogisms(24)
        let items = try Retrieval.items(examples, tokenizer: .standard, nCtx: 96, source: "test")
        let measured = Retrieval.measure(model: try model(zeroAttention: true), items: items, vectors: nil, alpha: 0, site: .q, layer: 0,
                                         batchSize: 5)
        for (item, m) in zip(items, measured) {
            var mass = 0.0, entropy = 0.0, n = 0.0
            for (c, keys) in item.keys.enumerated() where !keys.isEmpty {
                let q = item.tokens.promptLength - 1 + c
                mass += Double(keys.count) / Double(q + 1); entropy += log(Double(q + 1)); n += 1
            }
            XCTAssertGreaterThan(n, 0)
            for idx in 0..<4 {
                XCTAssertEqual(m.mass[idx], mass / n, accuracy: 1e-5)
                XCTAssertEqual(m.entropy[idx], entropy / n, accuracy: 1e-4)
                XCTAssertEqual(m.rank[idx], 1)
            }
        }
    }

    /// A memory slot (trained rule prior or VAE latent) is one more key at the front of every attention row: with q = k = 0
    /// and a zero slot, every visible key and the slot share the weight, so the mass is |sources| / (q + 2) and the
    /// entropy log(q + 2).
    func testMemorySlotCountsAsOneMoreKey() throws {
        let examples = try syllogisms(12)
        let items = try Retrieval.items(examples, tokenizer: .standard, nCtx: 96, source: "test")
        let plain = try model(zeroAttention: true)
        let wired = try GPT(config: plain.config, seed: 0, wiring: GPTWiring(injections: [.memory]))
        wired.params.storage.ptr.update(from: plain.params.storage.ptr, count: plain.params.storage.count)
        let d = plain.config.dModel, L = plain.config.nLayer
        let measured = Retrieval.measure(model: wired, items: items, batchSize: 5,
                                         conditioning: { [Float](repeating: 0, count: L * $0.count * d) })
        for (item, m) in zip(items, measured) {
            var mass = 0.0, entropy = 0.0, n = 0.0
            for (c, keys) in item.keys.enumerated() where !keys.isEmpty {
                let q = item.tokens.promptLength - 1 + c
                mass += Double(keys.count) / Double(q + 2); entropy += log(Double(q + 2)); n += 1
            }
            for idx in 0..<4 {
                XCTAssertEqual(m.mass[idx], mass / n, accuracy: 1e-5)
                XCTAssertEqual(m.entropy[idx], entropy / n, accuracy: 1e-4)
                XCTAssertEqual(m.rank[idx], 1)
            }
        }
    }

    /// A trained-prior checkpoint's conditions: with a zero table the prior equals no prior exactly; the random control
    /// has, per layer, exactly the norm of the example's own row; an unseen rule is refused.
    func testTrainedPriorConditions() throws {
        let examples = try syllogisms(24)
        let rules = Array(Set(examples.map { $0.rule! })).sorted()
        let base = try model(seed: 4)
        let prior = try RulePriorGPT(config: base.config, spec: RulePriorSpec(column: "rule", inject: .query, rules: rules), seed: 0)
        prior.gpt.params.storage.ptr.update(from: base.params.storage.ptr, count: base.params.storage.count)
        (prior.gpt.params.storage.ptr + prior.table.offset).update(repeating: 0, count: prior.table.count)
        var options = RetrievalOptions(); options.bootstrap = 20
        let values = examples.map { $0.rule! }
        let report = try RulePriorRetrieval.run(model: prior, tokenizer: .standard, examples: examples, values: values, source: "test", options: options)
        XCTAssertEqual(report.conditions.map(\.label), ["none", "prior (query)", "wrong-prior (query)", "random (query)",
                                                        "prior moved to key", "prior moved to value", "prior moved to memory"])
        XCTAssertEqual(report.meanMass[1], report.meanMass[0], "a zero query prior is no prior")
        XCTAssertEqual(report.overall[1].exact, report.overall[0].exact)
        // Random control: per layer the row's norm (a non-zero table this time).
        let width = prior.spec.width(prior.config), d = prior.config.dModel
        let rows = (0..<rules.count).map { r in (0..<width).map { Float(sin(Double(r * width + $0))) } }
        for (r, row) in rows.enumerated() { prior.row(r).update(from: row, count: width) }
        let random = RulePriorRetrieval.randomControl(prior, seed: 0)
        for (r, row) in rows.enumerated() {
            for l in 0..<(width / d) {
                func norm(_ v: ArraySlice<Float>) -> Double { v.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot() }
                XCTAssertEqual(norm(random[r][(l * d)..<((l + 1) * d)]), norm(row[(l * d)..<((l + 1) * d)]), accuracy: 1e-4)
            }
            XCTAssertNotEqual(random[r], row)
        }
        var unseen = values; unseen[3] = "Nonsense XYZ-9"
        XCTAssertThrowsError(try RulePriorRetrieval.run(model: prior, tokenizer: .standard, examples: examples, values: unseen, source: "test",
                                                        options: options))
    }

    /// The on-the-fly metrics against a recount from cached patterns and logits (a different code path).
    func testMetricsMatchARecountFromCachedPatterns() throws {
        let examples = try syllogisms(12)
        let model = try model(seed: 7)
        for i in 0..<model.params.storage.count { model.params.storage[i] *= 6 }   // peaked attention, varied ranks
        let items = try Retrieval.items(examples, tokenizer: .standard, nCtx: 96, source: "test")
        let measured = Retrieval.measure(model: model, items: items, vectors: nil, alpha: 0, site: .q, layer: 0, batchSize: 4)
        let H = 2, V = model.config.vocabSize
        for (i, item) in items.enumerated() {
            let hooks = HookSet()
            let cache = hooks.cache(["blocks.*.attn.hook_pattern"])
            let T = item.tokens.inputLength
            let logits = model.forward(tokens: Array(item.tokens.tokens.dropLast()), batch: 1, seqLen: T, hooks: hooks)
            var right = 0
            for p in (item.tokens.promptLength - 1)..<T {
                let row = Array(UnsafeBufferPointer(start: logits + p * V, count: V))
                if Int32(row.indices.max { row[$0] < row[$1] }!) == item.tokens.tokens[p + 1] { right += 1 }
            }
            XCTAssertEqual(measured[i].tokenAccuracy, Double(right) / Double(T - item.tokens.promptLength + 1), accuracy: 1e-12)
            for l in 0..<2 {
                let pattern = cache["blocks.\(l).attn.hook_pattern"]!.values
                for h in 0..<H {
                    var mass = 0.0, rank = 0.0, n = 0.0
                    for (c, keys) in item.keys.enumerated() where !keys.isEmpty {
                        let q = item.tokens.promptLength - 1 + c
                        let row = (0...q).map { Double(pattern[(h * T + q) * T + $0]) }
                        let best = keys.map { row[$0] }.max()!
                        mass += keys.map { row[$0] }.reduce(0, +); rank += Double(1 + row.filter { $0 > best }.count); n += 1
                    }
                    XCTAssertEqual(measured[i].mass[l * H + h], mass / n, accuracy: 1e-6)
                    XCTAssertEqual(measured[i].rank[l * H + h], rank / n, accuracy: 1e-12)
                }
            }
        }
    }

    func testAlphaZeroIsBitwiseNoPriorAndRandomControlHasThePriorsNorm() throws {
        let examples = try syllogisms(48)
        let model = try model(seed: 2)
        let items = try Retrieval.items(examples, tokenizer: .standard, nCtx: 96, source: "test")
        let labels = Labels(strings: examples.map { $0.rule! })
        let priors = Retrieval.priors(model: model, items: items, labels: labels, site: .q, layer: 1)
        XCTAssertEqual(priors.count, labels.classCount)
        let vectors = labels.ids.map { priors[$0] }
        let none = Retrieval.measure(model: model, items: items, vectors: nil, alpha: 0, site: .q, layer: 1)
        let zero = Retrieval.measure(model: model, items: items, vectors: vectors, alpha: 0, site: .q, layer: 1)
        for (a, b) in zip(none, zero) {
            XCTAssertEqual(a.mass, b.mass); XCTAssertEqual(a.rank, b.rank); XCTAssertEqual(a.exact, b.exact)
        }
        let shifted = Retrieval.measure(model: model, items: items, vectors: vectors, alpha: 4, site: .q, layer: 1)
        XCTAssertNotEqual(shifted.map(\.mass), none.map(\.mass), "a non-zero prior changes the attention")
        let random = Retrieval.randomLike(priors, seed: 5)
        for (p, r) in zip(priors, random) {
            let pn = p.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot(), rn = r.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
            XCTAssertEqual(rn, pn, accuracy: 1e-5 * pn)
            XCTAssertNotEqual(r, p)
        }
        // The priors are mean differences: weighted by class size they sum to zero.
        var counts = [Double](repeating: 0, count: labels.classCount)
        for (i, item) in items.enumerated() { counts[labels.ids[i]] += Double(item.tokens.inputLength) }
        for c in 0..<16 {
            let s = priors.indices.reduce(0.0) { $0 + counts[$1] * Double(priors[$1][c]) }
            XCTAssertEqual(s, 0, accuracy: 1e-3)
        }
    }

    func testJobReportsEveryConditionAndRefusesBadInput() throws {
        let examples = try syllogisms(48)
        let model = try model(seed: 4)
        var options = RetrievalOptions()
        options.layers = [1]; options.alphas = [1]; options.sites = [.q, .k]; options.bootstrap = 50
        let report = try RetrievalJob.run(model: model, tokenizer: .standard, examples: examples, labels: Labels(strings: examples.map { $0.rule! }),
                                          source: "test", options: options)
        XCTAssertEqual(report.conditions.count, 1 + 2 * 3)
        XCTAssertEqual(report.overall.count, report.conditions.count)
        XCTAssertEqual(report.perRule.count, Set(examples.map { $0.rule! }).count)
        for s in report.overall { XCTAssertLessThanOrEqual(s.mass.lo, s.mass.mean); XCTAssertGreaterThanOrEqual(s.mass.hi, s.mass.mean) }
        XCTAssertEqual(report.overall[0].massChange.mean, 0)
        options.alphas = [.nan]
        XCTAssertThrowsError(try RetrievalJob.run(model: model, tokenizer: .standard, examples: examples,
                                                  labels: Labels(strings: examples.map { $0.rule! }), source: "t", options: options))
        options.alphas = [1]
        XCTAssertThrowsError(try RetrievalJob.run(model: model, tokenizer: .standard, examples: examples,
                                                  labels: Labels(strings: examples.map { _ in "one" }), source: "t", options: options))
        var bare = examples
        for i in bare.indices { bare[i].sources = nil }
        XCTAssertThrowsError(try RetrievalJob.run(model: model, tokenizer: .standard, examples: bare,
                                                  labels: Labels(strings: examples.map { $0.rule! }), source: "t", options: options))
    }
}
