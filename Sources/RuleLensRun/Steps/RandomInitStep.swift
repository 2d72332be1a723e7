import Foundation
import RuleLensJobs

/// `random-init`: an untrained checkpoint of the same shape — the baseline that shows what training added
/// (a probe that separates rules in a random network measures the input, not learning).
public enum RandomInitStep: RunStep {
    public static let kind = "random-init"
    public static let summary = "An untrained GPT-2 checkpoint (shape copied from a trained one, or given), the random-initialisation baseline."
    public static let options: [StepOption] = [
        .init("like", .path, "copy the shape (config.json) of this checkpoint, e.g. ${train}"),
        .init("layers", .int, "blocks"), .init("heads", .int, "heads"), .init("d-model", .int, "width"),
        .init("d-mlp", .int, "MLP width"), .init("ctx", .int, "context length"),
        .init("seed", .int, "initialisation seed"),
    ]

    public static func commandLine(_ o: StepOptions, dir: String) -> String {
        "rulelens train … --steps 0 equivalent: GPT(config" + ((try? o.string("like")).flatMap { $0 }.map { " of \($0)" } ?? "") + ", seed "
            + ((try? o.string("seed")).flatMap { $0 } ?? "0") + ") saved to \(dir)"
    }

    public static func run(_ o: StepOptions, _ ctx: StepContext) throws -> StepOutcome {
        var config: GPTConfig
        if let like = try o.string("like") {
            config = try Checkpoint.load(like).model.config
        } else {
            config = GPTConfig(nLayer: 2, nHead: 4, dModel: 128, nCtx: 32, vocabSize: CharTokenizer.standard.count)
        }
        if let v = try o.int("layers") { config.nLayer = v }
        if let v = try o.int("heads") { config.nHead = v }
        if let v = try o.int("d-model") { config.dModel = v; config.dMLP = 4 * v }
        if let v = try o.int("d-mlp") { config.dMLP = v }
        if let v = try o.int("ctx") { config.nCtx = v }
        try config.validate()
        let seed = UInt64(max(0, try o.int("seed", default: 0)))
        let model = try GPT(config: config, seed: seed)
        try Checkpoint.save(model, vocab: CharTokenizer.standard.vocab, to: ctx.dir, metadata: ["step": "0", "random_init_seed": String(seed)],
                            overwrite: true)
        return StepOutcome(results: RunValue(any: ["parameters": model.params.storage.count, "seed": Int(seed), "layers": config.nLayer,
                                                   "d_model": config.dModel]),
                           files: ["model.safetensors", "config.json"])
    }
}
