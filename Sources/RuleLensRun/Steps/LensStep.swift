import Foundation
import RuleLensJobs

/// `lens`: the logit lens and direct logit attribution at the last prompt position (as `rulelens lens`). Results
/// add each layer's direct attribution of the attention and of the MLP output (`dla.attn` and `dla.mlp` =
/// [layer 0, 1, …], mean over examples of their share of logit[answer] − logit[best other]) and the lens's top-1
/// accuracy and p(answer) per residual stage (`stage.0_mid.accuracy`), so expectations can ask which component
/// writes the answer and from which layer on the residual stream already holds it.
public enum LensStep: RunStep {
    public static let kind = "lens"
    public static let summary = "Logit lens per residual stage and direct logit attribution per component at the answer position, per label, as `rulelens lens`."
    public static let options: [StepOption] = [
        .init("checkpoint", .path, "checkpoint folder", required: true),
        .init("data", .path, "a `data` folder or JSONL file", required: true),
        .init("part", .choice(["train", "test", "all"]), "part of a data folder (default test)"),
        .init("label", .string, "per-label breakdown column (rule, rule_id, a, b, answer, target)"),
        .init("limit", .int, "the first N examples only"),
    ]

    public static func quick(_ o: inout StepOptions) { o.cap("limit", 40) }

    public static func commandLine(_ o: StepOptions, dir: String) -> String {
        "rulelens lens " + o.flags(["checkpoint", "data", "part", "label"]) + " --json --out \(dir)/lens.h5 --plot \(dir)/lens.svg"
            + (o.has("limit") ? "  # the first \((try? o.string("limit")).flatMap { $0 } ?? "") examples" : "")
    }

    public static func run(_ o: StepOptions, _ ctx: StepContext) throws -> StepOutcome {
        let data = try o.requiredString("data"), part = DataPart(rawValue: try o.string("part", default: "test")) ?? .test
        var source = DataSource(file: data)
        if let limit = try o.int("limit") {
            // LensJob reads a data source: the first N examples go into the step's folder as JSONL.
            let loaded = try source.load(part)
            guard limit >= 1 else { throw RuleLensError(o.problem("limit", "\(limit) is below 1"), fix: "write limit: 100 or more") }
            let subset = ctx.path("examples.jsonl")
            try JSONL.writeExamples(Array(loaded.examples.prefix(limit)), to: subset)
            source = DataSource(file: subset)
        }
        var l = LensOptions(checkpoint: try o.requiredString("checkpoint"), data: source)
        l.part = part; l.label = try o.string("label")
        l.out = ctx.path("lens.h5"); l.plot = ctx.path("lens.svg"); l.force = true; l.quiet = !ctx.progress.isEnabled
        let report = try LensJob.run(l)
        var json = report.json
        let overall = json["overall"] as? [String: Any] ?? [:]
        let components = json["components"] as? [String] ?? []
        let attribution = doubles((overall["dla"] as? [String: Any])?["attribution"])
        var dla: [String: [Double]] = ["attn": [], "mlp": []]
        for (c, name) in components.enumerated() where c < attribution.count {
            let parts = name.split(separator: " ")
            if parts.count == 2, parts[0].hasPrefix("L"), let kind = dla.keys.first(where: { $0 == parts[1] }) { dla[kind]!.append(attribution[c]) }
        }
        json["dla"] = dla
        let lens = overall["lens"] as? [String: Any] ?? [:]
        let accuracy = doubles(lens["accuracy"]), probability = doubles(lens["probability"])
        var stage: [String: Any] = [:]
        for (s, name) in (json["stages"] as? [String] ?? []).enumerated() where s < accuracy.count && s < probability.count {
            stage[name] = ["accuracy": accuracy[s], "probability": probability[s]]
        }
        json["stage"] = stage
        ctx.log(report.table.split(separator: "\n").prefix(16).map { "  " + $0 }.joined(separator: "\n"))
        let figures = report.written.filter { $0.hasSuffix(".svg") }.map { path -> StepFigure in
            let file = (path as NSString).lastPathComponent
            return StepFigure(title: file.contains(".dla.") ? "Direct logit attribution per layer and component" : "Logit lens: p(answer) by residual stage",
                              file: file)
        }
        return StepOutcome(results: RunValue(any: json), figures: figures, files: ["lens.h5"])
    }

    static func doubles(_ v: Any?) -> [Double] {
        (v as? [Any] ?? []).map { ($0 as? Double) ?? ($0 as? NSNumber)?.doubleValue ?? .nan }
    }
}
