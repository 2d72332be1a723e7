import Foundation
import RuleLensAnalysis
import RuleLensInterventions
import RuleLensModel
import RuleLensNumerics
import RuleLensReport
import RuleLensStore
import RuleLensTasks

/// Options of `rulelens retrieve` (the training-free variant: rule priors from the model's own mean activations).
public struct RetrievalOptions: Sendable {
    /// Layers the prior is added at (one experiment each; default: every layer).
    public var layers: [Int]? = nil
    /// Where the prior is added: q (the hypothesis), and k, v as controls.
    public var sites: [PriorSite] = [.q, .k, .v]
    /// Scales of the prior; 0 is the same as no prior (tested bit for bit).
    public var alphas: [Float] = [0.5, 1, 2]
    public var bootstrap = 1000
    public var seed: UInt64 = 0
    public var batchSize = 32
    public init() {}
}

/// A mean with its 95% percentile-bootstrap interval over examples.
public struct Interval: Sendable, Codable, Equatable {
    public var mean: Double, lo: Double, hi: Double, n: Int

    /// Resamples examples with replacement `resamples` times (seeded); NaN values (examples without the quantity) are left out.
    public static func bootstrap(_ values: [Double], resamples: Int, seed: UInt64, stream: String) -> Interval {
        let v = values.filter(\.isFinite)
        guard !v.isEmpty else { return Interval(mean: .nan, lo: .nan, hi: .nan, n: 0) }
        let mean = v.reduce(0, +) / Double(v.count)
        guard resamples > 0, v.count > 1 else { return Interval(mean: mean, lo: mean, hi: mean, n: v.count) }
        var rng = SeededRNG(seed: seed, stream: "bootstrap." + stream)
        var means = [Double](repeating: 0, count: resamples)
        for r in 0..<resamples {
            var s = 0.0
            for _ in 0..<v.count { s += v[rng.int(below: v.count)] }
            means[r] = s / Double(v.count)
        }
        means.sort()
        func q(_ p: Double) -> Double { means[min(resamples - 1, max(0, Int((p * Double(resamples - 1)).rounded())))] }
        return Interval(mean: mean, lo: q(0.025), hi: q(0.975), n: v.count)
    }
}

/// One condition's numbers, overall or for one rule.
public struct RetrievalSummary: Sendable, Codable {
    public var exact: Interval
    public var tokenAccuracy: Interval
    /// At the reference head (the head with the most mass on source keys under no prior).
    public var mass: Interval
    public var rank: Interval
    public var entropy: Interval
    /// Change against no prior on the same examples (paired bootstrap).
    public var massChange: Interval
    public var exactChange: Interval
}

/// The whole experiment: every condition, overall and per rule.
public struct RetrievalReport: Sendable {
    public var conditions: [RetrievalCondition]
    public var layers: Int, heads: Int
    /// (layer, head) with the most mass on source keys under no prior: where retrieval happens.
    public var referenceHead: (layer: Int, head: Int)
    /// Mean mass on source keys per condition, [condition][layer · heads + head].
    public var meanMass: [[Double]]
    public var overall: [RetrievalSummary]
    /// Per rule name: one summary per condition.
    public var perRule: [(rule: String, summaries: [RetrievalSummary])]
    /// ‖Δᵣ‖ per (site, layer) and rule: the priors' norms (the random control has exactly these).
    public var priorNorms: [String: [Double]]
    public var examples: Int
}

/// The retrieval test as a job: priors, conditions, bootstrap summaries, and the outputs (table, JSON, HDF5, SVG).
public enum RetrievalJob {
    /// Runs every condition on `examples` (which must carry `sources` and a rule label).
    /// Any family whose forward pass fires TransformerLens's `attn.hook_q/k/v` and `attn.hook_pattern` sites.
    public static func run(model: any LanguageModel, tokenizer: CharTokenizer, examples: [Example], labels: Labels, source: String,
                           options: RetrievalOptions, progress: ProgressLine? = nil) throws -> RetrievalReport {
        let geometry = try InterventionGeometry(model)
        for site in options.sites { try geometry.require(site.hook(layer: 0), for: "a rule prior at \(site.rawValue)") }
        try geometry.require("blocks.0.attn.hook_pattern", for: "the retrieval test (attention mass on source keys)")
        let c = (nLayer: geometry.nLayer, nHead: geometry.nHead, nCtx: geometry.contextLength)
        guard labels.classCount >= 2 else {
            throw RuleLensError("the rule label has \(labels.classCount) value(s) in \(source); a rule prior needs at least two rules",
                                fix: "use data with several rules (e.g. --task syllogism) or choose another --label")
        }
        let layers = options.layers ?? Array(0..<c.nLayer)
        if let bad = layers.first(where: { $0 < 0 || $0 >= c.nLayer }) {
            throw RuleLensError("--layers \(bad) is outside this \(c.nLayer)-layer model", fix: "pass layers in 0…\(c.nLayer - 1)")
        }
        if let bad = options.alphas.first(where: { !$0.isFinite }) {
            throw RuleLensError("--alpha \(bad) is not a finite number", fix: "pass finite scales such as 0,0.5,1,2")
        }
        let items = try Retrieval.items(examples, tokenizer: tokenizer, nCtx: c.nCtx, source: source)
        var conditions = [RetrievalCondition(kind: "none", site: .q, layer: 0, alpha: 0)]
        for layer in layers { for site in options.sites { for alpha in options.alphas {
            for kind in ["prior", "wrong-prior", "random"] { conditions.append(RetrievalCondition(kind: kind, site: site, layer: layer, alpha: alpha)) }
        } } }
        var results: [[RetrievalExample]] = []
        var priorNorms: [String: [Double]] = [:]
        var priorCache: [String: (prior: [[Float]], random: [[Float]])] = [:]
        let t0 = ProgressLine.now()
        for (ci, condition) in conditions.enumerated() {
            var vectors: [[Float]]? = nil
            if condition.kind != "none" {
                let key = "\(condition.site.rawValue)@\(condition.layer)"
                if priorCache[key] == nil {
                    let prior = Retrieval.priors(model: model, items: items, labels: labels, site: condition.site, layer: condition.layer,
                                                 batchSize: options.batchSize)
                    priorCache[key] = (prior, Retrieval.randomLike(prior, seed: options.seed))
                    priorNorms[key] = prior.map { p in p.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot() }
                }
                let (prior, random) = priorCache[key]!
                let R = labels.classCount
                vectors = labels.ids.map { r in
                    switch condition.kind {
                    case "prior": return prior[r]
                    case "wrong-prior": return prior[(r + 1) % R]
                    default: return random[r]
                    }
                }
            }
            results.append(Retrieval.measure(model: model, items: items, vectors: vectors, alpha: condition.alpha, site: condition.site,
                                             layer: condition.layer, batchSize: options.batchSize))
            Retrieval.reportCondition(progress, done: ci + 1, of: conditions.count, label: condition.label, examples: items.count, since: t0)
        }
        return assemble(conditions: conditions, results: results, layers: c.nLayer, heads: c.nHead, labels: labels, items: items.count,
                        options: options, priorNorms: priorNorms)
    }

    /// Summaries with bootstrap intervals from per-example results; `conditions[0]` must be `none` (it picks the
    /// reference head and is the baseline of the paired changes).
    static func assemble(conditions: [RetrievalCondition], results: [[RetrievalExample]], layers L: Int, heads H: Int, labels: Labels,
                         items count: Int, options: RetrievalOptions, priorNorms: [String: [Double]]) -> RetrievalReport {
        let c = (nLayer: L, nHead: H)
        let items = Array(0..<count)
        let meanMass = results.map { perExample in
            (0..<(c.nLayer * H)).map { idx in
                let v = perExample.map { $0.mass[idx] }.filter(\.isFinite)
                return v.isEmpty ? .nan : v.reduce(0, +) / Double(v.count)
            }
        }
        let best = meanMass[0].indices.max { (meanMass[0][$0].isFinite ? meanMass[0][$0] : -1) < (meanMass[0][$1].isFinite ? meanMass[0][$1] : -1) }!
        func summaries(_ subset: [Int], stream: String) -> [RetrievalSummary] {
            results.enumerated().map { ci, perExample in
                func boot(_ f: (RetrievalExample) -> Double, _ name: String) -> Interval {
                    Interval.bootstrap(subset.map { f(perExample[$0]) }, resamples: options.bootstrap, seed: options.seed,
                                       stream: "\(stream).\(ci).\(name)")
                }
                let none = results[0]
                return RetrievalSummary(
                    exact: boot({ $0.exact }, "exact"), tokenAccuracy: boot({ $0.tokenAccuracy }, "token"),
                    mass: boot({ $0.mass[best] }, "mass"), rank: boot({ $0.rank[best] }, "rank"), entropy: boot({ $0.entropy[best] }, "entropy"),
                    massChange: Interval.bootstrap(subset.map { perExample[$0].mass[best] - none[$0].mass[best] }, resamples: options.bootstrap,
                                                   seed: options.seed, stream: "\(stream).\(ci).dmass"),
                    exactChange: Interval.bootstrap(subset.map { perExample[$0].exact - none[$0].exact }, resamples: options.bootstrap,
                                                    seed: options.seed, stream: "\(stream).\(ci).dexact"))
            }
        }
        let all = Array(items.indices)
        let perRule = labels.names.enumerated().map { r, name in
            (rule: name, summaries: summaries(all.filter { labels.ids[$0] == r }, stream: "rule\(r)"))
        }
        return RetrievalReport(conditions: conditions, layers: c.nLayer, heads: H, referenceHead: (best / H, best % H),
                               meanMass: meanMass, overall: summaries(all, stream: "all"), perRule: perRule, priorNorms: priorNorms,
                               examples: items.count)
    }

    /// The overall table: one line per condition.
    public static func table(_ r: RetrievalReport) -> String {
        func f(_ i: Interval) -> String { i.mean.isFinite ? String(format: "%.3f [%.3f, %.3f]", i.mean, i.lo, i.hi) : "n/a" }
        var lines = ["reference head: layer \(r.referenceHead.layer) head \(r.referenceHead.head) (most mass on source keys with no prior); \(r.examples) examples",
                     "condition | exact | token acc | mass on sources | Δ mass vs none | best-source rank | entropy"]
        for (c, s) in zip(r.conditions, r.overall) {
            lines.append("\(c.label) | \(f(s.exact)) | \(f(s.tokenAccuracy)) | \(f(s.mass)) | \(c.kind == "none" ? "—" : f(s.massChange)) | "
                         + "\(f(s.rank)) | \(f(s.entropy))")
        }
        return lines.joined(separator: "\n")
    }

    /// Everything as one JSON object.
    public static func json(_ r: RetrievalReport) throws -> Data {
        func obj(_ s: RetrievalSummary) -> [String: Any] {
            func i(_ v: Interval) -> Any { v.mean.isFinite ? ["mean": v.mean, "lo": v.lo, "hi": v.hi, "n": v.n] : NSNull() }
            return ["exact": i(s.exact), "token_accuracy": i(s.tokenAccuracy), "mass": i(s.mass), "rank": i(s.rank),
                    "entropy": i(s.entropy), "mass_change": i(s.massChange), "exact_change": i(s.exactChange)]
        }
        let conditions: [[String: Any]] = r.conditions.enumerated().map { ci, c in
            var fields: [String: Any] = ["kind": c.kind, "site": c.site.rawValue, "layer": c.layer, "alpha": Double(c.alpha), "label": c.label,
             "overall": obj(r.overall[ci]),
             "per_rule": Dictionary(uniqueKeysWithValues: r.perRule.map { ($0.rule, obj($0.summaries[ci])) }),
             "mean_mass_by_layer_head": r.meanMass[ci].map { $0.isFinite ? $0 as Any : NSNull() }]
            if let movedTo = c.movedTo { fields["moved_to"] = movedTo }
            return fields
        }
        let root: [String: Any] = ["examples": r.examples, "layers": r.layers, "heads": r.heads,
                                   "reference_head": ["layer": r.referenceHead.layer, "head": r.referenceHead.head],
                                   "prior_norms": r.priorNorms, "conditions": conditions,
                                   "rulelens_version": RuleLensVersion.string, "blas": BLAS.coreName]
        return try JSONSerialization.data(withJSONObject: root, options: [.sortedKeys, .prettyPrinted])
    }

    /// `mass`, `rank`… as float64 arrays [condition, …] with `dims`, plus the condition labels.
    public static func writeHDF5(_ r: RetrievalReport, to path: String) throws {
        try AtomicFile.produce(path) { tmp in
            let file = try HDF5File.create(tmp, overwrite: true)
            defer { file.close() }
            let C = r.conditions.count
            let mass = try file.createDataset("mean_mass", type: .float64, shape: [C, r.layers, r.heads])
            try r.meanMass.flatMap { $0 }.withUnsafeBufferPointer { try mass.writeRows(start: 0, count: C, $0.baseAddress!) }
            try mass.setAttribute("dims", "condition,layer,head")
            for (name, pick) in [("exact", { (s: RetrievalSummary) in s.exact }), ("token_accuracy", { $0.tokenAccuracy }),
                                 ("mass", { $0.mass }), ("mass_change", { $0.massChange }), ("rank", { $0.rank }), ("entropy", { $0.entropy })] {
                let ds = try file.createDataset(name, type: .float64, shape: [C, 3])
                let values = r.overall.flatMap { [pick($0).mean, pick($0).lo, pick($0).hi] }
                try values.withUnsafeBufferPointer { try ds.writeRows(start: 0, count: C, $0.baseAddress!) }
                try ds.setAttribute("dims", "condition,stat")
                try ds.setAttribute("stat", "mean,lo95,hi95")
            }
            let labels = try file.createDataset("condition", type: .string, shape: [C])
            try labels.writeStrings(start: 0, r.conditions.map(\.label))
            try file.setAttribute("reference_head", "\(r.referenceHead.layer),\(r.referenceHead.head)")
            try file.setAttribute("rulelens_version", RuleLensVersion.string)
            try file.setAttribute("blas", BLAS.coreName)
            try file.flush()
        }
    }

    /// Bars of the mass on source keys at the reference head per condition (with intervals).
    public static func plot(_ r: RetrievalReport) -> String {
        let colors = ["none": "#777777", "prior": "#1b7837", "wrong-prior": "#b2182b", "random": "#2166ac", "moved": "#762a83"]
        let bars = zip(r.conditions, r.overall).map { c, s in
            BarChart.Bar(label: c.label, value: s.mass.mean, interval: (s.mass.lo, s.mass.hi), color: colors[c.kind] ?? "#555")
        }
        return BarChart(title: "Attention mass on the source keys at layer \(r.referenceHead.layer) head \(r.referenceHead.head)",
                        xLabel: "mean attention mass from target positions onto their source keys (95% bootstrap interval)",
                        bars: bars).render()
    }
}
