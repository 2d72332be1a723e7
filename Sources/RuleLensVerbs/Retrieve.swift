import ArgumentParser
import Foundation
import RuleLensJobs
import RuleLensAnalysis
import RuleLensInterventions
import RuleLensModel
import RuleLensNumerics
import RuleLensStudies
import RuleLensTasks

extension PriorSite: ExpressibleByArgument {}

/// The column that names an example's rule.
public enum RuleLabel: String, CaseIterable, ExpressibleByArgument, Sendable {
    case rule, ruleId = "rule_id"
}

/// `retrieve`: does a rule prior added to the Query raise attention on the right keys? (training-free priors, with
/// controls; a checkpoint trained with a rule prior, or a language VAE, with its own trained priors.)
public enum RetrieveVerb: Verb {
    public static let commandPath = ["retrieve"]
    public static let abstract = "Does a rule prior in the Query raise attention on the right keys? (training-free priors, with controls)"
    public static let discussion = """
        For each injection layer, site (q; k and v as controls) and --alpha, adds α·Δ to every position, where Δ is the \
        example's rule's mean activation at that site minus the mean over all rules, and measures: exact match and \
        per-token accuracy (teacher-forced argmax, which equals greedy exact match), and per layer and head the attention \
        mass from each target position onto its source keys (the `sources` of the data), the best key's rank and the \
        attention entropy. Conditions: none, the rule's prior, a wrong rule's prior, a random vector of the prior's norm. \
        Every number has a 95% bootstrap interval over examples, overall and per rule (--seed seeds the random control \
        and the bootstrap, and with --task the data). \
        A checkpoint trained with a rule prior (`train --rule-prior COLUMN --inject SITE`) is measured with its own trained \
        rows instead (--layers, --sites, --alpha and --label do not apply): none, the rule's prior, a wrong rule's prior, \
        a random vector of the prior's norm per layer, and the prior moved to the other per-layer sites. \
        A language VAE (`rulelens vae train`) is measured with its latent injected as it was trained: z = 0, z from the \
        encoder, the rule's mean z (the prior), a wrong rule's mean z, and a random z of the rule mean's norm. \
        Any family whose blocks fire attn.hook_q/k/v and attn.hook_pattern is measured (gpt2, llama, qwen2; with grouped-query attention a key or value prior is n_kv_heads × d_head wide). Results add each condition by a \
        path-friendly name (by_condition.prior_q_1_a1.mass.mean, none) and the largest change of mass per kind and site \
        (max_mass_change.prior.q). With --out DIR, writes DIR/retrieve.h5 (mean mass [condition, layer, head], \
        summaries with intervals) and DIR/retrieve.svg (mass on source keys per condition).
        """
    public static let stepOutput = "retrieve.h5"

    public struct Arguments: VerbArguments {
        @Option(help: "Checkpoint folder (a `rulelens train` run, with or without a rule prior, or a `rulelens vae train` run).")
        public var checkpoint: InputPath
        @OptionGroup public var source: DataSourceOptions
        @Option(help: "Part of a data folder or of --task's data.") public var part: DataPart = .test
        @Option(help: "The rule label.") public var label: RuleLabel = .rule
        @Option(parsing: .unconditionalSingleValue, help: "Layer to add the prior at (repeatable; default: every layer).") public var layers: [Int] = []
        @Option(help: "Site (repeatable): q (the hypothesis), k, v (controls).") public var sites: [PriorSite] = [.q, .k, .v]
        @Option(parsing: .unconditionalSingleValue, help: "Scale of the prior (repeatable; finite).") public var alpha: [Float] = [0.5, 1, 2]
        @OptionGroup public var resampling: BootstrapOptions
        @Option(parsing: .unconditional, help: "Examples per forward pass.") public var batch: Int = 32
        @Option(parsing: .unconditional, help: "Use at most this many examples (the first N).") public var limit: Int?
        @Option(help: "Folder for retrieve.h5 and retrieve.svg (created; existing files are kept unless --force).")
        public var out: String?
        @OptionGroup(title: "Runtime") public var runtime: RuntimeOptions

        public init() {}

        public func validate() throws {
            if batch < 1 { throw ValidationError("--batch is \(batch); pass a positive number, e.g. --batch 32") }
            if let limit, limit < 1 { throw ValidationError("--limit is \(limit); pass a positive number of examples (or leave it out for all)") }
            if layers.contains(where: { $0 < 0 }) { throw ValidationError("--layers has a negative layer; pass layers 0, 1, … (or leave it out for all)") }
            if sites.isEmpty { throw ValidationError("no --sites; pass e.g. --sites q --sites k --sites v") }
            if alpha.isEmpty { throw ValidationError("no --alpha; pass e.g. --alpha 1") }
            if let bad = alpha.first(where: { !$0.isFinite }) { throw ValidationError("--alpha \(bad) is not finite; pass finite scales such as --alpha 0.5 --alpha 1") }
        }
    }

    public struct Result: Encodable {
        /// The retrieval report (examples, layers, heads, prior norms, every condition with overall and per-rule summaries).
        public var report: [String: JSONValue]
        /// Each condition's overall summary by name (`none`, `prior_q_1_a1`, …).
        public var byCondition: [String: JSONValue]
        /// The largest mean change of mass on the source keys per kind (prior, wrong_prior, random, …) and site.
        public var maxMassChange: [String: [String: Double]]
        public var table: String

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: ReportKey.self)
            try c.encode(report: report)
            try c.encode(byCondition, forKey: ReportKey("by_condition"))
            try c.encode(maxMassChange, forKey: ReportKey("max_mass_change"))
        }
    }

    public static func quick(_ o: inout QuickOptions) {
        o.cap("limit", 48)
        o.cap("bootstrap", 50)
        if o.values["alpha"] == nil { o.set("alpha", "1") }
    }

    public static func run(_ a: Arguments, _ ctx: VerbContext) throws -> VerbOutcome<Result> {
        try inOutFolder(a.out) { try run(a, ctx, inFolder: ()) }
    }

    static func run(_ a: Arguments, _ ctx: VerbContext, inFolder: Void) throws -> VerbOutcome<Result> {
        var h5: String? = nil, svg: String? = nil
        if let out = a.out {
            h5 = try outputFile(out, "retrieve.h5", force: a.runtime.force)
            svg = try outputFile(out, "retrieve.svg", force: a.runtime.force)
        }
        var options = RetrievalOptions()
        options.layers = a.layers.isEmpty ? nil : a.layers
        options.sites = a.sites; options.alphas = a.alpha
        options.bootstrap = a.resampling.bootstrap; options.seed = a.source.generated.seed ?? 0; options.batchSize = a.batch
        let loaded = try a.source.source().load(a.part)
        var examples = loaded.examples
        if let limit = a.limit, limit < examples.count { examples = Array(examples.prefix(limit)) }
        let dir = a.checkpoint.path
        let model = try ModelFolder.load(dir, allowVAE: true, rulePriors: true)
        func labelValues() throws -> [String] {
            try examples.enumerated().map { i, e in
                guard let v = a.label == .rule ? e.rule : e.ruleId.map(String.init) else {
                    throw RuleLensError("example \(i + 1) of \(loaded.origin) has no `\(a.label.rawValue)`",
                                        fix: "use data with a rule label per example" + (a.label == .ruleId ? ", or --label rule" : ""))
                }
                return v
            }
        }
        func charTokenizer() throws -> CharTokenizer {
            guard let t = try Jobs.tokenizer(checkpoint: dir, vocabSize: model.vocabSize) as? CharTokenizer else {
                throw RuleLensError("\(dir) has a BPE tokenizer; the retrieval test reads character checkpoints",
                                    fix: "use a checkpoint trained by `rulelens train`")
            }
            return t
        }
        let report: RetrievalReport
        if let prior = model as? RulePriorGPT {
            // Trained with a rule prior: its own table, column and site; the conditions of RulePriorRetrieval.
            let path = FileManager.default.fileExists(atPath: loaded.origin) ? loaded.origin : nil
            let values = try RulePriorData.values(column: prior.spec.column, examples: examples, path: path)
            report = try RulePriorRetrieval.run(model: prior, tokenizer: try charTokenizer(), examples: examples, values: values,
                                                source: loaded.origin, options: options, progress: ctx.progress)
        } else if let vae = model as? VAELanguageModel {
            // A language VAE: z = 0, z from the encoder, the rule's mean z, a wrong rule's, random of equal norm.
            report = try VAEPriorRetrieval.run(vae: vae.vae, examples: examples, values: try labelValues(), source: loaded.origin,
                                               options: options, progress: ctx.progress)
        } else {
            report = try RetrievalJob.run(model: model, tokenizer: try charTokenizer(), examples: examples,
                                          labels: Labels(strings: try labelValues()), source: loaded.origin, options: options,
                                          progress: ctx.progress)
        }
        if let h5 { try RetrievalJob.writeHDF5(report, to: h5) }
        if let svg { try AtomicFile.write(Data(RetrievalJob.plot(report).utf8), to: svg) }
        let json = try JSONValue.report(try RetrievalJob.json(report))
        var byCondition: [String: JSONValue] = [:]
        var maxChange: [String: [String: Double]] = [:]
        for c in json["conditions"]?.array ?? [] {
            let kind = (c["kind"]?.string ?? "").replacingOccurrences(of: "-", with: "_")
            let site = c["site"]?.string ?? "", layer = Int(c["layer"]?.number ?? 0)
            let alpha = RetrieveVerb.format(c["alpha"]?.number ?? 0).replacingOccurrences(of: ".", with: "_")
            // A trained prior moved to another site is named by that site (moved_to_key): every moved condition
            // shares site q, layer 0 and α 1, so the generic name would collide.
            let name = kind == "none" ? "none" : c["moved_to"]?.string.map { "moved_to_\($0)" } ?? "\(kind)_\(site)_\(layer)_a\(alpha)"
            byCondition[name] = c["overall"] ?? .null
            if kind != "none", let mean = c["overall"]?["mass_change"]?["mean"]?.number {
                maxChange[kind, default: [:]][site] = max(maxChange[kind]?[site] ?? -.infinity, mean)
            }
        }
        let table = RetrievalJob.table(report)
        ctx.log(table.split(separator: "\n").prefix(12).map { "  " + $0 }.joined(separator: "\n"))
        return VerbOutcome(Result(report: json, byCondition: byCondition, maxMassChange: maxChange, table: table),
                           figures: svg == nil ? [] : [VerbFigure(title: "Retrieval: attention mass on source keys by condition", file: "retrieve.svg")],
                           files: h5 == nil ? [] : ["retrieve.h5"])
    }

    /// α in a condition's name as the spec runner prints numbers: 1, 0.5000 (so `prior_q_1_a0_5000`).
    static func format(_ d: Double) -> String {
        if d == d.rounded() && abs(d) < 1e12 { return String(Int64(d)) }
        if abs(d) >= 1e5 || abs(d) < 1e-3 { return String(format: "%.3e", d) }
        return String(format: "%.4f", d)
    }

    public static func lines(_ result: Result, _ a: Arguments) -> [String] {
        result.table.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) + (a.out.map { ["wrote into \($0)"] } ?? [])
    }
}
