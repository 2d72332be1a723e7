import Foundation
import RuleLensJobs

/// `dump`: record hook sites to HDF5 (as `rulelens dump`); `${ID}` is the file.
public enum DumpStep: RunStep {
    public static let kind = "dump"
    public static let summary = "Record hook sites of a checkpoint on a data part into HDF5 (acts.h5), as `rulelens dump`."
    public static let output = "acts.h5"
    public static let options: [StepOption] = [
        .init("checkpoint", .path, "checkpoint folder", required: true),
        .init("data", .path, "a `data` step's folder or a JSONL file", required: true),
        .init("part", .choice(["train", "test", "all"]), "part of a data folder (default test)"),
        .init("hooks", .list, "hook names or patterns (TransformerLens names)", required: true),
        .init("positions", .string, "all, last, answer or an index (default all)"),
        .init("batch", .int, "examples per forward pass"),
        .init("limit", .int, "dump the first N examples only"),
    ]

    public static func quick(_ o: inout StepOptions) { o.cap("limit", 100) }

    public static func commandLine(_ o: StepOptions, dir: String) -> String {
        "rulelens dump " + o.flags(["checkpoint", "data", "part", "hooks", "positions", "batch"]) + " --out \(dir)/\(output)"
    }

    public static func run(_ o: StepOptions, _ ctx: StepContext) throws -> StepOutcome {
        let data = try o.requiredString("data"), part = try o.string("part", default: "test")
        var loaded = try DataSource(file: data).load(DataPart(rawValue: part) ?? .test)
        if let limit = try o.int("limit"), limit < loaded.examples.count { loaded.examples = Array(loaded.examples.prefix(limit)) }
        var d = DumpOptions(checkpoint: try o.requiredString("checkpoint"), examples: loaded.examples, sourceData: "\(loaded.origin)",
                            hooks: try o.list("hooks") ?? [], out: ctx.path(output))
        d.positions = try o.string("positions", default: "all")
        d.batch = try o.int("batch", default: 32)
        d.force = true
        d.progress = ctx.progress.isEnabled
        d.seed = Int(loaded.meta?.seed ?? 0)
        let s = try Jobs.dump(d)
        return StepOutcome(results: RunValue(any: ["examples": s.examples, "sites": s.sites.count, "teacher_forced_accuracy": s.accuracy,
                                                   "megabytes": Double(s.activationBytes) / 1e6]),
                           files: [output])
    }
}
