import Foundation
import RuleLensJobs

/// `ablate`: each layer's attention and MLP output ablated in turn (as `rulelens ablate`). Results add, per
/// component, the change of each metric per layer (`by_component.mlp.accuracy_change` = [layer 0, 1, …]) so
/// expectations can set FFN against attention.
public enum AblateStep: RunStep {
    public static let kind = "ablate"
    public static let summary = "Ablate each layer's attention / MLP output (zero, mean, resample): accuracy, loss, logit difference with bootstrap intervals, as `rulelens ablate`."
    public static let options: [StepOption] = [
        .init("checkpoint", .path, "checkpoint folder", required: true),
        .init("data", .path, "a `data` folder or JSONL file", required: true),
        .init("part", .choice(["train", "test", "all"]), "part of a data folder (default test)"),
        .init("components", .list, "attn, mlp (default both)"),
        .init("layers", .list, "layers (default all)"),
        .init("heads", .bool, "also each head"),
        .init("method", .choice(["zero", "mean", "resample"]), "ablation (default zero)"),
        .init("mean-from", .path, "data (or an HDF5 dump) whose activations give the mean/resample values"),
        .init("positions", .string, "all, answer (the last prompt position) or K (default all)"),
        .init("stack", .choice(["decoder", "encoder"]), "whose blocks: the model's (default) or a VAE's encoder"),
        .init("label", .string, "per-label breakdown column"),
        .init("separability-at", .string, "also measure the label's separability at this site in every run"),
        .init("bootstrap", .int, "bootstrap resamples"),
        .init("seed", .int, "seed"),
    ]

    public static func quick(_ o: inout StepOptions) { o.cap("bootstrap", 50) }

    public static func commandLine(_ o: StepOptions, dir: String) -> String {
        "rulelens ablate " + o.flags(["checkpoint", "data", "part", "components", "layers", "heads", "method", "mean-from", "positions",
                                      "stack", "label", "separability-at", "bootstrap", "seed"],
                                     types: ["heads": .bool]) + " --json --out \(dir)/ablate.h5 --plot \(dir)/ablate.svg"
    }

    public static func run(_ o: StepOptions, _ ctx: StepContext) throws -> StepOutcome {
        var a = AblateOptions(checkpoint: try o.requiredString("checkpoint"), data: DataSource(file: try o.requiredString("data")))
        a.part = DataPart(rawValue: try o.string("part", default: "test")) ?? .test
        if let c = try o.list("components") {
            a.components = try c.map { name in
                guard let v = AblationCell.Component(rawValue: name), v != .head else {
                    throw RuleLensError(o.problem("components", "\(name) is not attn or mlp"), fix: "write components: [attn, mlp]")
                }
                return v
            }
        }
        if let l = try o.list("layers") {
            a.layers = try l.map { s in
                guard let v = Int(s) else { throw RuleLensError(o.problem("layers", "\(s) is not an integer"), fix: "write layers: [0, 1]") }
                return v
            }
        }
        a.heads = try o.bool("heads")
        a.method = AblationMethod(rawValue: try o.string("method", default: "zero")) ?? .zero
        a.meanFrom = try o.string("mean-from")
        if let p = try o.string("positions") {
            do { a.positions = try AblateOptions.positions(p) } catch let e as RuleLensError { throw RuleLensError(o.problem("positions", e.problem), fix: e.fix) }
        }
        if let st = try o.string("stack") { a.stack = try AblateOptions.stackPrefix(st) }
        a.separabilityAt = try o.string("separability-at")
        a.label = try o.string("label")
        if let b = try o.int("bootstrap") { a.bootstrap = b }
        a.seed = UInt64(max(0, try o.int("seed", default: 0)))
        a.out = ctx.path("ablate.h5"); a.plot = ctx.path("ablate.svg"); a.force = true; a.quiet = !ctx.progress.isEnabled
        let report = try AblateJob.run(a)
        var json = report.json
        var byComponent: [String: [String: [Double]]] = [:]
        let overall = json["overall"] as? [String: Any] ?? [:]
        for cell in overall["cells"] as? [[String: Any]] ?? [] where cell["head"] is NSNull || cell["head"] == nil {
            guard let component = cell["component"] as? String, let effects = cell["effects"] as? [String: Any] else { continue }
            for (metric, e) in effects {
                let change = ((e as? [String: Any])?["change"] as? [String: Any])?["value"]
                byComponent[component, default: [:]][metric + "_change", default: []].append((change as? NSNumber)?.doubleValue ?? .nan)
            }
        }
        json["by_component"] = byComponent
        ctx.log(report.table.split(separator: "\n").prefix(14).map { "  " + $0 }.joined(separator: "\n"))
        let figures = report.written.filter { $0.hasSuffix(".svg") }.map { StepFigure(title: "Ablation effects", file: ($0 as NSString).lastPathComponent) }
        return StepOutcome(results: RunValue(any: json), figures: figures, files: ["ablate.h5"])
    }
}
