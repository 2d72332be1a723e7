import Foundation
import RuleLensJobs

/// `vae-train`: train a language VAE (as `rulelens vae train`), then evaluate it on the data folder's test part (as
/// `rulelens vae eval`). `${ID}` is the checkpoint folder, which `dump` (encoder, latent and decoder sites), `ntk` and
/// the interventions accept. A killed run continues from its last save.
///
/// Results: `steps`, `final_loss`, `seconds`, `tokens_per_s`, and the evaluation's `elbo`, `reconstruction`, `kl`,
/// `active_units`, `mutual_information`, `token_accuracy`, `exact_match`, `classifier_accuracy` (null unsupervised).
public enum VAETrainStep: RunStep {
    public static let kind = "vae-train"
    public static let summary = "Train a language VAE (encoder → μ, log σ² → z → decoder with z injected), optionally with a rule classifier on z, as `rulelens vae train`; then `vae eval` on the test part."
    public static let options: [StepOption] = [
        .init("data", .path, "a `data` step's folder (${data}) or a JSONL file", required: true),
        .init("eval-data", .path, "examples for the closing evaluation (default: the data folder's test.jsonl, else none)"),
        .init("layers", .int, "decoder blocks"), .init("enc-layers", .int, "encoder blocks"),
    ] + TrainingStepOptions.options.filter { ["heads", "d-model", "d-mlp", "ctx"].contains($0.name) } + [
        .init("latent", .int, "latent size k"),
        .init("pool", .choice(["mean", "cls"]), "pooling of the encoder output"),
        .init("inject", .string, "memory, query, embedding or a comma list"),
        .init("decode", .choice(["all", "target"]), "autoencode the whole example, or decode the target from the prompt"),
        .init("free-bits", .double, "free bits λ per dimension"), .init("beta", .double, "β at the top of each cycle"),
        .init("beta-cycles", .int, "cyclical β cycles"), .init("ratio-zero", .double, "share of each cycle at β = 0"),
        .init("ratio-increase", .double, "share of each cycle over which β rises"),
        .init("supervise", .string, "JSONL column the classifier on z predicts (e.g. rule)"),
        .init("supervise-weight", .double, "γ, the classifier loss weight"),
    ] + TrainingStepOptions.options.filter { ["steps", "batch", "lr", "warmup", "weight-decay", "grad-clip", "seed", "save-every"].contains($0.name) }

    public static func quick(_ o: inout StepOptions) {
        o.cap("steps", 20)
        o.cap("batch", 16, orSet: false)
        o.cap("warmup", 5, orSet: false)
    }

    public static func commandLine(_ o: StepOptions, dir: String) -> String {
        "rulelens vae train " + o.flags(options.map(\.name).filter { $0 != "eval-data" }) + " --out \(dir)"
    }

    static func trainOptions(_ o: StepOptions) throws -> (VAETrainOptions, evalData: String?) {
        let data = try o.trainingData()
        var t = VAETrainOptions(data: data.train)
        let evalData = try o.string("eval-data") ?? data.test
        try o.readTrainingSettings(into: &t)
        if let v = try o.int("enc-layers") { t.encLayers = v }
        if let v = try o.int("latent") { t.latent = v }
        if let v = try o.string("pool") { t.pooling = PoolMode(rawValue: v) ?? .mean }
        if let v = try o.string("inject") { t.inject = try InjectMode.parseList(v) }
        if let v = try o.string("decode") { t.decode = DecodeMode(rawValue: v) ?? .all }
        if let v = try o.double("free-bits") { t.freeBits = Float(v) }
        if let v = try o.double("beta") { t.beta = Float(v) }
        if let v = try o.int("beta-cycles") { t.betaCycles = v }
        if let v = try o.double("ratio-zero") { t.ratioZero = Float(v) }
        if let v = try o.double("ratio-increase") { t.ratioIncrease = Float(v) }
        if let v = try o.string("supervise") { t.supervise = v }
        if let v = try o.double("supervise-weight") { t.superviseWeight = Float(v) }
        return (t, evalData)
    }

    public static func run(_ o: StepOptions, _ ctx: StepContext) throws -> StepOutcome {
        let (options, evalData) = try trainOptions(o)
        // The runner leaves a folder here only when a killed attempt with the same fingerprint wrote it: continue it.
        let resume = (try? VAETrainJob.savedOptions(in: ctx.dir)) == options
        let job = VAETrainJob(options: options, outDir: ctx.dir, resume: resume)
        job.saveEvery = try o.int("save-every", default: max(100, options.steps / 4))
        job.threads = ctx.threads
        job.progress = ctx.progress
        let summary = try job.run()
        var results: [String: Any] = ["steps": summary.steps, "final_loss": Double(summary.finalLoss), "seconds": summary.seconds,
                                      "tokens_per_s": summary.tokensPerSecond, "resumed": resume,
                                      "supervised": options.supervise != nil]
        if let evalData {
            let (r, _) = try VAEEvalJob.run(checkpoint: ctx.dir, data: evalData, batch: 64, seed: 0, progress: ctx.progress.isEnabled)
            results.merge(["elbo": r.elbo, "reconstruction": r.reconstruction, "kl": r.kl, "active_units": r.activeUnits,
                           "latent_size": r.latentSize, "mutual_information": r.mutualInformation, "token_accuracy": r.tokenAccuracy,
                           "exact_match": r.exactMatch, "bleu": r.bleu,
                           "classifier_accuracy": r.classifierAccuracy.map { $0 as Any } ?? NSNull()]) { $1 }
        }
        let drawn = try TrainLossChart.write(logFile: ctx.path(TrainJob.logFile), to: ctx.path("loss.svg"))
        return StepOutcome(results: RunValue(any: results), figures: drawn ? [StepFigure(title: "Training loss (log10)", file: "loss.svg")] : [],
                           files: ["model.safetensors", "config.json", TrainJob.logFile])
    }
}
