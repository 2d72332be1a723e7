import ArgumentParser
import Foundation
import RuleLensJobs
import RuleLensVerbs

/// Prints a report (table or JSON) and names the files written.
private func emit(_ report: ProbeReport, json: Bool) throws {
    print(json ? try report.jsonText() : report.table)
    for path in report.written { FileHandle.standardError.write(Data("wrote \(path)\n".utf8)) }
}

private func parsePart(_ part: String) throws -> DataPart {
    guard let p = DataPart(rawValue: part) else { throw RuleLensError("--part \(part) is not train, test or all", fix: "pass --part train, test or all") }
    return p
}

/// `rulelens ablate`: FFN-versus-attention ablations per layer (and head), with intervals, per rule.
struct AblateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ablate",
        abstract: "Ablate each layer's attention / MLP output (and each head): accuracy, loss, logit difference with bootstrap intervals, per label.")
    @Option(help: "Checkpoint folder.") var checkpoint: String
    @OptionGroup var source: DataSourceOptions
    @Option(help: "With --task or a data directory: train, test or all.") var part: String = "test"
    @Option(help: "Components: attn, mlp or attn,mlp.") var components: String = "attn,mlp"
    @Option(help: "Layers: all, or a list such as 0,2.") var layers: String = "all"
    @Flag(help: "Also ablate each head (its hook_z slice).") var heads = false
    @Option(help: "Whose blocks: decoder (the model's own; default) or encoder (a language VAE's encoder, with --separability-at latent.hook_mu).") var stack: String = "decoder"
    @Option(help: "zero, mean (mean over --mean-from at each position) or resample (another example's value, seeded).") var method: String = "zero"
    @Option(help: "JSONL (or data directory) whose clean activations give the mean/resample values (default: the data), or an HDF5 dump of them (`rulelens dump --positions all` with the ablated sites).") var meanFrom: String?
    @Option(help: "Positions ablated: all, answer (the last prompt position) or K (K<0 counts back from the prompt's end).") var positions: String = "all"
    @Option(help: "Break every result down by this column (rule, rule_id, a, b, answer, target).") var label: String?
    @Option(help: "Bootstrap resamples for the 95% intervals (0: none).") var bootstrap: Int = 1000
    @Option(help: "Seed (bootstrap, resample donors, probe folds).") var seed: UInt64 = 0
    @Option(help: "Also measure the label's separability (silhouette, k-NN, linear probe) at this site in every run.") var separabilityAt: String?
    @Flag(help: "Print JSON instead of the tables.") var json = false
    @Option(help: "Write per-example results and summaries to this HDF5 file.") var out: String?
    @Option(help: "Write the layer × component (× head) heatmap here (SVG).") var plot: String?
    @Option(help: "Metric whose change --plot draws: accuracy, loss, logit_diff.") var plotMetric: String = "accuracy"
    @Flag(help: "Replace existing --out / --plot files.") var force = false
    @Flag(help: "No progress line.") var quiet = false
    @Option(help: "Threads (default: all cores).") var threads: Int?

    func run() throws {
        if let threads { Parallel.configure(threads: threads) }
        var o = AblateOptions(checkpoint: checkpoint, data: try source.source())
        o.part = try parsePart(part)
        o.components = try components.split(separator: ",").map { name in
            guard let c = AblationCell.Component(rawValue: String(name)), c != .head else {
                throw RuleLensError("unknown component '\(name)'", fix: "pass --components attn, mlp or attn,mlp (heads: --heads)")
            }
            return c
        }
        if layers != "all" {
            o.layers = try layers.split(separator: ",").map { s in
                guard let l = Int(s.trimmingCharacters(in: .whitespaces)) else { throw RuleLensError("--layers '\(layers)' is not all or a list of integers", fix: "pass e.g. --layers 0,2") }
                return l
            }
        }
        o.heads = heads
        o.stack = try AblateOptions.stackPrefix(stack)
        guard let m = AblationMethod(rawValue: method) else { throw RuleLensError("--method \(method) is not zero, mean or resample", fix: "pass --method zero, mean or resample") }
        o.method = m
        o.meanFrom = meanFrom
        o.positions = try AblateOptions.positions(positions)
        o.label = label; o.bootstrap = bootstrap; o.seed = seed; o.separabilityAt = separabilityAt
        o.out = out; o.plot = plot; o.force = force; o.quiet = quiet
        guard let pm = AblationMetric(rawValue: plotMetric) else { throw RuleLensError("--plot-metric \(plotMetric) is unknown", fix: "pass accuracy, loss or logit_diff") }
        o.plotMetric = pm
        try emit(try AblateJob.run(o), json: json)
    }
}

/// `rulelens patch`: activation patching over layers × positions (× heads).
struct PatchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "patch",
        abstract: "Activation patching (TransformerLens's get_act_patch_*): clean values into corrupted runs, one site and position (or head) at a time.")
    @Option(help: "Checkpoint folder.") var checkpoint: String
    @Option(help: "JSONL of clean examples (prompt, target).") var clean: String
    @Option(help: "JSONL of corrupted counterparts, line by line (`rulelens data pairs`).") var corrupt: String
    @Option(help: "Sites: resid_pre, resid_mid, attn_out, mlp_out, z (comma-separated).") var sites: String = "resid_pre,resid_mid,attn_out,mlp_out,z"
    @Flag(help: "Print JSON instead of the tables.") var json = false
    @Option(help: "Write the matrices to this HDF5 file.") var out: String?
    @Option(help: "Write heatmaps here (SVG; one per site, FILE.SITE.svg, when several).") var plot: String?
    @Option(help: "Pairs per forward.") var batch: Int = 512
    @Flag(help: "Replace existing --out / --plot files.") var force = false
    @Flag(help: "No progress line.") var quiet = false
    @Option(help: "Threads (default: all cores).") var threads: Int?

    func run() throws {
        if let threads { Parallel.configure(threads: threads) }
        var o = PatchOptions(checkpoint: checkpoint, clean: clean, corrupt: corrupt)
        o.sites = try sites.split(separator: ",").map { try PatchSite.named(String($0).trimmingCharacters(in: .whitespaces)) }
        guard batch >= 1 else { throw RuleLensError("--batch \(batch) must be at least 1", fix: "pass e.g. --batch 512") }
        o.batchSize = batch; o.out = out; o.plot = plot; o.force = force; o.quiet = quiet
        try emit(try PatchJob.run(o), json: json)
    }
}

/// `rulelens lens`: the logit lens and direct logit attribution.
struct LensCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "lens",
        abstract: "Logit lens (each resid_pre/resid_mid through ln_final and the unembedding) and direct logit attribution, per label.")
    @Option(help: "Checkpoint folder.") var checkpoint: String
    @OptionGroup var source: DataSourceOptions
    @Option(help: "With --task or a data directory: train, test or all.") var part: String = "test"
    @Option(help: "Break results down by this column (rule, rule_id, a, b, answer, target).") var label: String?
    @Flag(help: "Print JSON instead of the tables.") var json = false
    @Option(help: "Write the lens logits, probabilities, ranks and attributions to this HDF5 file.") var out: String?
    @Option(help: "Write the lens heatmap here (SVG) and the attribution heatmap beside it (FILE.dla.svg).") var plot: String?
    @Flag(help: "Replace existing --out / --plot files.") var force = false
    @Flag(help: "No progress line.") var quiet = false

    func run() throws {
        var o = LensOptions(checkpoint: checkpoint, data: try source.source())
        o.part = try parsePart(part); o.label = label; o.out = out; o.plot = plot; o.force = force; o.quiet = quiet
        try emit(try LensJob.run(o), json: json)
    }
}

/// `rulelens data pairs`: clean/corrupted pairs for patching.
struct DataPairs: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pairs",
        abstract: "Corrupted counterparts for `rulelens patch`: operand tasks change one operand (the first answer token changes); rule tasks keep the premises under another rule (syllogism: another form on the same terms; math-derivation: another operator on the same expression; explanatory: another inference type about the same subject).")
    @OptionGroup var source: DataSourceOptions
    @Option(help: "With --task or a data directory: train, test or all.") var part: String = "test"
    @Option(help: "Output folder: clean.jsonl, corrupt.jsonl, pairs.json.") var out: String
    @Flag(help: "Keep only pairs of the most common prompt length (patching needs one length).") var oneLength = false
    @Option(help: "Keep at most this many pairs.") var limit: Int?
    @Flag(help: "Replace existing files.") var force = false

    func run() throws {
        let src = try source.source()
        let loaded = try src.load(try parsePart(part))
        let result = try PairsJob.make(loaded, task: src.spec?.task, seed: src.spec?.seed ?? source.generated.seed ?? 0, oneLength: oneLength, limit: limit)
        try PairsJob.write(result, to: out, source: loaded.origin, seed: source.generated.seed ?? 0, force: force)
        print("wrote \(out): \(result.clean.count) pairs (clean.jsonl, corrupt.jsonl, pairs.json); \(result.skipped) examples without a counterpart left out")
    }
}
