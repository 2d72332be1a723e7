import Foundation
import RuleLensJobs

/// `retrieve`: the key–query–value retrieval test (as `rulelens retrieve`): does a rule prior added to the Query
/// raise attention mass on the right keys, against no prior, a wrong rule's prior, a random vector of equal norm,
/// and the prior in K or V? Results add each condition by a path-friendly name
/// (`by_condition.prior_q_1_a1.mass.mean`, `none`) and the largest change of mass per kind and site
/// (`max_mass_change.prior.q`, `max_mass_change.random.q`, `max_mass_change.prior.k`).
public enum RetrieveStep: RunStep {
    public static let kind = "retrieve"
    public static let summary = "Query-injection retrieval with controls (wrong-rule, random equal-norm, K and V), bootstrap intervals, as `rulelens retrieve`."
    public static let options: [StepOption] = [
        .init("checkpoint", .path, "checkpoint folder", required: true),
        .init("data", .path, "a `data` folder or JSONL file (examples with sources and a rule)", required: true),
        .init("part", .choice(["train", "test", "all"]), "part of a data folder (default test)"),
        .init("label", .choice(["rule", "rule_id"]), "rule label (default rule)"),
        .init("layers", .list, "injection layers (default every layer)"),
        .init("sites", .list, "q, k, v (default all three)"),
        .init("alpha", .list, "scales of the prior (default 0.5,1,2)"),
        .init("bootstrap", .int, "bootstrap resamples"),
        .init("limit", .int, "the first N examples"),
        .init("batch", .int, "examples per forward"),
        .init("seed", .int, "seed"),
    ]

    public static func quick(_ o: inout StepOptions) {
        o.cap("limit", 48)
        o.cap("bootstrap", 50)
        if !o.has("alpha") { o.set("alpha", "1") }
    }

    public static func commandLine(_ o: StepOptions, dir: String) -> String {
        "rulelens retrieve " + o.flags(["checkpoint", "data", "part", "label", "layers", "sites", "alpha", "bootstrap", "limit", "batch", "seed"])
            + " --json --out \(dir)/retrieve.h5 --plot \(dir)/retrieve.svg"
    }

    public static func run(_ o: StepOptions, _ ctx: StepContext) throws -> StepOutcome {
        var options = RetrievalOptions()
        if let l = try o.list("layers") { options.layers = try l.map { s in guard let v = Int(s) else { throw bad(o, "layers", s) }; return v } }
        if let s = try o.list("sites") { options.sites = try s.map { v in guard let p = PriorSite(rawValue: v) else { throw bad(o, "sites", v) }; return p } }
        if let a = try o.list("alpha") { options.alphas = try a.map { v in guard let f = Float(v) else { throw bad(o, "alpha", v) }; return f } }
        if let b = try o.int("bootstrap") { options.bootstrap = b }
        if let b = try o.int("batch") { options.batchSize = b }
        options.seed = UInt64(max(0, try o.int("seed", default: 0)))
        let loaded = try DataSource(file: try o.requiredString("data")).load(DataPart(rawValue: try o.string("part", default: "test")) ?? .test)
        var examples = loaded.examples
        if let limit = try o.int("limit"), limit < examples.count { examples = Array(examples.prefix(limit)) }
        let label = try o.string("label", default: "rule")
        let values: [String] = try examples.enumerated().map { i, e in
            guard let v = label == "rule" ? e.rule : e.ruleId.map(String.init) else {
                throw RuleLensError("example \(i + 1) of \(loaded.origin) has no \(label)", fix: "use data with a rule label per example")
            }
            return v
        }
        let checkpoint = try o.requiredString("checkpoint")
        let (model, vocab) = try Checkpoint.load(checkpoint)
        let tokenizer = try Jobs.tokenizer(vocab: vocab, checkpoint: checkpoint)
        let report = try RetrievalJob.run(model: model, tokenizer: tokenizer, examples: examples, labels: Labels(strings: values),
                                          source: loaded.origin, options: options, progress: ctx.progress)
        try RetrievalJob.writeHDF5(report, to: ctx.path("retrieve.h5"))
        try AtomicFile.write(Data(RetrievalJob.plot(report).utf8), to: ctx.path("retrieve.svg"))
        var json = (try JSONSerialization.jsonObject(with: try RetrievalJob.json(report))) as? [String: Any] ?? [:]
        var byCondition: [String: Any] = [:]
        var maxChange: [String: [String: Double]] = [:]
        for c in json["conditions"] as? [[String: Any]] ?? [] {
            let kind = (c["kind"] as? String ?? "").replacingOccurrences(of: "-", with: "_")
            let site = c["site"] as? String ?? "", layer = (c["layer"] as? NSNumber)?.intValue ?? 0
            let alpha = RunValue.format((c["alpha"] as? NSNumber)?.doubleValue ?? 0).replacingOccurrences(of: ".", with: "_")
            let name = kind == "none" ? "none" : "\(kind)_\(site)_\(layer)_a\(alpha)"
            byCondition[name] = c["overall"]
            if kind != "none", let overall = c["overall"] as? [String: Any], let change = overall["mass_change"] as? [String: Any],
               let mean = (change["mean"] as? NSNumber)?.doubleValue {
                maxChange[kind, default: [:]][site] = max(maxChange[kind]?[site] ?? -.infinity, mean)
            }
        }
        json["by_condition"] = byCondition
        json["max_mass_change"] = maxChange
        json["conditions"] = nil   // kept in retrieve.h5 and by_condition; per-rule detail stays out of results.json
        ctx.log(RetrievalJob.table(report).split(separator: "\n").prefix(12).map { "  " + $0 }.joined(separator: "\n"))
        return StepOutcome(results: RunValue(any: json), figures: [StepFigure(title: "Retrieval: attention mass on source keys by condition", file: "retrieve.svg")],
                           files: ["retrieve.h5"])
    }

    static func bad(_ o: StepOptions, _ key: String, _ value: String) -> RuleLensError {
        RuleLensError(o.problem(key, "item \(value) is not valid"), fix: "write a list, e.g. \(key): [0, 1]")
    }
}
