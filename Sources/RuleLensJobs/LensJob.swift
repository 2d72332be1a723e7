import Foundation
import RuleLensInterventions
import RuleLensAnalysis
import RuleLensReport

/// Options of `rulelens lens`.
public struct LensOptions: Sendable {
    public var checkpoint: String
    public var data: DataSource
    public var part: DataPart = .test
    public var label: String? = nil
    /// The first N examples only (nil: all).
    public var limit: Int? = nil
    public var out: String? = nil
    public var plot: String? = nil
    public var force = false
    public var quiet = false
    public init(checkpoint: String, data: DataSource) { self.checkpoint = checkpoint; self.data = data }
}

/// `rulelens lens`: the logit lens and direct logit attribution at the last prompt position, per label.
public enum LensJob {
    public static func run(_ o: LensOptions) throws -> ProbeReport {
        try InterventionSupport.refuseExisting([o.out, o.plot, o.plot.map { suffixed($0, "dla") }], force: o.force)
        var loaded = try o.data.load(o.part)
        if let limit = o.limit, limit < loaded.examples.count { loaded.examples = Array(loaded.examples.prefix(limit)) }
        let (model, tokenizer) = try InterventionSupport.load(o.checkpoint)
        let items = try InterventionSupport.items(loaded.examples, tokenizer: tokenizer, nCtx: model.contextLength, source: loaded.origin)
        var labelValues: [String]? = nil, labels: Labels? = nil
        if let column = o.label {
            labelValues = try InterventionSupport.labels(loaded.examples, column: column, source: loaded.origin)
            labels = try InterventionSupport.checkedLabels(labelValues!, column: column)
        }
        let line = ProgressLine(enabled: !o.quiet)
        let tick = InterventionSupport.progress(line, "lens", "batches")
        let r = try Lens.run(model, items: items) { tick($0, $1, "") }
        let N = r.count, S = r.stages.count, C = r.components.count
        // Group means: group 0 = all, then each label value.
        var groups: [(name: String, indices: [Int])] = [("all", Array(0..<N))]
        if let labelValues, let labels { for name in labels.names { groups.append((name, labelValues.indices.filter { labelValues[$0] == name })) } }
        func mean(_ idx: [Int], _ f: (Int) -> Double) -> Double { idx.reduce(0.0) { $0 + f($1) } / Double(max(1, idx.count)) }
        struct Group { var probability: [Double]; var rank: [Double]; var accuracy: [Double]; var attribution: [Double]; var logitDiff: Double }
        let stats: [Group] = groups.map { g in
            Group(probability: (0..<S).map { s in mean(g.indices) { r.probability[s * N + $0] } },
                  rank: (0..<S).map { s in mean(g.indices) { Double(r.rank[s * N + $0]) } },
                  accuracy: (0..<S).map { s in mean(g.indices) { r.correct[s * N + $0] ? 1 : 0 } },
                  attribution: (0..<C).map { c in mean(g.indices) { r.attribution[c * N + $0] } },
                  logitDiff: mean(g.indices) { r.logitDiff[$0] })
        }
        func groupJSON(_ g: Group, _ n: Int) -> [String: Any] {
            ["n": n, "lens": ["probability": g.probability, "rank": g.rank, "accuracy": g.accuracy],
             "dla": ["attribution": g.attribution, "logit_diff": g.logitDiff]]
        }
        var json: [String: Any] = [
            "checkpoint": o.checkpoint, "data": loaded.origin, "n": N, "stages": r.stages, "stage_sites": r.stageSites,
            "components": r.components, "overall": groupJSON(stats[0], N),
            "position": "last prompt position (predicts the first answer token)",
            "dla_pair": "the correct first answer token against the best other token of the model's logits",
        ]
        if groups.count > 1 {
            json["label"] = o.label!
            json["by_label"] = Dictionary(uniqueKeysWithValues: groups.indices.dropFirst().map { (groups[$0].name, groupJSON(stats[$0], groups[$0].indices.count)) })
        }
        var lines = ["logit lens at the last prompt position, \(N) examples: the correct first answer token through ln_final and the unembedding"]
        var t = TextTable(["stage", "site", "p(answer)", "mean rank", "top-1"])
        for s in 0..<S { t.add([r.stages[s], r.stageSites[s], fmt(stats[0].probability[s]), String(format: "%.2f", stats[0].rank[s]), fmt(stats[0].accuracy[s])]) }
        lines.append(t.render())
        lines.append("")
        lines.append(String(format: "direct logit attribution of logit[answer] − logit[best other] (mean %.4f; rows marked * sum to it)", stats[0].logitDiff))
        var d = TextTable(["component", "attribution"])
        for c in 0..<C { d.add([r.components[c] + (r.isLayerTotal[c] ? " *" : ""), fmt(stats[0].attribution[c])]) }
        lines.append(d.render())
        if groups.count > 1 {
            lines.append("")
            lines.append("per \(o.label!): p(answer) by stage")
            var t = TextTable([o.label!, "n"] + r.stages)
            for (k, g) in groups.enumerated().dropFirst() { t.add([g.name, "\(g.indices.count)"] + stats[k].probability.map { fmt($0, 3) }) }
            lines.append(t.render())
            lines.append("")
            lines.append("per \(o.label!): direct logit attribution of each layer's attention and MLP")
            let totals = (0..<C).filter { r.isLayerTotal[$0] }
            var u = TextTable([o.label!, "logit diff"] + totals.map { r.components[$0] })
            for (k, g) in groups.enumerated().dropFirst() { u.add([g.name, fmt(stats[k].logitDiff, 3)] + totals.map { fmt(stats[k].attribution[$0], 3) }) }
            lines.append(u.render())
        }
        var report = ProbeReport(table: lines.joined(separator: "\n"), json: json)
        if let out = o.out {
            let I = InterventionSupport.self
            try writeResultsHDF5(out, overwrite: o.force) { f in
                try I.provenance(f, kind: "lens", checkpoint: o.checkpoint, fields: ["data": loaded.origin, "label": o.label ?? ""])
                try I.write(f, "stages", strings: r.stages, dims: "stage")
                try I.write(f, "components", strings: r.components, dims: "component")
                let lens = try f.createGroup("lens")
                try I.write(lens, "logits", floats: r.logits, shape: [S, N, r.vocabSize], dims: "stage,example,d_vocab")
                try I.write(lens, "probability", r.probability, shape: [S, N], dims: "stage,example")
                try I.write(lens, "rank", ints: r.rank, shape: [S, N], dims: "stage,example")
                try I.write(lens, "correct", ints: r.correct.map { $0 ? 1 : 0 }, shape: [S, N], dims: "stage,example")
                let dla = try f.createGroup("dla")
                try I.write(dla, "attribution", r.attribution, shape: [C, N], dims: "component,example")
                try I.write(dla, "layer_total", ints: r.isLayerTotal.map { $0 ? 1 : 0 }, shape: [C], dims: "component")
                let meta = try f.createGroup("meta")
                try I.write(meta, "id", ints: loaded.examples.enumerated().map { $1.id ?? $0 }, shape: [N], dims: "example")
                try I.write(meta, "answer_token", ints: r.answerToken.map(Int.init), shape: [N], dims: "example")
                try I.write(meta, "other_token", ints: r.otherToken.map(Int.init), shape: [N], dims: "example")
                try I.write(meta, "answer_position", ints: items.map(\.answerPosition), shape: [N], dims: "example")
                try I.write(meta, "logit_diff", r.logitDiff, shape: [N], dims: "example")
                if let labelValues { try I.write(meta, "label", strings: labelValues, dims: "example") }
            }
            report.written.append(out)
        }
        if let plot = o.plot {
            var h = Heatmap(values: stats.map(\.probability), rowLabels: groups.map(\.name), colLabels: r.stages)
            h.title = "logit lens: p(correct first answer token) by stage"
            h.xLabel = "residual stream stage"; h.yLabel = o.label ?? ""; h.colorBarLabel = "probability"
            h.range = 0...1; h.annotate = stats.count * S <= 300
            try writeTextAtomically(h.render(), to: plot, overwrite: o.force)
            report.written.append(plot)
            // DLA: layers × (attn, heads, attn bias, mlp), overall means.
            let g = try InterventionGeometry(model)
            let L = g.nLayer, H = g.nHead
            let cols = ["attn"] + (0..<H).map { "H\($0)" } + ["attn bias", "mlp"]
            let values = (0..<L).map { l in
                let first = r.components.firstIndex(of: "L\(l) attn")!
                return (0..<cols.count).map { stats[0].attribution[first + $0] }
            }
            var dh = Heatmap(values: values, rowLabels: (0..<L).map { "layer \($0)" }, colLabels: cols)
            dh.title = String(format: "direct logit attribution (mean logit diff %.2f, %d examples)", stats[0].logitDiff, N)
            dh.xLabel = "component"; dh.yLabel = "layer"; dh.colorBarLabel = "logit diff"; dh.annotate = true
            let extent = values.flatMap { $0 }.map(abs).max() ?? 1
            dh.range = -max(extent, 1e-9)...max(extent, 1e-9); dh.colorMap = ColorMap.diverging
            let path = suffixed(plot, "dla")
            try writeTextAtomically(dh.render(), to: path, overwrite: o.force)
            report.written.append(path)
        }
        return report
    }
}
