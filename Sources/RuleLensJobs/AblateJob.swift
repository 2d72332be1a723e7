import Foundation
import RuleLensInterventions
import RuleLensAnalysis
import RuleLensModel
import RuleLensNumerics
import RuleLensReport
import RuleLensTasks

/// Options of `rulelens ablate`.
public struct AblateOptions: Sendable {
    public var checkpoint: String
    public var data: DataSource
    public var part: DataPart = .test
    /// attn and/or mlp.
    public var components: [AblationCell.Component] = [.attn, .mlp]
    /// nil = every layer.
    public var layers: [Int]? = nil
    /// Also ablate each head (through hook_z).
    public var heads = false
    /// Whose blocks: "" (the model's own; a VAE's decoder) or "encoder." (a language VAE's encoder).
    public var stack = ""
    public var method: AblationMethod = .zero
    /// Data whose clean activations give the mean / resample values (default: the data itself).
    public var meanFrom: String? = nil
    public var positions: AblationPositions = .all
    public var label: String? = nil
    public var bootstrap = 1000
    public var seed: UInt64 = 0
    public var separabilityAt: String? = nil
    public var out: String? = nil
    public var plot: String? = nil
    /// Metric drawn by --plot (its change).
    public var plotMetric: AblationMetric = .accuracy
    public var force = false
    public var quiet = false
    public var batchSize = 64
    public init(checkpoint: String, data: DataSource) { self.checkpoint = checkpoint; self.data = data }

    /// `decoder` (the model's own blocks) → "", `encoder` (a language VAE's encoder) → "encoder.".
    public static func stackPrefix(_ name: String) throws -> String {
        switch name {
        case "decoder": return ""
        case "encoder": return "encoder."
        default: throw RuleLensError("stack \(name) is not decoder or encoder",
                                     fix: "use decoder (the model's blocks) or encoder (a language VAE's encoder)")
        }
    }

    /// `all`, `answer` (the last prompt position) or an integer K (K < 0 counts back from the prompt's end).
    public static func positions(_ text: String) throws -> AblationPositions {
        switch text {
        case "all": return .all
        case "answer": return .index(-1)
        default:
            guard let k = Int(text) else {
                throw RuleLensError("positions \(text) is not all, answer or an integer", fix: "use all, answer or e.g. 0")
            }
            return .index(k)
        }
    }
}

/// `rulelens ablate`: FFN-versus-attention ablations with intervals, per rule.
public enum AblateJob {
    /// Runs the sweep and writes `--out`/`--plot`; returns the table and the JSON.
    public static func run(_ o: AblateOptions) throws -> ProbeReport {
        try InterventionSupport.refuseExisting([o.out, o.plot], force: o.force)
        guard o.bootstrap >= 0 else { throw RuleLensError("--bootstrap \(o.bootstrap) is negative", fix: "pass 0 (no intervals) or e.g. 1000") }
        let loaded = try o.data.load(o.part)
        let (model, tokenizer) = try InterventionSupport.load(o.checkpoint)
        let c = try InterventionGeometry(model)
        let items = try InterventionSupport.items(loaded.examples, tokenizer: tokenizer, nCtx: c.contextLength, source: loaded.origin)
        var reference: [InterventionItem]? = nil
        var dumpedReference = false
        if let meanFrom = o.meanFrom {
            if o.method == .zero { throw RuleLensError("--mean-from was given with --method zero", fix: "drop --mean-from, or pass --method mean or resample") }
            if AblationReferenceDump.isHDF5(meanFrom) {
                dumpedReference = true        // read once the cells are known
            } else {
                let ref = try DataSource(file: meanFrom).load(.all)
                reference = try InterventionSupport.items(ref.examples, tokenizer: tokenizer, nCtx: c.contextLength, source: ref.origin)
            }
        }
        var labelValues: [String]? = nil, labels: Labels? = nil
        if let column = o.label {
            let values = try InterventionSupport.labels(loaded.examples, column: column, source: loaded.origin)
            labels = try InterventionSupport.checkedLabels(values, column: column)
            labelValues = values
        } else if o.separabilityAt != nil {
            throw RuleLensError("--separability-at needs --label", fix: "pass --label rule (the column whose separability is measured)")
        }
        if o.heads { try c.require("blocks.0.attn.hook_z", for: "--heads") }
        let stackLayers = o.stack.isEmpty ? c.nLayer : (0...).first { !c.sites.contains("\(o.stack)blocks.\($0).hook_resid_pre") }!
        guard stackLayers > 0 else {
            throw RuleLensError("this \(model.architecture) model has no \(o.stack)blocks.{layer} sites", fix: "--stack encoder needs a language VAE checkpoint (rulelens vae train)")
        }
        let layers = o.layers ?? Array(0..<stackLayers)
        for l in layers where !(0..<stackLayers).contains(l) {
            throw RuleLensError("layer \(l) is out of range: the \(o.stack.isEmpty ? "model" : "encoder") has layers 0…\(stackLayers - 1)",
                                fix: "pass --layers within 0…\(stackLayers - 1), or all")
        }
        var cells: [AblationCell] = []
        for l in layers {
            for comp in o.components { cells.append(AblationCell(layer: l, component: comp, stack: o.stack)) }
            if o.heads { for h in 0..<c.nHead { cells.append(AblationCell(layer: l, component: .head, head: h, stack: o.stack)) } }
        }
        guard !cells.isEmpty else { throw RuleLensError("nothing to ablate", fix: "pass --components attn,mlp and/or --heads") }
        if case .index(let k) = o.positions, let i = items.firstIndex(where: { k >= $0.inputLength || -k > $0.promptLength }) {
            throw RuleLensError("--positions \(k) falls outside example \(i + 1) (\(items[i].promptLength) prompt positions, \(items[i].inputLength) in all)",
                                fix: "choose a position every example has, e.g. answer (the last prompt position) or 0")
        }
        // The bootstrap plan holds resamples × examples draws: refused here, before the sweep, when it cannot fit.
        try MemoryEstimate.bootstrap(resamples: o.bootstrap, examples: items.count)
            .require("--bootstrap \(o.bootstrap) over \(items.count) examples", fix: "pass a smaller --bootstrap (1000 gives stable 95% intervals)")
        var options = AblationOptions(cells: cells)
        options.method = o.method; options.positions = o.positions; options.seed = o.seed
        options.separabilitySite = o.separabilityAt; options.batchSize = o.batchSize
        if dumpedReference, let path = o.meanFrom {
            options.referenceActivations = try AblationReferenceDump.load(path, model: model, checkpoint: o.checkpoint, cells: cells)
        }
        let line = ProgressLine(enabled: !o.quiet)
        let tick = InterventionSupport.progress(line, "ablate", "runs")
        let sweep = try Ablation.sweep(model, items: items, reference: reference, labels: labels, options: options) { done, total in
            tick(done, total, done < total ? cells[done - 1].name : "")
        }
        // Summaries: overall, then per label value (sorted).
        let all = sweep.summary(indices: Array(items.indices), label: nil, resamples: o.bootstrap, seed: o.seed)
        var groups: [AblationGroupSummary] = []
        if let labelValues, let labels {
            for name in labels.names {
                let indices = labelValues.indices.filter { labelValues[$0] == name }
                groups.append(sweep.summary(indices: indices, label: name, resamples: o.bootstrap, seed: o.seed))
            }
        }
        var report = ProbeReport(table: table(all, groups, sweep, o), json: json(all, groups, sweep, o, loaded.origin, cells))
        if let out = o.out {
            try writeHDF5(out, o, sweep, all, groups, items: items, examples: loaded.examples, labelValues: labelValues, origin: loaded.origin)
            report.written.append(out)
        }
        if let plot = o.plot {
            try writeTextAtomically(heatmap(all, o, layers: layers, heads: c.nHead).render(), to: plot, overwrite: o.force)
            report.written.append(plot)
        }
        return report
    }

    static func groupJSON(_ g: AblationGroupSummary) -> [String: Any] {
        func effects(_ e: [AblationMetric: MetricEffect]) -> [String: Any] {
            Dictionary(uniqueKeysWithValues: AblationMetric.allCases.map { m in
                (m.rawValue, ["clean": InterventionSupport.json(e[m]!.clean), "ablated": InterventionSupport.json(e[m]!.ablated),
                              "change": InterventionSupport.json(e[m]!.change)] as [String: Any])
            })
        }
        return [
            "n": g.count,
            "clean": Dictionary(uniqueKeysWithValues: AblationMetric.allCases.map { ($0.rawValue, InterventionSupport.json(g.clean[$0]!)) }),
            "cells": g.cells.map { ["name": $0.cell.name, "layer": $0.cell.layer, "component": $0.cell.component.rawValue,
                                    "head": $0.cell.head ?? NSNull(), "effects": effects($0.effects)] as [String: Any] },
            "ffn_vs_attention": g.contrasts.map { k -> [String: Any] in
                var row: [String: Any] = ["layer": k.layer]
                for m in AblationMetric.allCases {
                    row[m.rawValue] = ["attention": InterventionSupport.json(k.attention[m]!), "mlp": InterventionSupport.json(k.mlp[m]!),
                                       "difference": InterventionSupport.json(k.difference[m]!)]
                }
                return row
            },
        ]
    }

    static func json(_ all: AblationGroupSummary, _ groups: [AblationGroupSummary], _ sweep: AblationSweep, _ o: AblateOptions,
                     _ origin: String, _ cells: [AblationCell]) -> [String: Any] {
        var out: [String: Any] = [
            "checkpoint": o.checkpoint, "data": origin, "method": o.method.rawValue, "positions": positionsText(o.positions),
            "stack": o.stack.isEmpty ? "decoder" : "encoder",
            "bootstrap": o.bootstrap, "seed": o.seed, "n": all.count, "label": o.label ?? NSNull(),
            "metrics": ["accuracy": "exact match under greedy decoding, the ablation at every generated token",
                        "loss": "teacher-forced cross-entropy over target tokens and eos, mean per example then over examples",
                        "logit_diff": "logit of the correct first answer token minus the largest other logit, at the last prompt position"],
            "overall": groupJSON(all),
        ]
        if !groups.isEmpty { out["by_label"] = Dictionary(uniqueKeysWithValues: groups.map { ($0.label!, groupJSON($0)) }) }
        if let site = o.separabilityAt {
            func scores(_ s: SeparabilityScores?) -> Any {
                guard let s else { return NSNull() }
                return ["silhouette": InterventionSupport.number(s.silhouette), "knn_accuracy": s.knnAccuracy, "linear_probe_accuracy": s.linearProbeAccuracy]
            }
            out["separability"] = ["site": site, "label": o.label ?? "", "clean": scores(sweep.clean.separability),
                                   "cells": sweep.runs.map { ["name": $0.cell!.name, "scores": scores($0.separability)] as [String: Any] }]
        }
        return out
    }

    static func positionsText(_ p: AblationPositions) -> String {
        switch p { case .all: return "all"; case .index(let k): return k == -1 ? "answer" : String(k) }
    }

    static func table(_ all: AblationGroupSummary, _ groups: [AblationGroupSummary], _ sweep: AblationSweep, _ o: AblateOptions) -> String {
        let T = InterventionSupport.self
        var lines: [String] = []
        let ci = o.bootstrap > 0 ? " (95% bootstrap intervals, \(o.bootstrap) resamples over examples)" : ""
        lines.append("\(o.method.rawValue) ablation at \(positionsText(o.positions)) positions, \(all.count) examples\(ci)")
        lines.append(String(format: "clean: accuracy %.4f, loss %.4f, logit diff %.3f", all.clean[.accuracy]!.value, all.clean[.loss]!.value, all.clean[.logitDiff]!.value))
        var t = TextTable(["ablated", "accuracy", "Δ accuracy", "loss", "Δ loss", "Δ logit diff"])
        for cell in all.cells {
            let e = cell.effects
            t.add([cell.cell.name, String(format: "%.4f", e[.accuracy]!.ablated.value), T.text(e[.accuracy]!.change),
                   String(format: "%.4f", e[.loss]!.ablated.value), T.text(e[.loss]!.change), T.text(e[.logitDiff]!.change, 2)])
        }
        lines.append(t.render())
        func contrastTable(_ g: AblationGroupSummary) -> String {
            var t = TextTable(["layer", "Δacc attn", "Δacc mlp", "attn − mlp", "Δloss attn", "Δloss mlp", "attn − mlp (loss)"])
            for k in g.contrasts {
                t.add(["\(k.layer)", T.text(k.attention[.accuracy]!), T.text(k.mlp[.accuracy]!), T.text(k.difference[.accuracy]!),
                       T.text(k.attention[.loss]!), T.text(k.mlp[.loss]!), T.text(k.difference[.loss]!)])
            }
            return t.render()
        }
        if !all.contrasts.isEmpty {
            lines.append("")
            lines.append("FFN versus attention (change when ablated; attn − mlp < 0 in accuracy: attention matters more)")
            lines.append(contrastTable(all))
        }
        if !groups.isEmpty {
            lines.append("")
            lines.append("per \(o.label!): Δ accuracy by ablated component (clean accuracy in the second column)")
            var t = TextTable([o.label!, "n", "clean"] + all.cells.map { $0.cell.name })
            for g in groups {
                t.add([g.label!, "\(g.count)", String(format: "%.3f", g.clean[.accuracy]!.value)]
                      + g.cells.map { String(format: "%+.3f", $0.effects[.accuracy]!.change.value) })
            }
            lines.append(t.render())
            if !all.contrasts.isEmpty {
                lines.append("")
                lines.append("per \(o.label!): FFN versus attention, Δ accuracy and Δ loss attn − mlp per layer")
                var t = TextTable([o.label!] + all.contrasts.flatMap { ["acc layer \($0.layer)", "loss layer \($0.layer)"] })
                for g in groups {
                    t.add([g.label!] + g.contrasts.flatMap { [T.text($0.difference[.accuracy]!), T.text($0.difference[.loss]!)] })
                }
                lines.append(t.render())
            }
        }
        if let site = o.separabilityAt, let clean = sweep.clean.separability {
            lines.append("")
            lines.append("separability of \(o.label!) at \(site) (last prompt position)")
            var t = TextTable(["run", "silhouette", "k-NN acc", "probe acc"])
            t.add(["clean", fmt(clean.silhouette), fmt(clean.knnAccuracy), fmt(clean.linearProbeAccuracy)])
            for r in sweep.runs { if let s = r.separability { t.add([r.cell!.name, fmt(s.silhouette), fmt(s.knnAccuracy), fmt(s.linearProbeAccuracy)]) } }
            lines.append(t.render())
        }
        return lines.joined(separator: "\n")
    }

    /// Layer × component (or layer × head) heatmap of the change in `plotMetric`.
    static func heatmap(_ all: AblationGroupSummary, _ o: AblateOptions, layers: [Int], heads: Int) -> Heatmap {
        var cols: [String] = o.components.map(\.rawValue)
        if o.heads { cols += (0..<heads).map { "H\($0)" } }
        var values = [[Double]](repeating: [Double](repeating: .nan, count: cols.count), count: layers.count)
        for cell in all.cells {
            guard let r = layers.firstIndex(of: cell.cell.layer) else { continue }
            let col = cell.cell.component == .head ? o.components.count + cell.cell.head! : o.components.firstIndex(of: cell.cell.component)!
            values[r][col] = cell.effects[o.plotMetric]!.change.value
        }
        var h = Heatmap(values: values, rowLabels: layers.map { "layer \($0)" }, colLabels: cols)
        h.title = "\(o.method.rawValue) ablation: change in \(o.plotMetric.rawValue) (\(all.count) examples)"
        h.xLabel = o.heads ? "component / head" : "component"
        h.yLabel = "layer"
        h.colorBarLabel = "Δ \(o.plotMetric.rawValue)"
        h.annotate = true
        let extent = values.flatMap { $0 }.filter(\.isFinite).map(abs).max() ?? 1
        h.range = -max(extent, 1e-9)...max(extent, 1e-9)
        h.colorMap = ColorMap.diverging
        return h
    }

    static func writeHDF5(_ path: String, _ o: AblateOptions, _ sweep: AblationSweep, _ all: AblationGroupSummary,
                          _ groups: [AblationGroupSummary], items: [InterventionItem], examples: [Example], labelValues: [String]?, origin: String) throws {
        let S = InterventionSupport.self
        try writeResultsHDF5(path, overwrite: o.force) { f in
            try S.provenance(f, kind: "ablate", checkpoint: o.checkpoint,
                             fields: ["data": origin, "method": o.method.rawValue, "positions": positionsText(o.positions),
                                      "label": o.label ?? "", "seed": String(o.seed), "bootstrap": String(o.bootstrap)])
            let runs = [sweep.clean] + sweep.runs
            let N = items.count, R = runs.count
            try S.write(f, "runs", strings: ["clean"] + sweep.runs.map { $0.cell!.name }, dims: "run")
            try S.write(f, "run_layer", ints: [-1] + sweep.runs.map { $0.cell!.layer }, shape: [R], dims: "run")
            try S.write(f, "run_component", strings: ["clean"] + sweep.runs.map { $0.cell!.component.rawValue }, dims: "run")
            try S.write(f, "run_head", ints: [-1] + sweep.runs.map { $0.cell!.head ?? -1 }, shape: [R], dims: "run")
            let per = try f.createGroup("per_example")
            try S.write(per, "correct", runs.flatMap { $0.metrics.values(.accuracy) }, shape: [R, N], dims: "run,example")
            try S.write(per, "loss", runs.flatMap { $0.metrics.loss }, shape: [R, N], dims: "run,example")
            try S.write(per, "logit_diff", runs.flatMap { $0.metrics.logitDiff }, shape: [R, N], dims: "run,example")
            let meta = try f.createGroup("meta")
            try S.write(meta, "id", ints: examples.enumerated().map { $1.id ?? $0 }, shape: [N], dims: "example")
            try S.write(meta, "prompt", strings: examples.map(\.prompt), dims: "example")
            if let labelValues { try S.write(meta, "label", strings: labelValues, dims: "example") }
            // Summaries: [group, run-or-cell, stat] with stat = value, ci_low, ci_high; group 0 = all examples.
            let gs = [all] + groups
            try S.write(f, "groups", strings: ["all"] + groups.map { $0.label! }, dims: "group")
            try S.write(f, "group_n", ints: gs.map(\.count), shape: [gs.count], dims: "group")
            let summary = try f.createGroup("summary")
            func triple(_ e: Estimate) -> [Double] { [e.value, e.lower ?? .nan, e.upper ?? .nan] }
            for m in AblationMetric.allCases {
                try S.write(summary, "\(m.rawValue)_clean", gs.flatMap { triple($0.clean[m]!) }, shape: [gs.count, 3], dims: "group,stat")
                try S.write(summary, "\(m.rawValue)_ablated", gs.flatMap { g in g.cells.flatMap { triple($0.effects[m]!.ablated) } },
                            shape: [gs.count, R - 1, 3], dims: "group,cell,stat")
                try S.write(summary, "\(m.rawValue)_change", gs.flatMap { g in g.cells.flatMap { triple($0.effects[m]!.change) } },
                            shape: [gs.count, R - 1, 3], dims: "group,cell,stat")
                if !all.contrasts.isEmpty {
                    try S.write(summary, "\(m.rawValue)_ffn_vs_attention",
                                gs.flatMap { g in g.contrasts.flatMap { triple($0.attention[m]!) + triple($0.mlp[m]!) + triple($0.difference[m]!) } },
                                shape: [gs.count, all.contrasts.count, 3, 3], dims: "group,layer,effect,stat")
                }
            }
            if !all.contrasts.isEmpty {
                try S.write(summary, "contrast_layers", ints: all.contrasts.map(\.layer), shape: [all.contrasts.count], dims: "layer")
                try S.write(summary, "contrast_effects", strings: ["attention", "mlp", "difference"], dims: "effect")
            }
            try S.write(summary, "stats", strings: ["value", "ci_low", "ci_high"], dims: "stat")
            if o.separabilityAt != nil {
                let sep = try f.createGroup("separability")
                try sep.setAttribute("site", o.separabilityAt!)
                for (name, get) in [("silhouette", { (s: SeparabilityScores) in s.silhouette }), ("knn_accuracy", { $0.knnAccuracy }),
                                    ("linear_probe_accuracy", { $0.linearProbeAccuracy })] {
                    try S.write(sep, name, runs.map { $0.separability.map(get) ?? .nan }, shape: [R], dims: "run")
                }
            }
        }
    }
}
