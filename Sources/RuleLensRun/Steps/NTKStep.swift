import Foundation
import RuleLensJobs

/// `ntk`: per-parameter-block gradient similarity within vs between rules (as `rulelens probe ntk`).
/// Results add each block kind's numbers per layer (`by_kind.ffn_in.ratio`) and overall means.
public enum NTKStep: RunStep {
    public static let kind = "ntk"
    public static let summary = "Gradient-kernel blocks: mean cosine of per-example gradients within vs between rules, per layer and block, as `rulelens probe ntk`."
    public static let options: [StepOption] = [
        .init("checkpoint", .path, "checkpoint folder", required: true),
        .init("data", .path, "a `data` folder (its part) or a JSONL file", required: true),
        .init("part", .choice(["train", "test"]), "part of a data folder (default test)"),
        .init("label", .string, "rule field: rule, rule_id, a or b"),
        .init("max-per-rule", .int, "examples per rule"),
        .init("loss-on", .choice(["target", "all"]), "loss positions"),
        .init("seed", .int, "seed of the draw"),
    ]

    public static func quick(_ o: inout StepOptions) { o.cap("max-per-rule", 4) }

    public static func commandLine(_ o: StepOptions, dir: String) -> String {
        "rulelens probe ntk " + o.flags(["checkpoint", "data", "label", "max-per-rule", "loss-on", "seed"]) + " --plot \(dir)/ntk.svg --out \(dir)/ntk.h5"
    }

    public static func run(_ o: StepOptions, _ ctx: StepContext) throws -> StepOutcome {
        var data = try o.requiredString("data")
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: data, isDirectory: &isDir), isDir.boolValue {
            data = (data as NSString).appendingPathComponent(try o.string("part", default: "test") + ".jsonl")
        }
        var n = NTKOptions(checkpoint: try o.requiredString("checkpoint"), data: data)
        if let v = try o.string("label") { n.label = v }
        if let v = try o.int("max-per-rule") { n.maxPerRule = v }
        if let v = try o.string("loss-on") { n.lossOn = LossOn(rawValue: v) ?? .target }
        n.seed = UInt64(max(0, try o.int("seed", default: 0)))
        n.out = ctx.path("ntk.h5"); n.plot = ctx.path("ntk.svg"); n.overwrite = true
        let report = try ProbeJob.ntk(n)
        var json = report.json
        var byKind: [String: [String: [Double]]] = [:]
        var ratios: [Double] = [], diffs: [Double] = []
        for b in json["blocks"] as? [[String: Any]] ?? [] {
            guard let kind = b["kind"] as? String else { continue }
            for key in ["within", "between", "ratio", "difference"] {
                if let v = (b[key] as? NSNumber)?.doubleValue { byKind[kind, default: [:]][key, default: []].append(v) }
            }
            if let r = (b["ratio"] as? NSNumber)?.doubleValue, r.isFinite { ratios.append(r) }
            if let d = (b["difference"] as? NSNumber)?.doubleValue { diffs.append(d) }
        }
        json["by_kind"] = byKind
        json["mean_ratio"] = ratios.isEmpty ? NSNull() : ratios.reduce(0, +) / Double(ratios.count)
        json["mean_difference"] = diffs.isEmpty ? NSNull() : diffs.reduce(0, +) / Double(diffs.count)
        json["example_indices"] = nil
        ctx.log(report.table.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
        return StepOutcome(results: RunValue(any: json), figures: [StepFigure(title: "Gradient similarity within − between rules", file: "ntk.svg")],
                           files: ["ntk.h5"])
    }
}
