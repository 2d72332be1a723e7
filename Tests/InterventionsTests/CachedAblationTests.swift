import XCTest
import RuleLensModel
import RuleLensNumerics
@testable import RuleLensInterventions

/// Ablations decode with the key/value cache: the hooks fire on the new positions of each cached step (absolute
/// position from `HookSet.firstPosition`), and the generated tokens equal the uncached decoding's (which re-runs the
/// whole sequence with the hooks) token for token — GPT-2 and the Llama/Qwen2 family, every method and position mode.
final class CachedAblationTests: XCTestCase {
    /// Weights of unit-ish scale (not 0.02), so greedy choices are far from ties.
    func scrambled<M: LanguageModel>(_ model: M, seed: UInt64) -> M {
        var rng = SeededRNG(seed: seed, stream: "scramble")
        let p = model.parameterStorage
        for i in 0..<p.count { p.ptr[i] = 0.3 * rng.normal() }
        return model
    }

    func items() -> [InterventionItem] {
        // Prompts of three lengths ([bos] + prompt), targets of several lengths, eos 2.
        [[1, 5, 6, 7, 8, 2], [1, 9, 4, 3, 2], [1, 4, 4, 5, 6, 7, 2], [1, 3, 3, 2], [1, 10, 11, 9, 2], [1, 8, 8, 8, 8, 8, 2]]
            .map { InterventionItem(tokens: $0, promptLength: 3) }
    }

    func check(_ model: any LanguageModel, layers: Int, heads: Int, minChanged: Int) throws {
        let decoder = try XCTUnwrap(model as? any CachedDecoder)
        XCTAssertTrue(decoder.supportsCachedDecoding)
        let items = items()
        let prompts = items.map(\.prompt)
        let g = try InterventionGeometry(model)
        let clean = Generate.greedy(model, prompts: prompts, maxNewTokens: 8, cached: false)
        var changed = 0, compared = 0
        for method in AblationMethod.allCases {
            let donors = method == .resample ? resampleDonors(items: items, referenceLengths: items.map(\.inputLength), sameSet: true, seed: 1, stream: "t").donors : nil
            for cell in [AblationCell(layer: layers - 1, component: .attn), AblationCell(layer: 0, component: .mlp),
                         AblationCell(layer: 0, component: .head, head: heads - 1)] {
                let reference = method == .zero ? nil : SiteReference.record(model, items: items, cell: cell, geometry: g, batchSize: 4)
                for positions in [AblationPositions.all, .index(-1), .index(1)] {
                    var outputs: [[[Int32]]] = []
                    for cached in [true, false] {
                        let hooks = HookSet(), context = RowContext()
                        registerAblation(hooks, cell: cell, method: method, positions: positions, items: items, reference: reference,
                                         donors: donors, context: context, geometry: g)
                        XCTAssertTrue(hooks.touchesOnly(decoder.decodeHookSites, sites: model.hookSites))
                        // Where the callbacks ran: the cached path fires them on single new positions past the prompt.
                        var steps: [(first: Int, length: Int)] = []
                        hooks.observe([cell.site]) { [unowned hooks] _, _, shape in steps.append((hooks.firstPosition, shape[1])) }
                        outputs.append(Generate.greedy(model, prompts: prompts, maxNewTokens: 8, batchSize: 4, hooks: hooks,
                                                       willRun: { context.rows = $0 }, cached: cached))
                        if cached {
                            XCTAssertTrue(steps.contains { $0.first >= 3 && $0.length == 1 }, "no cached step reached the hooks")
                        } else {
                            XCTAssertTrue(steps.allSatisfy { $0.first == 0 })
                        }
                    }
                    XCTAssertEqual(outputs[0], outputs[1], "\(model.architecture) \(method) \(cell.name) \(positions)")
                    compared += 1
                    if outputs[1] != clean { changed += 1 }
                }
            }
        }
        // The ablations matter: most change what the model generates, so ignoring a hook in either path would show.
        XCTAssertGreaterThanOrEqual(changed, minChanged, "\(changed) of \(compared) ablations changed the generation")
    }

    func testGPT2CachedAblationsEqualUncached() throws {
        let gpt = scrambled(try GPT(config: GPTConfig(nLayer: 2, nHead: 2, dModel: 16, dMLP: 32, nCtx: 24, vocabSize: 12), seed: 3), seed: 3)
        try check(gpt, layers: 2, heads: 2, minChanged: 14)
    }

    func testQwen2CachedAblationsEqualUncached() throws {
        let config = LlamaConfig(family: .qwen2, nLayer: 2, nHead: 4, nKVHead: 2, dModel: 16, dHead: 6, dMLP: 24, nCtx: 24, vocabSize: 12)
        let llama = scrambled(try LlamaModel(config: config, seed: 5), seed: 5)
        try check(llama, layers: 2, heads: 4, minChanged: 2)
    }

    func testHooksOnOtherSitesDecodeUncached() throws {
        // A hook on a site the cached step does not fire (the attention pattern) keeps the whole-sequence decoding.
        let gpt = try GPT(config: GPTConfig(nLayer: 1, nHead: 2, dModel: 8, nCtx: 16, vocabSize: 12), seed: 1)
        let hooks = HookSet()
        var seen: [Int] = []
        hooks.observe(["blocks.0.attn.hook_pattern"]) { _, _, shape in seen.append(shape[2]) }
        XCTAssertFalse(hooks.touchesOnly(gpt.decodeHookSites, sites: gpt.hookSites))
        _ = Generate.greedy(gpt, prompts: [[1, 5, 6]], maxNewTokens: 3, eos: 99, hooks: hooks)
        XCTAssertEqual(seen, [3, 4, 5])        // every step re-ran the whole sequence
    }
}
