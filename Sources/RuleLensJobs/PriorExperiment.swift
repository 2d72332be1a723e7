import Foundation
import RuleLensAnalysis
import RuleLensInterventions
import RuleLensModel
import RuleLensNumerics
import RuleLensReport
import RuleLensStudies

/// Options of the one-command experiment (`rulelens prior-experiment`).
public struct PriorExperimentOptions: Sendable {
    /// Training examples (JSONL) and the held-out examples the retrieval test runs on (with `sources`).
    public var train: String, test: String
    public var out: String
    /// Injection sites to train, each into OUT/SITE; `none` is the plain GPT of the same data and seed; `vae-memory`,
    /// `vae-query`, `vae-embedding` are language VAEs (`rulelens vae train`, decoder of the same shape, `--decode target`)
    /// with that injection of z.
    public var sites: [String] = ["none", "query", "key", "value", "embedding", "memory"]
    /// The data column whose value selects the prior.
    public var column = "rule"
    /// The training run (shape, steps, seed); `data`, `rulePrior` and `inject` are set per site.
    public var trainOptions: TrainOptions
    public var limit: Int? = nil
    public var retrieval = RetrievalOptions()
    public init(train: String, test: String, out: String, trainOptions: TrainOptions) {
        self.train = train; self.test = test; self.out = out; self.trainOptions = trainOptions
    }
}

/// One trained model's line of the comparison: every condition of `rulelens retrieve` on it.
public struct PriorExperimentModel: Sendable {
    public var site: String
    public var report: RetrievalReport
    public var finalLoss: Double?
}

/// GPTs trained on the same data and seed with the rule prior at each injection site (and none), each measured with
/// `RulePriorRetrieval` (none, its prior, a wrong rule's, random of equal norm, moved), compared side by side:
/// a table, bars by site with 95% intervals (exact match and mass on source keys under each model's own prior), and
/// attention-mass heatmaps by layer × head.
public enum PriorExperiment {
    public static let sites = ["none", "query", "key", "value", "embedding", "memory", "vae-memory", "vae-query", "vae-embedding"]

    public static func run(_ o: PriorExperimentOptions, progress: ProgressLine? = nil) throws -> [PriorExperimentModel] {
        if let bad = o.sites.first(where: { !sites.contains($0) }) {
            throw RuleLensError("--sites \(bad) is not one of \(sites.joined(separator: ", "))", fix: "pass e.g. --sites none,query,key")
        }
        guard !o.sites.isEmpty else { throw RuleLensError("--sites is empty", fix: "pass e.g. --sites none,query") }
        // Test examples whose rule the training data has (a prior exists only for those), then the first `limit`.
        let seen = Set(try RulePriorData.values(column: o.column, examples: try Jobs.loadExamples(path: o.train), path: o.train))
        let all = try Jobs.loadExamples(path: o.test)
        let allValues = try RulePriorData.values(column: o.column, examples: all, path: o.test)
        var kept = zip(all, allValues).filter { seen.contains($0.1) }
        if kept.count < all.count {
            progress?.message("note: \(all.count - kept.count) of \(all.count) test examples have a \(o.column) the training data lacks; they are left out")
        }
        if let limit = o.limit { kept = Array(kept.prefix(limit)) }
        let examples = kept.map(\.0), values = kept.map(\.1)
        let fm = FileManager.default
        if !fm.fileExists(atPath: o.out) { try fm.createDirectory(atPath: o.out, withIntermediateDirectories: true) }
        var models: [PriorExperimentModel] = []
        for site in o.sites {
            let dir = o.out + "/" + site
            var options = o.trainOptions
            options.data = o.train
            if site != "none" { options.rulePrior = o.column; options.inject = site }
            var finalLoss: Double? = nil
            let vaeMode = site.hasPrefix("vae-") ? Injection(rawValue: String(site.dropFirst(4))) : nil
            if let mode = vaeMode {
                let t = o.trainOptions
                var v = VAETrainOptions(data: o.train)
                v.adoptSettings(of: t)
                v.encLayers = t.layers; v.inject = [mode]; v.decode = .target
                if Checkpoint.exists(at: dir) {
                    progress?.message("\(dir) already holds a trained VAE; measuring it as it is")
                } else {
                    progress?.message("training the VAE with \(mode.rawValue) injection into \(dir)")
                    let job = VAETrainJob(options: v, outDir: dir)
                    job.saveEvery = max(1, t.steps); job.threads = t.threads
                    job.progress = progress ?? ProgressLine(enabled: false)
                    _ = try job.run()
                }
                let vae = try VAECheckpoint.load(dir)
                let report = try VAEPriorRetrieval.run(vae: vae, examples: examples, values: values, source: o.test, options: o.retrieval,
                                                       progress: progress)
                models.append(PriorExperimentModel(site: site, report: report, finalLoss: nil))
                continue
            }
            if Checkpoint.exists(at: dir) {
                progress?.message("\(dir) already holds a trained model; measuring it as it is")
            } else {
                progress?.message("training \(site == "none" ? "the plain GPT" : "the \(site) prior") into \(dir)")
                let job = TrainJob(options: options, outDir: dir)
                job.progress = progress ?? ProgressLine(enabled: false)
                finalLoss = Double(try job.run().finalLoss)
            }
            let report: RetrievalReport
            if site == "none" {
                let (model, vocab) = try Checkpoint.load(dir)
                let tokenizer = try Jobs.tokenizer(vocab: vocab, checkpoint: dir)
                let items = try Retrieval.items(examples, tokenizer: tokenizer, nCtx: model.config.nCtx, source: o.test)
                let results = [Retrieval.measure(model: model, items: items, vectors: nil, alpha: 0, site: .q, layer: 0,
                                                 batchSize: o.retrieval.batchSize)]
                report = RetrievalJob.assemble(conditions: [RetrievalCondition(kind: "none", site: .q, layer: 0, alpha: 0, name: "none")],
                                               results: results, layers: model.config.nLayer, heads: model.config.nHead,
                                               labels: Labels(strings: values), items: items.count, options: o.retrieval, priorNorms: [:])
            } else {
                let (model, vocab) = try Checkpoint.loadRulePrior(dir)
                let tokenizer = try Jobs.tokenizer(vocab: vocab, checkpoint: dir)
                report = try RulePriorRetrieval.run(model: model, tokenizer: tokenizer, examples: examples, values: values, source: o.test,
                                                    options: o.retrieval, progress: progress)
            }
            models.append(PriorExperimentModel(site: site, report: report, finalLoss: finalLoss))
        }
        try write(models, o)
        return models
    }

    /// The model's headline condition: its own prior (the plain model: none).
    static func headline(_ m: PriorExperimentModel) -> Int { m.report.conditions.firstIndex { $0.kind == "prior" } ?? 0 }

    /// One line per model and condition.
    public static func table(_ models: [PriorExperimentModel]) -> String {
        func f(_ i: Interval) -> String { i.mean.isFinite ? String(format: "%.3f [%.3f, %.3f]", i.mean, i.lo, i.hi) : "n/a" }
        var lines = ["model | condition | exact | token acc | mass on sources (ref. head) | Δ mass vs none | Δ exact vs none | ref. head"]
        for m in models {
            let r = m.report
            for (c, s) in zip(r.conditions, r.overall) {
                let none = c.kind == "none"
                lines.append("\(m.site) | \(c.label) | \(f(s.exact)) | \(f(s.tokenAccuracy)) | \(f(s.mass)) | \(none ? "—" : f(s.massChange)) | "
                             + "\(none ? "—" : f(s.exactChange)) | L\(r.referenceHead.layer)H\(r.referenceHead.head)")
            }
        }
        return lines.joined(separator: "\n")
    }

    static func write(_ models: [PriorExperimentModel], _ o: PriorExperimentOptions) throws {
        let colors = ["none": "#777777", "query": "#1b7837", "key": "#2166ac", "value": "#b2182b", "embedding": "#e08214", "memory": "#762a83",
                      "vae-memory": "#c2a5cf", "vae-query": "#a6dba0", "vae-embedding": "#fdb863"]
        func bars(_ pick: (RetrievalSummary) -> Interval) -> [BarChart.Bar] {
            models.map { m in
                let s = pick(m.report.overall[headline(m)])
                let label = m.site == "none" ? "no prior (plain GPT)" : m.site.hasPrefix("vae-") ? "VAE, \(m.site.dropFirst(4)): rule's mean z" : "\(m.site) prior"
                return BarChart.Bar(label: label, value: s.mean,
                                    interval: (s.lo, s.hi), color: colors[m.site] ?? "#555")
            }
        }
        try AtomicFile.write(Data(BarChart(title: "Exact match by injection site (each model with its own prior)",
                                           xLabel: "exact match on held-out examples (95% bootstrap interval)",
                                           bars: bars { $0.exact }).render().utf8), to: o.out + "/exact.svg")
        try AtomicFile.write(Data(BarChart(title: "Attention mass on the source keys by injection site",
                                           xLabel: "mean mass from target positions onto their source keys at the model's reference head (95% interval)",
                                           bars: bars { $0.mass }).render().utf8), to: o.out + "/mass.svg")
        // Heatmap rows: site × layer, columns: heads; values: mean mass on source keys under the model's own prior.
        var values: [[Double]] = [], rowLabels: [String] = []
        for m in models {
            let r = m.report
            for l in 0..<r.layers {
                values.append((0..<r.heads).map { r.meanMass[headline(m)][l * r.heads + $0] })
                rowLabels.append("\(m.site) L\(l)")
            }
        }
        let heads = models.first?.report.heads ?? 1
        var heatmap = Heatmap(values: values, rowLabels: rowLabels, colLabels: (0..<heads).map { "H\($0)" })
        heatmap.title = "Attention mass on source keys by layer × head (each model with its own prior)"
        heatmap.xLabel = "head"; heatmap.yLabel = "model, layer"; heatmap.annotate = true
        heatmap.colorBarLabel = "mean mass on source keys"
        try AtomicFile.write(Data(heatmap.render().utf8), to: o.out + "/heatmap.svg")
        // Everything as JSON, and the table as text.
        var all: [String: Any] = ["train": o.train, "test": o.test, "column": o.column, "rulelens_version": RuleLensVersion.string,
                                  "blas": BLAS.coreName]
        var perModel: [String: Any] = [:]
        for m in models {
            var obj = (try JSONSerialization.jsonObject(with: RetrievalJob.json(m.report))) as? [String: Any] ?? [:]
            if let loss = m.finalLoss { obj["final_train_loss"] = loss }
            perModel[m.site] = obj
        }
        all["models"] = perModel
        try AtomicFile.write(try JSONSerialization.data(withJSONObject: all, options: [.prettyPrinted, .sortedKeys]), to: o.out + "/comparison.json")
        try AtomicFile.write(Data((table(models) + "\n").utf8), to: o.out + "/comparison.txt")
    }
}
