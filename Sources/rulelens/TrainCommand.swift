import ArgumentParser
import Foundation
import RuleLensJobs

/// `rulelens train`: parses options into `TrainOptions` and runs a `TrainJob`.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a GPT-2 on a JSONL file of prompt/target examples, with a live progress line.",
        discussion: """
        Data: --data FILE (JSONL, or a `rulelens data generate` directory), or --task/--format/--split/--seed, \
        generated into OUT/data/ (train.jsonl, test.jsonl, meta.json). --seed also seeds initialisation and data order. \
        Writes into --out: model.safetensors + config.json + vocab.json (a Hugging Face GPT-2 checkpoint), \
        train_state.safetensors and train_config.json (for --resume), train_log.csv (step, loss, lr, tokens/s) \
        and, with --eval-every, eval_log.csv.
        """)

    /// `--data FILE` or `--task/--format/--split/…/--seed` (generated into OUT/data/; the seed also drives
    /// initialisation and data order).
    @OptionGroup var source: DataSourceOptions
    @Option(help: "Output folder (must not hold a checkpoint unless --resume).") var out: String
    @Option(help: "Held-out examples for --eval-every (held-out loss); with --task the generated test split is used; otherwise train-subset accuracy is reported.") var evalData: String?
    @Option(help: "Transformer blocks.") var layers: Int = 2
    @Option(help: "Attention heads per block.") var heads: Int = 4
    @Option(name: .customLong("d-model"), help: "Residual stream width.") var dModel: Int = 128
    @Option(name: .customLong("d-mlp"), help: "MLP width (default 4 x d-model).") var dMLP: Int?
    @Option(help: "Context length (positions).") var ctx: Int = 32
    @Option(help: "Optimizer steps.") var steps: Int = 1000
    @Option(help: "Examples per step.") var batch: Int = 32
    @Option(help: "Peak learning rate (cosine schedule down to 10% of it).") var lr: Float = 1e-3
    @Option(help: "Linear warm-up steps.") var warmup: Int = 50
    @Option(help: "AdamW weight decay (weight matrices only).") var weightDecay: Float = 0.01
    @Option(help: "Global gradient-norm clip (0 = off).") var gradClip: Float = 1.0
    @Option(help: "Threads for RuleLens loops and BLAS (default: all cores).") var threads: Int?
    @Option(help: "Evaluate every N steps (0 = never).") var evalEvery: Int = 0
    @Option(help: "Save a resumable checkpoint every N steps (and after the last).") var saveEvery: Int = 100
    @Option(help: "Loss positions: target (target characters and eos) or all.") var lossOn: LossOn = .target
    @Flag(help: "Continue the run saved in --out (same options) from its last checkpoint.") var resume = false
    @Flag(help: "No progress line.") var quiet = false

    func run() throws {
        let files = try source.source().materialize(into: (out as NSString).appendingPathComponent("data"))
        var options = TrainOptions(data: files.train)
        options.evalData = evalData ?? (evalEvery > 0 ? files.test : nil)
        let seed = source.generated.seed
        options.layers = layers; options.heads = heads; options.dModel = dModel; options.dMLP = dMLP; options.ctx = ctx
        options.steps = steps; options.batch = batch; options.lr = lr; options.warmup = warmup
        options.weightDecay = weightDecay; options.gradClip = gradClip; options.seed = seed; options.lossOn = lossOn
        let job = TrainJob(options: options, outDir: out, resume: resume)
        job.saveEvery = saveEvery; job.evalEvery = evalEvery; job.threads = threads
        job.progress = ProgressLine(enabled: !quiet)
        let summary = try job.run()
        print(String(format: "trained %d steps in %.1f s (%.0f tokens/s), final loss %.4f; ",
                     summary.steps, summary.seconds, summary.tokensPerSecond, summary.finalLoss) + "checkpoint in \(summary.checkpoint)")
    }
}

extension LossOn: ExpressibleByArgument {}
