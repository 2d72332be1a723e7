import ArgumentParser
import Foundation
import RuleLensJobs
import RuleLensInterventions
import RuleLensModel
import RuleLensNumerics

/// `patch`: activation patching over layers × positions (× heads), on clean/corrupted pairs built from data
/// (as `rulelens data pairs --one-length`) or given as two JSONL files.
public enum PatchVerb: Verb {
    public static let commandPath = ["patch"]
    public static let abstract = "Activation patching (TransformerLens's get_act_patch_*): clean values into corrupted runs, one site and position (or head) at a time."
    public static let discussion = """
        Pairs are built from --data/--task (the corrupted counterparts of `rulelens data pairs --one-length`, written \
        into --out DIR/pairs/) or given as --clean and --corrupt (line i of one is the counterpart of line i of the \
        other). Loads every family (gpt2, llama, qwen2, a language VAE's decoder). Results add per site each layer's \
        largest normalised recovery over positions (by_site.mlp_out.layer_max = [layer 0, 1, …]; for z the largest over \
        heads) and its value at the last prompt position (by_site.attn_out.last). With --out DIR, writes DIR/patch.h5 \
        (the matrices) and the heatmaps DIR/patch.svg (one site) or DIR/patch.SITE.svg.
        """
    public static let stepOutput = "patch.h5"

    public struct Arguments: VerbArguments {
        @Option(help: "Checkpoint folder (a `rulelens train` run, or a Hugging Face gpt2/llama/qwen2 folder).")
        public var checkpoint: InputPath
        @OptionGroup public var source: DataSourceOptions
        @Option(help: "With --data/--task: the part the pairs are built from.") public var part: DataPart = .test
        @Option(parsing: .unconditional, help: "With --data/--task: keep at most this many pairs.") public var limit: Int = 100
        @Option(help: "Instead of --data/--task: JSONL of clean examples (prompt, target).") public var clean: InputPath?
        @Option(help: "Instead of --data/--task: JSONL of corrupted counterparts, line by line (`rulelens data pairs`).")
        public var corrupt: InputPath?
        @Option(help: "Site to patch (repeatable).") public var sites: [PatchSite] = [.residPre, .residMid, .attnOut, .mlpOut, .z]
        @Option(parsing: .unconditional, help: "Pairs per forward.") public var batch: Int = 512
        @Option(help: "Folder for patch.h5, the heatmaps and (with --data/--task) pairs/ (created; existing files are kept unless --force).")
        public var out: String?
        @OptionGroup(title: "Runtime") public var runtime: RuntimeOptions

        public init() {}

        public func validate() throws {
            let given = source.data != nil || source.generated.task != nil
            if given && (clean != nil || corrupt != nil) {
                throw ValidationError("both --data/--task and --clean/--corrupt were given; build the pairs from --data (or --task), or give --clean and --corrupt, not both")
            }
            if !given && (clean == nil || corrupt == nil) {
                throw ValidationError("no pairs: pass --data FILE|DIR (or --task NAME) to build them, or both --clean FILE and --corrupt FILE")
            }
            if limit < 1 { throw ValidationError("--limit is \(limit); pass a positive number of pairs, e.g. --limit 100") }
            if batch < 1 { throw ValidationError("--batch is \(batch); pass a positive number, e.g. --batch 512") }
            if sites.isEmpty { throw ValidationError("no --sites; pass e.g. --sites resid_pre --sites attn_out") }
            if Set(sites).count != sites.count { throw ValidationError("--sites names a site twice; name each site once") }
        }
    }

    public struct SiteSummary: Codable, Sendable {
        /// Each layer's largest normalised value over its columns (positions; heads for z).
        public var layerMax: [Double?]
        /// Each layer's value at the last prompt position (not for z).
        public var last: [Double?]?
        enum CodingKeys: String, CodingKey { case layerMax = "layer_max", last }
    }

    public struct Result: Encodable {
        /// The patching report (pairs, positions, per site the logit difference and normalised matrices).
        public var report: [String: JSONValue]
        public var bySite: [String: SiteSummary]
        /// Pairs built from the data and examples left out for want of a counterpart (null when pairs were given).
        public var pairsBuilt: Int?
        public var pairsSkipped: Int?
        public var table: String

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: ReportKey.self)
            try c.encode(report: report)
            try c.encode(bySite, forKey: ReportKey("by_site"))
            try c.encode(pairsBuilt, forKey: ReportKey("pairs_built"))
            try c.encode(pairsSkipped, forKey: ReportKey("pairs_skipped"))
        }
    }

    public static func quick(_ o: inout QuickOptions) { o.cap("limit", 16) }

    public static func run(_ a: Arguments, _ ctx: VerbContext) throws -> VerbOutcome<Result> {
        try inOutFolder(a.out) { try run(a, ctx, inFolder: ()) }
    }

    static func run(_ a: Arguments, _ ctx: VerbContext, inFolder: Void) throws -> VerbOutcome<Result> {
        var files: [String] = []
        let clean: String, corrupt: String
        var built: Int? = nil, skipped: Int? = nil
        var scratch: String? = nil
        defer { if let scratch { try? FileManager.default.removeItem(atPath: scratch) } }
        if let c = a.clean, let d = a.corrupt {
            clean = c.path; corrupt = d.path
        } else {
            let src = try a.source.source()
            let loaded = try src.load(a.part)
            let seed = a.source.generated.seed ?? loaded.meta?.seed ?? 0
            let made = try PairsJob.make(loaded, task: src.spec?.task, seed: seed, oneLength: true, limit: a.limit)
            let dir: String
            if let out = a.out { dir = (out as NSString).appendingPathComponent("pairs") }
            else {
                dir = (NSTemporaryDirectory() as NSString).appendingPathComponent("rulelens-pairs-\(getpid())")
                scratch = dir
            }
            let write = { try PairsJob.write(made, to: dir, source: loaded.origin, seed: seed, force: a.runtime.force || scratch != nil) }
            // Scratch pairs are published at once; pairs in --out are outputs, published with the rest (read meanwhile
            // from their temporary names).
            if scratch != nil { try OutputCommit.immediately(write) } else { try write() }
            clean = OutputCommit.readable((dir as NSString).appendingPathComponent("clean.jsonl"))
            corrupt = OutputCommit.readable((dir as NSString).appendingPathComponent("corrupt.jsonl"))
            built = made.clean.count; skipped = made.skipped
            if a.out != nil { files += ["pairs/clean.jsonl", "pairs/corrupt.jsonl", "pairs/pairs.json"] }
        }
        var p = PatchOptions(checkpoint: a.checkpoint.path, clean: clean, corrupt: corrupt)
        p.sites = a.sites; p.batchSize = a.batch
        if let out = a.out {
            p.out = try outputFile(out, "patch.h5", force: a.runtime.force)
            p.plot = (out as NSString).appendingPathComponent("patch.svg")
        }
        p.force = a.runtime.force; p.quiet = !ctx.progress.isEnabled
        let report = try PatchJob.run(p)
        var json = try JSONValue.report(report.json)
        if built != nil {   // the pairs are the verb's own output: named relative to --out, so the result does not depend on it
            json["clean_file"] = .string("pairs/clean.jsonl"); json["corrupt_file"] = .string("pairs/corrupt.jsonl")
        }
        var bySite: [String: SiteSummary] = [:]
        if case .object(let sites)? = json["sites"] {
            for (site, value) in sites {
                guard let rows = value["normalized"]?.array else { continue }
                let numbers = rows.map { ($0.array ?? []).map(\.number) }
                bySite[site] = SiteSummary(layerMax: numbers.map { $0.compactMap { $0 }.max() },
                                           last: site == PatchSite.z.rawValue ? nil : numbers.map { $0.last ?? nil })
            }
        }
        ctx.log(report.table.split(separator: "\n").prefix(14).map { "  " + $0 }.joined(separator: "\n"))
        var figures: [VerbFigure] = []
        for path in report.written {
            let file = (path as NSString).lastPathComponent
            if file.hasSuffix(".svg") {
                let site = file.split(separator: ".").dropFirst().first.map(String.init) ?? ""
                figures.append(VerbFigure(title: "Activation patching" + (site == "svg" || site.isEmpty ? "" : ", \(site)"), file: file))
            } else if file == "patch.h5" { files.insert(file, at: 0) }
        }
        return VerbOutcome(Result(report: json, bySite: bySite, pairsBuilt: built, pairsSkipped: skipped, table: report.table),
                           figures: figures, files: files)
    }

    public static func lines(_ result: Result, _ a: Arguments) -> [String] {
        (result.pairsBuilt.map { ["\($0) pairs built (\(result.pairsSkipped ?? 0) examples without a counterpart left out)"] } ?? [])
            + result.table.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            + (a.out.map { ["wrote into \($0)"] } ?? [])
    }
}
