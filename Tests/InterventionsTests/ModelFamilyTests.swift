import XCTest
import RuleLensModel
import RuleLensNumerics
@testable import RuleLensInterventions

/// A `LanguageModel` that forwards to a GPT but offers nothing else (not `LensReadable`), optionally hiding its
/// hook sites: what another family (e.g. a VAE decoder) looks like to the interventions before it offers a lens.
final class ForwardOnlyModel: LanguageModel {
    let inner: GPT
    let hidesSites: Bool
    init(_ inner: GPT, hidesSites: Bool = false) { self.inner = inner; self.hidesSites = hidesSites }
    var architecture: String { "forward-only" }
    var vocabSize: Int { inner.vocabSize }
    var contextLength: Int { inner.contextLength }
    var hookSites: [String] { hidesSites ? [] : inner.hookSites }
    func hookDims(_ site: String) -> [String] { inner.hookDims(site) }
    func hookShape(_ site: String, batch: Int, seqLen: Int) -> [Int] { inner.hookShape(site, batch: batch, seqLen: seqLen) }
    var retainsActivationsForBackward: Bool {
        get { inner.retainsActivationsForBackward }
        set { inner.retainsActivationsForBackward = newValue }
    }
    func checkInput(tokens: [Int32], batch: Int, seqLen: Int) throws { try inner.checkInput(tokens: tokens, batch: batch, seqLen: seqLen) }
    func forward(tokens: [Int32], batch: Int, seqLen: Int, hooks: HookSet?) -> UnsafeMutablePointer<Float> {
        inner.forward(tokens: tokens, batch: batch, seqLen: seqLen, hooks: hooks)
    }
    func loss(targets: [Int32], lossMask: [Float]) -> Float { inner.loss(targets: targets, lossMask: lossMask) }
    func backward() { inner.backward() }
    func zeroGrads() { inner.zeroGrads() }
    var parameterTensors: [ParameterTensor] { inner.parameterTensors }
    var parameterStorage: FloatBuffer { inner.parameterStorage }
    var gradientStorage: FloatBuffer { inner.gradientStorage }
}

/// The interventions run on any `LanguageModel`: ablation and patching need only the forward pass and the hook
/// sites; the lens needs `LensReadable`, and a model without it is a clear error. (Parity with TransformerLens on
/// the Llama/Qwen2 family: Tests/Python/test_interventions_family.py.)
final class ModelFamilyTests: XCTestCase {
    func items() -> [InterventionItem] {
        [[1, 5, 6, 7, 8, 2], [1, 9, 4, 3, 2], [1, 4, 4, 5, 6, 7, 2]].map { InterventionItem(tokens: $0, promptLength: 3) }
    }

    func testAblationAndPatchingThroughTheProtocolEqualTheGPT() throws {
        let gpt = try GPT(config: GPTConfig(nLayer: 2, nHead: 2, dModel: 16, dMLP: 32, nCtx: 16, vocabSize: 12), seed: 4)
        let wrapped = ForwardOnlyModel(gpt)
        var options = AblationOptions(cells: [AblationCell(layer: 1, component: .mlp), AblationCell(layer: 0, component: .head, head: 1)])
        options.method = .mean
        let direct = try Ablation.sweep(gpt, items: items(), options: options)
        let viaProtocol = try Ablation.sweep(wrapped, items: items(), options: options)
        for (a, b) in zip([direct.clean] + direct.runs, [viaProtocol.clean] + viaProtocol.runs) {
            XCTAssertEqual(a.metrics.loss, b.metrics.loss)
            XCTAssertEqual(a.metrics.correct, b.metrics.correct)
        }
        XCTAssertNotEqual(direct.runs[0].metrics.loss, direct.clean.metrics.loss)
        let pairs = [PatchPair(clean: [1, 5, 6], corrupt: [1, 9, 6], cleanAnswer: 7, corruptAnswer: 3)]
        let p1 = try Patching.sweep(gpt, pairs: pairs, sites: [.z, .residPre])
        let p2 = try Patching.sweep(wrapped, pairs: pairs, sites: [.z, .residPre])
        XCTAssertEqual(p1.matrices.map(\.logitDiff), p2.matrices.map(\.logitDiff))
        XCTAssertEqual(p2.matrices[0].rows * p2.matrices[0].cols, 2 * 2)
    }

    func testLensNeedsTheFinalNormAndUnembedding() throws {
        let gpt = try GPT(config: GPTConfig(nLayer: 1, nHead: 2, dModel: 8, nCtx: 16, vocabSize: 12), seed: 1)
        XCTAssertNoThrow(try Lens.run(gpt, items: items()))
        XCTAssertThrowsError(try Lens.run(ForwardOnlyModel(gpt), items: items())) { error in
            let e = error as? RuleLensError
            XCTAssertNotNil(e)
            XCTAssertTrue(e?.problem.contains("final norm and unembedding") ?? false, "\(error)")
            XCTAssertTrue(e?.problem.contains("forward-only") ?? false, "\(error)")
        }
    }

    func testAModelWithoutBlockSitesIsRefused() throws {
        let gpt = try GPT(config: GPTConfig(nLayer: 1, nHead: 2, dModel: 8, nCtx: 16, vocabSize: 12), seed: 1)
        let hidden = ForwardOnlyModel(gpt, hidesSites: true)
        XCTAssertThrowsError(try Ablation.sweep(hidden, items: items(), options: AblationOptions(cells: [AblationCell(layer: 0, component: .attn)]))) { error in
            XCTAssertTrue((error as? RuleLensError)?.problem.contains("hook_resid_pre") ?? false, "\(error)")
        }
        XCTAssertThrowsError(try Patching.sweep(hidden, pairs: [PatchPair(clean: [1, 5], corrupt: [1, 6], cleanAnswer: 3, corruptAnswer: 4)], sites: [.residPre]))
    }

    func testLlamaHeadsOfAnotherWidthAreAddressed() throws {
        // head_dim 12 with d_model 16 and 2 heads: z is 24 wide, not d_model.
        let llama = try LlamaModel(config: LlamaConfig(family: .qwen2, nLayer: 2, nHead: 2, nKVHead: 1, dModel: 16, dHead: 12, dMLP: 24,
                                                       nCtx: 16, vocabSize: 12), seed: 2)
        let g = try InterventionGeometry(llama)
        XCTAssertEqual([g.nLayer, g.nHead, g.dHead, g.dModel], [2, 2, 12, 16])
        let sweep = try Ablation.sweep(llama, items: items(), options: AblationOptions(cells: [AblationCell(layer: 1, component: .head, head: 1)]))
        XCTAssertNotEqual(sweep.runs[0].metrics.loss, sweep.clean.metrics.loss)
        let lens = try Lens.run(llama, items: items())
        XCTAssertFalse(lens.components.contains("pos_embed"))
        XCTAssertFalse(lens.components.contains("ln_final bias"))
        let total = lens.components.indices.filter { lens.isLayerTotal[$0] }
        for i in 0..<lens.count {
            let sum = total.reduce(0.0) { $0 + lens.attribution[$1 * lens.count + i] }
            XCTAssertEqual(sum, lens.logitDiff[i], accuracy: 1e-4)
        }
        XCTAssertThrowsError(try Ablation.sweep(llama, items: items(), options: AblationOptions(cells: [AblationCell(layer: 0, component: .head, head: 2)])))
    }
}
