import ArgumentParser
import Foundation
import RuleLensDistributed
import RuleLensJobs
import RuleLensVerbs

/// `rulelens train`: parses options into `TrainOptions` and runs a `TrainJob`.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a GPT-2 on a JSONL file of prompt/target examples, with a live progress line.",
        discussion: """
        Data: --data FILE (JSONL, or a `rulelens data generate` directory), or --task/--format/--split/--seed, \
        generated into OUT/data/ (train.jsonl, test.jsonl, meta.json). --seed also seeds initialisation and data order. \
        Writes into --out: model.safetensors + config.json + vocab.json + rulelens.json (a Hugging Face GPT-2 \
        checkpoint of the newest save, with a SHA-256 manifest), checkpoints/step-N/ (the newest save as one \
        kill-proof unit: checkpoint, optimizer state, manifest), train_config.json (every option, for --resume), \
        train_log.csv (step, loss, lr, tokens/s) and, with --eval-every, eval_log.csv.
        """)

    /// `--data FILE` or `--task/--format/--split/…/--seed` (generated into OUT/data/); optional with --resume.
    /// `--seed` also drives initialisation and data order.
    @OptionGroup var source: DataSourceOptions
    @Option(help: "Output folder (must not hold a checkpoint unless --resume).") var out: String
    @Option(help: "Held-out examples for --eval-every (held-out loss); with --task (or a data directory) its test split is the default; otherwise train-subset accuracy is reported.") var evalData: String?
    @Option(name: .customLong("init-from"), help: "Fine-tune the model in this folder (a RuleLens run or a Hugging Face GPT-2 folder with safetensors); its shape and tokenizer are used.") var initFrom: String?
    @Option(help: "Model family: gpt2 (default), llama or qwen2 (RMSNorm, rotary positions, SwiGLU, grouped-query attention; qwen2 adds q/k/v biases).") var arch: String?
    @Option(help: "Positions: learned (gpt2), rope (llama/qwen2 default) or none (llama/qwen2 without position information).") var positions: String?
    @Option(name: .customLong("kv-heads"), parsing: .unconditional, help: "llama/qwen2: key/value heads (grouped-query attention; default = --heads).") var kvHeads: Int?
    @Option(name: .customLong("rope-theta"), parsing: .unconditional, help: "llama/qwen2: rotary base (default 10000).") var ropeTheta: Float?
    @Flag(name: .customLong("untied-head"), help: "llama/qwen2: a separate lm_head.weight instead of the tied embedding.") var untiedHead = false
    @Option(parsing: .unconditional, help: "Transformer blocks (default 2).") var layers: Int?
    @Option(parsing: .unconditional, help: "Attention heads per block (default 4).") var heads: Int?
    @Option(name: .customLong("d-model"), parsing: .unconditional, help: "Residual stream width (default 128).") var dModel: Int?
    @Option(name: .customLong("d-mlp"), parsing: .unconditional, help: "MLP width (default 4 x d-model).") var dMLP: Int?
    @Option(parsing: .unconditional, help: "Context length in positions (default 32).") var ctx: Int?
    @Option(parsing: .unconditional, help: "Optimizer steps (default 1000).") var steps: Int?
    @Option(parsing: .unconditional, help: "Examples per step (default 32).") var batch: Int?
    @Option(parsing: .unconditional, help: "Peak learning rate; cosine schedule down to 10% of it (default 1e-3).") var lr: Float?
    @Option(parsing: .unconditional, help: "Linear warm-up steps (default 50).") var warmup: Int?
    @Option(parsing: .unconditional, help: "AdamW weight decay, weight matrices only (default 0.01).") var weightDecay: Float?
    @Option(parsing: .unconditional, help: "Global gradient-norm clip, 0 = off (default 1).") var gradClip: Float?
    @Option(help: "Loss positions: target (target characters and eos) or all (default target).") var lossOn: LossOn?
    @Option(parsing: .unconditional, help: "Threads for RuleLens loops and BLAS (0 or default: all cores). The weights depend on it bit for bit; --resume keeps the saved count.") var threads: Int?
    @Option(parsing: .unconditional, help: "Evaluate every N steps (0, the default: no periodic evaluation). --resume keeps the saved value.") var evalEvery: Int?
    @Option(parsing: .unconditional, help: "Save a resumable checkpoint every N steps (0: no periodic saves; default 100); the last step is always saved. --resume keeps the saved value unless given.") var saveEvery: Int?
    @Option(parsing: .unconditional, help: "Length of the cosine learning-rate decay in steps (default: --steps); later steps run at its final rate (10% of --lr). --resume --steps N past the original keeps the original length.") var cosineSteps: Int?
    @Option(name: .customLong("rule-prior"), help: "Train a learned rule prior: the data column (e.g. rule) whose value selects one learned vector per example; needs --inject.") var rulePrior: String?
    @Option(help: "Where the rule prior enters: query, key, value (added to Q/K/V of every position, one vector per layer), embedding (added to every token embedding) or memory (one extra key = value slot per layer).") var inject: String?
    @Flag(help: "Continue the run saved in --out from its newest complete save (every option defaults to the saved one; --steps N extends it).") var resume = false
    @Flag(help: "With --resume: do not check the save's files against their SHA-256 manifest (for files edited on purpose).") var noVerify = false
    @Flag(help: "No progress line.") var quiet = false
    @Option(help: ArgumentHelp("Under mpirun: reduce gradients in buckets of N floats (non-blocking allreduces) instead of one call; for make bench.", visibility: .hidden))
    var allreduceBucket: Int?

    func run() throws {
        if noVerify { Checkpoint.verifiesByDefault = false }
        // Fresh runs start from the defaults; resumed runs from the saved options. Options given here override
        // either (on resume, an override that changes the result is refused by the job, naming it).
        let world = Communicator.world
        var options = resume ? try TrainJob.savedOptions(in: out) : TrainOptions(data: "")
        if let arch { options.arch = arch == "gpt2" ? nil : arch }
        if let positions { options.positions = positions }
        if let kvHeads { options.kvHeads = kvHeads }
        if let ropeTheta { options.ropeTheta = ropeTheta }
        if untiedHead { options.tiedHead = false }
        if let initFrom {
            guard !resume else {
                throw RuleLensError("--init-from and --resume cannot be combined", fix: "--resume continues the run in --out; drop --init-from")
            }
            for (flag, given) in [("--layers", layers != nil), ("--heads", heads != nil), ("--d-model", dModel != nil), ("--d-mlp", dMLP != nil),
                                  ("--ctx", ctx != nil), ("--arch", arch != nil), ("--positions", positions != nil), ("--kv-heads", kvHeads != nil),
                                  ("--rope-theta", ropeTheta != nil), ("--untied-head", untiedHead)] where given {
                throw RuleLensError("\(flag) cannot be combined with --init-from (the model's shape comes from \(initFrom)/config.json)",
                                    fix: "drop \(flag)")
            }
            options.initFrom = initFrom
        }
        if let layers { options.layers = layers }
        if let heads { options.heads = heads }
        if let dModel { options.dModel = dModel }
        if let dMLP { options.dMLP = dMLP }
        if let ctx { options.ctx = ctx }
        if let steps { options.steps = steps }
        if let cosineSteps { options.cosineSteps = cosineSteps }
        if let batch { options.batch = batch }
        if let lr { options.lr = lr }
        if let warmup { options.warmup = warmup }
        if let weightDecay { options.weightDecay = weightDecay }
        if let gradClip { options.gradClip = gradClip }
        if let seed = source.generated.seed { options.seed = seed }
        if let lossOn { options.lossOn = lossOn }
        if let threads { options.threads = threads }
        if let evalEvery { options.evalEvery = evalEvery }
        if let saveEvery { options.saveEvery = saveEvery }
        if let rulePrior { options.rulePrior = rulePrior }
        if let inject { options.inject = inject }
        if !resume {
            guard source.data != nil || source.generated.task != nil else {
                throw RuleLensError("no training data given",
                                    fix: "pass --data FILE.jsonl or --task NAME (or --resume to continue the run in --out)")
            }
            // Refusals change nothing: check the options and the folder before generating data into it.
            try TrainJob.checkFresh(options: options, outDir: out)
        }
        // Generated data (--task) is written into OUT/data/ (or checked against it on resume).
        let fm = FileManager.default
        let dataDir = (out as NSString).appendingPathComponent("data")
        // The folders this command would create (out and any missing parents), deepest first.
        var created: [String] = []
        var folder = URL(fileURLWithPath: out).standardizedFileURL
        while !fm.fileExists(atPath: folder.path) && folder.path != "/" {
            created.append(folder.path)
            folder = folder.deletingLastPathComponent()
        }
        let dataExisted = fm.fileExists(atPath: dataDir)
        let job = TrainJob(options: options, outDir: out, resume: resume)
        job.progress = ProgressLine(enabled: !quiet && world.isRoot)
        var parallel: DataParallel? = nil
        if world.size > 1 {
            parallel = DataParallel(communicator: world)
            parallel?.bucketElements = allreduceBucket
            job.parallel = parallel
            if threads == nil { job.threads = world.defaultThreads }
        }
        do {
            if source.data != nil || source.generated.task != nil {
                // Under mpirun, rank 0 writes generated data first; the other ranks then check it against their own.
                let files = try world.rootFirst { try source.source().materialize(into: dataDir) }
                job.options.data = files.train
                if !resume, job.options.evalEvery > 0, evalData == nil, let test = files.test { job.options.evalData = test }
            }
            if let evalData { job.options.evalData = evalData }
            let summary = try job.run()
            guard world.isRoot else { return }
            guard summary.stepsRun > 0 else {
                print("nothing to train: \(out) is already at step \(summary.steps) of \(summary.steps); checkpoint in \(summary.checkpoint)")
                return
            }
            let ranks = parallel.map { String(format: "; %d ranks, allreduce %.2f ms/step", $0.ranks, $0.allreduceMillisecondsPerStep) } ?? ""
            print(String(format: "trained %d steps in %.1f s (%.0f tokens/s), final loss %.4f; ",
                         summary.steps, summary.seconds, summary.tokensPerSecond, summary.finalLoss)
                  + "checkpoint in \(summary.checkpoint) (\(summary.blas.summary))" + ranks)
        } catch {
            // A run refused before it wrote anything leaves the folder as it found it.
            if !job.wroteAnything && world.isRoot {
                if !dataExisted { try? fm.removeItem(atPath: dataDir) }
                for path in created { rmdir(path) }   // only empty folders go
            }
            throw error
        }
    }
}

