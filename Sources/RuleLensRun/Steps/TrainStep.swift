import Foundation
import RuleLensJobs

/// `train`: train a GPT-2 (as `rulelens train`). A killed run continues from its last checkpoint.
public enum TrainStep: RunStep {
    public static let kind = "train"
    public static let summary = "Train a GPT-2 on a data folder or JSONL file, as `rulelens train` (continues a killed run)."
    public static let options: [StepOption] = [
        .init("data", .path, "a `data` step's folder (${data}) or a JSONL file", required: true),
        .init("eval-data", .path, "held-out examples for --eval-every (default: the data folder's test.jsonl)"),
        .init("layers", .int, "blocks"), .init("heads", .int, "heads"), .init("d-model", .int, "width"),
        .init("d-mlp", .int, "MLP width"), .init("ctx", .int, "context length"),
        .init("steps", .int, "optimizer steps"), .init("batch", .int, "examples per step"), .init("lr", .double, "peak learning rate"),
        .init("warmup", .int, "warm-up steps"), .init("weight-decay", .double, "AdamW weight decay"),
        .init("grad-clip", .double, "gradient-norm clip"), .init("seed", .int, "initialisation and data-order seed"),
        .init("loss-on", .choice(["target", "all"]), "loss positions"),
        .init("eval-every", .int, "evaluate every N steps"), .init("save-every", .int, "checkpoint every N steps"),
    ]

    public static func quick(_ o: inout StepOptions) {
        o.cap("steps", 20)
        o.cap("batch", 16, orSet: false)
        o.cap("warmup", 5, orSet: false)
        o.set("eval-every", "0")
    }

    public static func commandLine(_ o: StepOptions, dir: String) -> String {
        "rulelens train " + o.flags(options.map(\.name)) + " --out \(dir)"
    }

    /// Whether `dir` holds a checkpoint and optimizer state to continue from.
    public static func canResume(dir: String) -> Bool { (try? TrainJob.savedOptions(in: dir)) != nil }

    static func trainOptions(_ o: StepOptions) throws -> (TrainOptions, evalEvery: Int, saveEvery: Int) {
        let data = try o.trainingData()
        var t = TrainOptions(data: data.train)
        let evalEvery = try o.int("eval-every", default: 0)
        if let e = try o.string("eval-data") { t.evalData = e }
        else if evalEvery > 0, let test = data.test { t.evalData = test }
        try o.readTrainingSettings(into: &t)
        if let v = try o.string("loss-on") { t.lossOn = LossOn(rawValue: v) ?? .target }
        return (t, evalEvery, try o.int("save-every", default: max(100, t.steps / 4)))
    }

    public static func run(_ o: StepOptions, _ ctx: StepContext) throws -> StepOutcome {
        var (options, evalEvery, saveEvery) = try trainOptions(o)
        // Saved with the run, so part of what a continued run must match.
        options.evalEvery = evalEvery; options.saveEvery = saveEvery; options.threads = ctx.threads
        // The runner leaves a folder here only when a killed attempt with the same fingerprint (same options and
        // inputs) wrote it: continue that run from its last checkpoint.
        let resume = (try? TrainJob.savedOptions(in: ctx.dir)) == options
        let job = TrainJob(options: options, outDir: ctx.dir, resume: resume)
        job.evalEvery = evalEvery
        job.saveEvery = saveEvery
        job.threads = ctx.threads
        job.progress = ctx.progress
        let summary = try job.run()
        let config = options.modelConfig(vocabSize: CharTokenizer.standard.count)
        var results: [String: Any] = ["steps": summary.steps, "final_loss": Double(summary.finalLoss), "seconds": summary.seconds,
                                      "tokens_per_s": summary.tokensPerSecond, "layers": config.nLayer, "d_model": config.dModel,
                                      "resumed": resume]
        // The last held-out evaluation, when the run had one.
        if let text = try? String(contentsOfFile: ctx.path(TrainJob.evalLogFile), encoding: .utf8),
           let last = text.split(separator: "\n").last?.split(separator: ","), last.count >= 4 {
            results["eval_loss"] = nullable(Double(last[2]))
        }
        let figure = try lossFigure(ctx)
        return StepOutcome(results: RunValue(any: results), figures: figure.map { [$0] } ?? [],
                           files: ["model.safetensors", "config.json", TrainJob.logFile])
    }

    /// The training loss curve (train_log.csv) as an SVG.
    static func lossFigure(_ ctx: StepContext) throws -> StepFigure? {
        guard let text = try? String(contentsOfFile: ctx.path(TrainJob.logFile), encoding: .utf8) else { return nil }
        var points: [(Double, Double)] = []
        for line in text.split(separator: "\n").dropFirst() {
            let f = line.split(separator: ",")
            if f.count >= 2, let s = Double(f[0]), let l = Double(f[1]), l.isFinite { points.append((s, log10(max(l, 1e-6)))) }
        }
        guard points.count > 1 else { return nil }
        let stride = max(1, points.count / 300)
        let thinned = points.enumerated().filter { $0.offset % stride == 0 || $0.offset == points.count - 1 }.map(\.element)
        let svg = LineChart(title: "Training loss", xLabel: "step", yLabel: "log10 loss",
                            series: [.init(name: "train loss", points: thinned, color: "#4e79a7")]).render()
        try AtomicFile.write(Data(svg.utf8), to: ctx.path("loss.svg"))
        return StepFigure(title: "Training loss (log10)", file: "loss.svg")
    }
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

    /// The options `train` and `vae-train` share (shape, schedule, seed), each left at the job's default when absent.
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
