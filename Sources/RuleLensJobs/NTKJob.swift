import Foundation
import RuleLensAnalysis
import RuleLensModel
import RuleLensNumerics
import RuleLensReport
import RuleLensStore
import RuleLensTasks

/// Options of `rulelens probe ntk`: per-parameter-block gradient similarity within vs between rules.
public struct NTKOptions {
    /// Where the per-example progress goes (a disabled line prints nothing).
    public var progress = ProgressLine()
    /// Checkpoint folder (`rulelens train --out`).
    public var checkpoint: String
    /// Labelled examples (JSON Lines).
    public var data: String
    /// Example field holding the rule: rule, rule_id, a or b.
    public var label = "rule"
    /// At most this many examples per rule (a seeded draw), so rules weigh equally.
    public var maxPerRule = 32
    public var lossOn: LossOn = .target
    public var seed: UInt64 = 0
    public var out: String?
    public var plot: String?
    public var overwrite = false

    public init(checkpoint: String, data: String) { self.checkpoint = checkpoint; self.data = data }
}

extension ProbeJob {
    /// Loads the checkpoint and data, draws up to `maxPerRule` examples per rule and measures every block.
    public static func ntk(_ o: NTKOptions) throws -> ProbeReport {
        guard o.maxPerRule >= 1 else { throw RuleLensError("--max-per-rule \(o.maxPerRule) must be at least 1", fix: "pass e.g. --max-per-rule 32") }
        try refuseExistingOutputs(out: o.out, plot: o.plot, overwrite: o.overwrite)
        let isVAE = VAEConfig.isVAE(URL(fileURLWithPath: o.checkpoint))
        let vae = isVAE ? try VAECheckpoint.load(o.checkpoint) : nil
        // GPT-2 and the Llama/Qwen2 family (blocks from the tensor names); a VAE measures its encoder too.
        let model: (any LanguageModel)? = isVAE ? nil : try Jobs.loadModel(o.checkpoint)
        let examples = try JSONL.readExamples(path: o.data)
        let ruleOf: (Example) -> String? = {
            switch o.label {
            case "rule": return $0.rule
            case "rule_id": return $0.ruleId.map(String.init)
            case "a": return $0.a.map(String.init)
            case "b": return $0.b.map(String.init)
            default: return nil
            }
        }
        guard ["rule", "rule_id", "a", "b"].contains(o.label) else {
            throw RuleLensError("--label \(o.label) is not an example field with a rule", fix: "pass --label rule, rule_id, a or b")
        }
        if let missing = examples.firstIndex(where: { ruleOf($0) == nil }) {
            throw RuleLensError("example \(missing + 1) of \(o.data) has no \(o.label) field", fix: "use data generated with rule labels, or another --label")
        }
        // Balanced, seeded draw: up to maxPerRule examples of each rule, in file order within the draw.
        var byRule: [String: [Int]] = [:]
        for (i, e) in examples.enumerated() { byRule[ruleOf(e)!, default: []].append(i) }
        var rng = SeededRNG(seed: o.seed, stream: "ntk-examples")
        var chosen: [Int] = []
        for rule in byRule.keys.sorted() {
            var idx = byRule[rule]!
            rng.shuffle(&idx)
            chosen += idx.prefix(o.maxPerRule)
        }
        chosen.sort()
        let picked = chosen.map { examples[$0] }
        let labels = Labels(strings: picked.map { ruleOf($0)! })
        let counter = ProgressCounter(o.progress, label: "ntk:", total: picked.count)
        let onExample: (Int, Int) -> Void = { done, _ in counter.update(done) }
        let results: [GradientKernel.BlockSimilarity]
        if let vae {
            results = try vaeNTK(vae, examples: picked, rules: labels, source: o.data, progress: onExample)
        } else {
            let model = model!
            let tokenizer = try Jobs.tokenizer(checkpoint: o.checkpoint, vocabSize: model.vocabSize)
            let items = try Batching.tokenize(picked, tokenizer: tokenizer, nCtx: model.contextLength, source: o.data)
            let sequences = items.map { item -> GradientKernel.Sequence in
                let b = Batching.makeBatch([item], lossOn: o.lossOn, pad: tokenizer.pad)
                return GradientKernel.Sequence(inputs: b.inputs, targets: b.targets, lossMask: b.lossMask)
            }
            results = try GradientKernel.measure(model: model, sequences: sequences, rules: labels, progress: onExample)
        }

        let rows: [[String: Any]] = results.map {
            ["block": $0.block, "layer": $0.layer, "kind": $0.kind, "parameters": $0.parameters, "within": $0.within,
             "between": $0.between, "ratio": $0.ratio ?? NSNull(), "difference": $0.difference,
             "alignment": $0.alignment ?? NSNull()]
        }
        var report = ProbeReport(table: ntkTable(results), json: [
            "analysis": "ntk", "ratio_definition": "within / between when between > 0, else null (read difference)", "checkpoint": o.checkpoint,
            "model": model?.architecture ?? "rulelens-vae", "data": o.data, "label": o.label, "loss_on": o.lossOn.rawValue,
            "rules": labels.names, "examples_per_rule": labels.classSizes, "example_indices": chosen, "blocks": rows])
        if let out = o.out {
            try writeResultsHDF5(out, overwrite: o.overwrite) { h5 in
                try h5.writeStrings("ntk/blocks", results.map(\.block))
                try h5.writeDoubles("ntk/within", results.map(\.within), shape: [results.count])
                try h5.writeDoubles("ntk/between", results.map(\.between), shape: [results.count])
                try h5.writeDoubles("ntk/alignment", results.map { $0.alignment ?? .nan }, shape: [results.count])
                try h5.writeInts("ntk/example_indices", chosen)
                try h5.writeStrings("ntk/rules", labels.names)
            }
            report.written.append(out)
        }
        if let plot = o.plot {
            let colours = ["attn_qkv": "#e15759", "attn_out": "#f28e2b", "ffn_in": "#4e79a7", "ffn_out": "#59a14f"]
            let series = ["attn_qkv", "attn_out", "ffn_in", "ffn_out"].map { kind in
                // A VAE's plot shows its encoder (the stack study 2's NTK argument is about).
                LineChart.Series(name: kind, points: results.filter { $0.kind == kind && (!isVAE || $0.block.hasPrefix("encoder.")) }
                                    .map { (Double($0.layer), $0.difference) },
                                 color: colours[kind]!)
            }
            let svg = LineChart(title: "Gradient similarity within − between rules (\(o.label))", xLabel: "layer",
                                yLabel: "mean cosine within − between", series: series).render()
            try writeTextAtomically(svg, to: plot, overwrite: o.overwrite)
            report.written.append(plot)
        }
        return report
    }

    /// The NTK table; a block whose between-rule cosine is ≤ 0 shows "n/a" as its ratio, with a footnote saying why.
    static func ntkTable(_ results: [GradientKernel.BlockSimilarity]) -> String {
        var table = TextTable(["layer", "block", "params", "within", "between", "ratio", "within-between", "alignment"])
        for r in results {
            // A VAE's blocks: encoder layers as "enc L", the latent heads as "latent", decoder layers as numbers.
            let layer = r.block.hasPrefix("latent.") ? "latent" : (r.block.hasPrefix("encoder.") ? "enc \(r.layer)" : String(r.layer))
            table.add([layer, r.kind, String(r.parameters), fmt(r.within), fmt(r.between),
                       r.ratio.map { fmt($0, 3) } ?? "n/a", fmt(r.difference), r.alignment.map { fmt($0) } ?? "n/a"])
        }
        var text = table.render()
        if results.contains(where: { $0.ratio == nil }) {
            text += "\nratio n/a: the between-rule cosine is ≤ 0 (gradients of different rules orthogonal or opposed on average),"
                + " so within/between is not defined; read within-between"
        }
        return text
    }
}

extension ProbeJob {
    /// The VAE's gradient-kernel blocks: the encoder's four blocks per layer (`encoder.blocks.{l}.…`), the latent heads
    /// (`latent.heads`: μ and log σ² weights and biases) and the decoder's blocks. Each example's gradient is that of
    /// its own training objective at z = μ (rec + β·KL with free bits, plus γ·CE of the classifier when the model is
    /// supervised and the example carries its label), with the checkpoint's β, λ and γ.
    static func vaeNTK(_ vae: VAE, examples: [Example], rules: Labels, source: String,
                       progress: @escaping (Int, Int) -> Void) throws -> [GradientKernel.BlockSimilarity] {
        let c = vae.config
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("rulelens-ntk-\(getpid())-\(UInt32.random(in: 0..<UInt32.max)).jsonl")
        try OutputCommit.immediately { try JSONL.writeExamples(examples, to: tmp.path) }   // scratch, read back below
        defer { try? FileManager.default.removeItem(at: tmp) }
        var labelColumn = c.supervise
        if let column = labelColumn, (try? VAEItems.column(column, path: tmp.path)) == nil { labelColumn = nil }
        let items = try VAEItems(path: tmp.path, nCtx: c.nPositions, labelColumn: labelColumn, classNames: labelColumn == nil ? nil : c.classNames)
        var blocks = GradientKernel.blocks(for: c.encoderConfig, tensorPrefix: "encoder.", namePrefix: "encoder.")
        blocks.append(GradientKernel.Block(layer: 0, kind: "heads", tensors: ["latent.mu.weight", "latent.mu.bias", "latent.logvar.weight", "latent.logvar.bias"],
                                           prefix: "latent."))
        blocks += GradientKernel.blocks(for: c.decoderConfig)
        func span(_ name: String) -> (UnsafePointer<Float>, Int) {
            if let t = vae.encoder.grads.tensor(name) { return (UnsafePointer(vae.encoder.grads.storage.ptr + t.offset), t.count) }
            if let t = vae.decoder.grads.tensor(name) { return (UnsafePointer(vae.decoder.grads.storage.ptr + t.offset), t.count) }
            let t = vae.latentGrads.tensor(name)!
            return (UnsafePointer(vae.latentGrads.pointer(name)!), t.count)
        }
        let spans = blocks.map { $0.tensors.map(span) }
        return try GradientKernel.measure(blocks: blocks, spans: spans, count: items.count, rules: rules, progress: progress) { e in
            let batch = items.batch([e], decode: c.decode)
            vae.zeroGrads()
            vae.forward(batch, epsilon: nil)
            let terms = vae.loss(batch, beta: c.beta)
            guard terms.total.isFinite else {
                throw RuleLensError("example \(e + 1) of \(source) has a non-finite loss (\(terms.total))", fix: "check the checkpoint (it may have diverged)")
            }
            vae.backward()
        }
    }
}
