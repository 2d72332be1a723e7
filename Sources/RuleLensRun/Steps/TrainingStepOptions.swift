import Foundation
import RuleLensJobs

/// The shape and schedule options of the hand-written `vae-train` step (the `train` step is a verb, declared in
/// RuleLensVerbs/Train.swift). Goes when `vae-train` becomes a verb.
enum TrainingStepOptions {
    static let options: [StepOption] = [
        .init("layers", .int, "blocks"), .init("heads", .int, "heads"), .init("d-model", .int, "width"),
        .init("d-mlp", .int, "MLP width"), .init("ctx", .int, "context length"),
        .init("steps", .int, "optimizer steps"), .init("batch", .int, "examples per step"), .init("lr", .double, "peak learning rate"),
        .init("warmup", .int, "warm-up steps"), .init("weight-decay", .double, "AdamW weight decay"),
        .init("grad-clip", .double, "gradient-norm clip"), .init("seed", .int, "initialisation and data-order seed"),
        .init("save-every", .int, "checkpoint every N steps"),
    ]
}

extension StepOptions {
    /// The `data:` option of a training step: a data folder (its train.jsonl, and test.jsonl for evaluation) or one
    /// JSONL file (no test part).
    func trainingData() throws -> (train: String, test: String?) {
        let data = try requiredString("data")
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: data, isDirectory: &isDir), isDir.boolValue else { return (data, nil) }
        return ((data as NSString).appendingPathComponent("train.jsonl"), (data as NSString).appendingPathComponent("test.jsonl"))
    }

    /// The options `vae-train` shares with `train` (shape, schedule, seed), each left at the job's default when absent.
    func readTrainingSettings<T: TrainingSettings>(into t: inout T) throws {
        if let v = try int("layers") { t.layers = v }
        if let v = try int("heads") { t.heads = v }
        if let v = try int("d-model") { t.dModel = v }
        if let v = try int("d-mlp") { t.dMLP = v }
        if let v = try int("ctx") { t.ctx = v }
        if let v = try int("steps") { t.steps = v }
        if let v = try int("batch") { t.batch = v }
        if let v = try double("lr") { t.lr = Float(v) }
        if let v = try int("warmup") { t.warmup = v }
        if let v = try double("weight-decay") { t.weightDecay = Float(v) }
        if let v = try double("grad-clip") { t.gradClip = Float(v) }
        if let v = try int("seed") { t.seed = UInt64(max(0, v)) }
    }
}
