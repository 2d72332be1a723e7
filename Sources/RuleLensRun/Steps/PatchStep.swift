import Foundation
import RuleLensJobs
import RuleLensInterventions

/// `patch`: activation patching (as `rulelens data pairs` then `rulelens patch`). Pairs come from a data folder
/// (`data:` — clean/corrupted counterparts built by `data pairs --one-length`, written into the step's folder) or
/// from two JSONL files (`clean:` and `corrupt:`). Results add, per site, each layer's largest normalised recovery
/// over positions (`by_site.mlp_out.layer_max` = [layer 0, 1, …]; for `z` the largest over heads) and its value at
/// the last prompt position (`by_site.attn_out.last`), so expectations can set FFN against attention.
public enum PatchStep: RunStep {
    public static let kind = "patch"
    public static let summary = "Activation patching over layers × positions (× heads) on clean/corrupted pairs (built from a data folder, or given), as `rulelens data pairs` + `rulelens patch`."
    public static let options: [StepOption] = [
        .init("checkpoint", .path, "checkpoint folder", required: true),
        .init("data", .path, "a `data` folder or JSONL file: pairs are built from it (`data pairs --one-length`)"),
        .init("part", .choice(["train", "test", "all"]), "with data: part of a data folder (default test)"),
        .init("limit", .int, "with data: at most this many pairs (default 100)"),
        .init("seed", .int, "with data: seed of the counterpart choice"),
        .init("clean", .path, "instead of data: JSONL of clean examples"),
        .init("corrupt", .path, "instead of data: JSONL of corrupted counterparts, line by line"),
        .init("sites", .list, "resid_pre, resid_mid, attn_out, mlp_out, z (default all five)"),
        .init("batch", .int, "pairs per forward"),
    ]

    public static func quick(_ o: inout StepOptions) { o.cap("limit", 16) }

    public static func commandLine(_ o: StepOptions, dir: String) -> String {
        var pairs = ""
        if o.has("data") {
            pairs = "rulelens data pairs " + o.flags(["data", "part", "limit"]) + " --one-length --out \(dir)/pairs && "
        }
        let files = o.has("data") ? "--clean \(dir)/pairs/clean.jsonl --corrupt \(dir)/pairs/corrupt.jsonl" : o.flags(["clean", "corrupt"])
        return pairs + "rulelens patch --checkpoint \(StepOptions.quote((try? o.string("checkpoint")).flatMap { $0 } ?? "?")) \(files) "
            + o.flags(["sites", "batch"]) + " --json --out \(dir)/patch.h5 --plot \(dir)/patch.svg"
    }

    public static func run(_ o: StepOptions, _ ctx: StepContext) throws -> StepOutcome {
        let checkpoint = try o.requiredString("checkpoint")
        let clean: String, corrupt: String
        var pairCount: [String: Any] = [:]
        if let data = try o.string("data") {
            guard !o.has("clean"), !o.has("corrupt") else {
                throw RuleLensError(o.problem("data", "give either data or clean + corrupt, not both"), fix: "drop clean/corrupt, or drop data")
            }
            let loaded = try DataSource(file: data).load(DataPart(rawValue: try o.string("part", default: "test")) ?? .test)
            let seed = UInt64(max(0, try o.int("seed", default: Int(loaded.meta?.seed ?? 0))))
            let made = try PairsJob.make(loaded, task: nil, seed: seed, oneLength: true, limit: try o.int("limit", default: 100))
            let dir = ctx.path("pairs")
            try PairsJob.write(made, to: dir, source: loaded.origin, seed: seed, force: true)
            clean = (dir as NSString).appendingPathComponent("clean.jsonl")
            corrupt = (dir as NSString).appendingPathComponent("corrupt.jsonl")
            pairCount = ["pairs_built": made.clean.count, "pairs_skipped": made.skipped]
        } else {
            guard let c = try o.string("clean"), let d = try o.string("corrupt") else {
                throw RuleLensError("\(o.specPath) line \(o.line): step \(o.id) (patch) needs either data, or clean and corrupt",
                                    fix: "add `data: ${data}` (pairs are built from it), or `clean: FILE` and `corrupt: FILE`")
            }
            clean = c; corrupt = d
        }
        var p = PatchOptions(checkpoint: checkpoint, clean: clean, corrupt: corrupt)
        if let sites = try o.list("sites") {
            p.sites = try sites.map { name in
                guard let s = PatchSite(rawValue: name) else {
                    throw RuleLensError(o.problem("sites", "\(name) is not a patching site"), fix: "write sites: [resid_pre, resid_mid, attn_out, mlp_out, z]")
                }
                return s
            }
        }
        if let b = try o.int("batch") { p.batchSize = max(1, b) }
        p.out = ctx.path("patch.h5"); p.plot = ctx.path("patch.svg"); p.force = true; p.quiet = !ctx.progress.isEnabled
        let report = try PatchJob.run(p)
        var json = report.json
        json.merge(pairCount) { a, _ in a }
        json["by_site"] = summaries(json["sites"] as? [String: Any] ?? [:])
        ctx.log(report.table.split(separator: "\n").prefix(14).map { "  " + $0 }.joined(separator: "\n"))
        let figures = report.written.filter { $0.hasSuffix(".svg") }.map { path -> StepFigure in
            let file = (path as NSString).lastPathComponent
            let site = file.split(separator: ".").dropFirst().first.map(String.init) ?? ""
            return StepFigure(title: "Activation patching" + (site == "svg" || site.isEmpty ? "" : ", \(site)"), file: file)
        }
        return StepOutcome(results: RunValue(any: json), figures: figures,
                           files: ["patch.h5"] + (o.has("data") ? ["pairs/clean.jsonl", "pairs/corrupt.jsonl", "pairs/pairs.json"] : []))
    }

    /// Per site: each layer's largest normalised value over its columns (positions, or heads for z) and its value
    /// at the last column (the last prompt position; for z the last head, so left out there).
    static func summaries(_ sites: [String: Any]) -> [String: Any] {
        var out: [String: Any] = [:]
        for (site, value) in sites {
            guard let rows = (value as? [String: Any])?["normalized"] as? [[Any]] else { continue }
            let numbers = rows.map { $0.map { ($0 as? Double) ?? ($0 as? NSNumber)?.doubleValue ?? .nan } }
            var s: [String: Any] = ["layer_max": numbers.map { $0.filter { !$0.isNaN }.max() ?? .nan }]
            if site != PatchSite.z.rawValue { s["last"] = numbers.map { $0.last ?? .nan } }
            out[site] = s
        }
        return out
    }
}
