import ArgumentParser
import Foundation
import RuleLensDistributed
import RuleLensJobs
import RuleLensModel
import RuleLensNumerics
import RuleLensTasks

/// A model family RuleLens trains and loads.
public enum ModelFamily: String, CaseIterable, ExpressibleByArgument, Sendable {
    case gpt2, llama, qwen2
}

/// How positions enter the model.
public enum PositionEncoding: String, CaseIterable, ExpressibleByArgument, Sendable {
    /// A learned position table (GPT-2's only option).
    case learned
    /// Rotary positions (the Llama/Qwen2 default).
    case rope
    /// No position information at all (Llama/Qwen2).
    case none
}

extension Injection: ExpressibleByArgument {}

/// The shape options `train` and `init` share, each nil when not given (the defaults are `TrainOptions`'s).
public struct ModelShapeOptions: ParsableArguments {
    static let defaults = TrainOptions(data: "")

    @Option(help: "Model family: gpt2 (default), llama or qwen2 (RMSNorm, rotary positions, SwiGLU, grouped-query attention; qwen2 adds q/k/v biases).")
    public var arch: ModelFamily?
    @Option(help: "Positions: learned (gpt2), rope (llama/qwen2 default) or none (llama/qwen2 without position information).")
    public var positions: PositionEncoding?
    @Option(parsing: .unconditional, help: "llama/qwen2: key/value heads (grouped-query attention; default = --heads).")
    public var kvHeads: Int?
    @Option(parsing: .unconditional, help: "llama/qwen2: rotary base (default 10000).")
    public var ropeTheta: Float?
    @Flag(help: "llama/qwen2: a separate lm_head.weight instead of the tied embedding.")
    public var untiedHead = false
    @Option(parsing: .unconditional, help: "Transformer blocks (default \(defaults.layers)).")
    public var layers: Int?
    @Option(parsing: .unconditional, help: "Attention heads per block (default \(defaults.heads)).")
    public var heads: Int?
    @Option(name: .customLong("d-model"), parsing: .unconditional, help: "Residual stream width (default \(defaults.dModel)).")
    public var dModel: Int?
    @Option(name: .customLong("d-mlp"), parsing: .unconditional, help: "MLP width (default 4 x d-model).")
    public var dMLP: Int?
    @Option(parsing: .unconditional, help: "Context length in positions (train default: the longest example, [bos] + prompt + target + [eos], of the training and held-out data; init default \(defaults.ctx)).")
    public var ctx: Int?

    public init() {}

    /// The shape options that were given, as their flags (for refusals that name them).
    public var givenFlags: [String] {
        [("--arch", arch != nil), ("--positions", positions != nil), ("--kv-heads", kvHeads != nil), ("--rope-theta", ropeTheta != nil),
         ("--untied-head", untiedHead), ("--layers", layers != nil), ("--heads", heads != nil), ("--d-model", dModel != nil),
         ("--d-mlp", dMLP != nil), ("--ctx", ctx != nil)].filter(\.1).map(\.0)
    }

    /// The cross-option rules (numbers are checked with the model's config, where the message can name its limits).
    public func validate() throws {
        guard let arch else { return }
        if arch == .gpt2 {
            if let positions, positions != .learned {
                throw ValidationError("--positions \(positions.rawValue) does not apply to --arch gpt2 (learned positions only); pass --arch llama (or qwen2) for rotary or no positions")
            }
            for flag in ["--kv-heads", "--rope-theta", "--untied-head"] where givenFlags.contains(flag) {
                throw ValidationError("\(flag) applies to --arch llama or qwen2, not gpt2; drop \(flag), or pass --arch llama")
            }
        } else if positions == .learned {
            throw ValidationError("--positions learned does not apply to --arch \(arch.rawValue); pass --positions rope or --positions none")
        }
    }

    /// Sets the given options on `options` (the others keep its values).
    public func apply(to options: inout TrainOptions) {
        if let arch { options.arch = arch == .gpt2 ? nil : arch.rawValue }
        if let positions { options.positions = positions.rawValue }
        if let kvHeads { options.kvHeads = kvHeads }
        if let ropeTheta { options.ropeTheta = ropeTheta }
        if untiedHead { options.tiedHead = false }
        if let layers { options.layers = layers }
        if let heads { options.heads = heads }
        if let dModel { options.dModel = dModel }
        if let dMLP { options.dMLP = dMLP }
        if let ctx { options.ctx = ctx }
    }
}

/// `train`: train a model (GPT-2, Llama or Qwen2; from scratch, from another checkpoint, or with a learned rule prior)
/// on prompt/target examples; continues a killed run with `--resume`.
public enum TrainVerb: Verb {
    public static let commandPath = ["train"]
    /// Its saves are published as it goes, each a kill-proof unit (`TrainSaves`).
    public static let publishesAsItGoes = true
    public static let abstract = "Train a GPT-2, Llama or Qwen2 model (from scratch, fine-tuned with --init-from, or with a learned rule prior) on prompt/target examples."
    public static let discussion = """
        Data: --data FILE (JSONL) or a `rulelens data generate` folder (its train.jsonl; its test.jsonl is the held-out \
        set of --eval-every), or --task/--format/--split/--seed, generated into OUT/data/ (train.jsonl, test.jsonl, \
        meta.json). --seed also seeds initialisation and data order. Every shape and schedule option defaults to \
        TrainOptions's value (the help says which), or with --resume to the saved run's. Writes into --out: \
        model.safetensors + config.json + vocab.json + rulelens.json (a Hugging Face checkpoint of the newest save, with \
        a SHA-256 manifest), checkpoints/step-N/ (the newest save as one kill-proof unit: checkpoint, optimizer state, \
        manifest), train_config.json (every option, for --resume), train_log.csv (step, loss, lr, tokens/s), loss.svg \
        and, with --eval-every, eval_log.csv. Under mpirun, ranks split each batch (data parallel; same weights as one \
        process with the same --threads). A run is never replaced: --force is refused (continue with --resume, or \
        choose another --out).
        """

    static let defaults = TrainOptions(data: "")

    public struct Arguments: VerbArguments {
        /// `--data FILE|DIR` or `--task/--format/--split/…/--seed` (generated into OUT/data/); optional with --resume.
        @OptionGroup public var source: DataSourceOptions
        @Option(help: "Output folder (must not hold a run unless --resume).")
        public var out: String
        @Option(help: "Held-out examples (JSONL) for --eval-every; default: the test.jsonl of a data folder or of --task; otherwise train-subset accuracy is reported.")
        public var evalData: InputPath?
        @Option(help: "Fine-tune the model in this folder (a RuleLens run, or a Hugging Face gpt2/llama/qwen2 folder); its shape and tokenizer are used. With --resume it must be the saved run's.")
        public var initFrom: InputPath?
        @OptionGroup(title: "Model shape") public var shape: ModelShapeOptions
        @Option(parsing: .unconditional, help: "Optimizer steps (default \(defaults.steps)).")
        public var steps: Int?
        @Option(parsing: .unconditional, help: "Examples per step (default \(defaults.batch)).")
        public var batch: Int?
        @Option(parsing: .unconditional, help: "Peak learning rate; cosine schedule down to 10% of it (default \(defaults.lr)).")
        public var lr: Float?
        @Option(parsing: .unconditional, help: "Linear warm-up steps (default \(defaults.warmup)).")
        public var warmup: Int?
        @Option(parsing: .unconditional, help: "AdamW weight decay, weight matrices only (default \(defaults.weightDecay)).")
        public var weightDecay: Float?
        @Option(parsing: .unconditional, help: "Global gradient-norm clip, 0 = off (default \(defaults.gradClip)).")
        public var gradClip: Float?
        @Option(parsing: .unconditional, help: "Length of the cosine learning-rate decay in steps (default: --steps); later steps run at its final rate (10% of --lr). --resume --steps N past the original keeps the original length.")
        public var cosineSteps: Int?
        @Option(help: "Loss positions: target (target characters and eos) or all (default \(defaults.lossOn.rawValue)).")
        public var lossOn: LossOn?
        @Option(parsing: .unconditional, help: "Evaluate every N steps (0, the default: no periodic evaluation). --resume keeps the saved value.")
        public var evalEvery: Int?
        @Option(parsing: .unconditional, help: "Save a resumable checkpoint every N steps (0: no periodic saves; default \(defaults.saveEvery)); the last step is always saved. --resume keeps the saved value unless given.")
        public var saveEvery: Int?
        @Flag(help: "Early stopping by checkpoint selection: write the weights to OUT/best at each evaluation that lowers the best held-out loss so far (needs --eval-every and held-out data; evaluate OUT/best).")
        public var keepBest = false
        @Option(help: "Train a learned rule prior: the data column (e.g. rule) whose value selects one learned vector per example; needs --inject (gpt2, from scratch).")
        public var rulePrior: String?
        @Option(help: "Where the rule prior enters: query, key, value (added to Q/K/V of every position, one vector per layer), embedding (added to every token embedding) or memory (one extra key = value slot per layer).")
        public var inject: Injection?
        @Flag(help: "Continue the run saved in --out from its newest complete save (every option defaults to the saved one; --steps N extends it). The weights depend on --threads bit for bit; --resume keeps the saved count.")
        public var resume = false
        @Option(help: ArgumentHelp("Under mpirun: reduce gradients in buckets of N floats (non-blocking allreduces) instead of one call; for make bench.", visibility: .hidden))
        public var allreduceBucket: Int?
        @OptionGroup(title: "Runtime") public var runtime: RuntimeOptions

        public init() {}

        public func validate() throws {
            if runtime.force {
                throw ValidationError("--force: train never replaces a run; pass --resume to continue the run in --out, or choose another --out")
            }
            if keepBest && !resume && (evalEvery ?? 0) == 0 {
                throw ValidationError("--keep-best keeps the checkpoint of the lowest held-out loss, which needs --eval-every N (and held-out data: --eval-data, or the test part of --data DIR / --task)")
            }
            if let initFrom {
                if let flag = shape.givenFlags.first {
                    throw ValidationError("\(flag) cannot be combined with --init-from (the model's shape comes from \(initFrom.path)/config.json); drop \(flag)")
                }
                if rulePrior != nil { throw ValidationError("--rule-prior cannot be combined with --init-from; train the rule-prior model from scratch (drop --init-from)") }
            }
            if !resume {
                if !source.given { throw ValidationError("no training data given; pass --data FILE.jsonl|DIR or --task NAME (or --resume to continue the run in --out)") }
                switch (rulePrior, inject) {
                case (nil, let site?): throw ValidationError("--inject \(site.rawValue) needs --rule-prior COLUMN (the data column whose value selects the prior); pass e.g. --rule-prior rule, or drop --inject")
                case (_?, nil): throw ValidationError("--rule-prior needs --inject query|key|value|embedding|memory (where the prior enters the model); pass e.g. --inject query")
                default: break
                }
                if rulePrior != nil, let arch = shape.arch, arch != .gpt2 {
                    throw ValidationError("--rule-prior applies to --arch gpt2 only; drop --arch \(arch.rawValue), or drop --rule-prior")
                }
                if shape.arch == nil || shape.arch == .gpt2, let p = shape.positions, p != .learned {
                    throw ValidationError("--positions \(p.rawValue) needs --arch llama or qwen2 (GPT-2 has learned positions only); pass --arch llama")
                }
            }
            if let allreduceBucket, allreduceBucket < 1 { throw ValidationError("--allreduce-bucket is \(allreduceBucket); pass a positive number of floats") }
        }

        /// The job's options: the defaults (fresh) or the saved run's (`base`), with every given option set.
        func options(base: TrainOptions) -> TrainOptions {
            var o = base
            shape.apply(to: &o)
            if let initFrom { o.initFrom = initFrom.path }
            if let steps { o.steps = steps }
            if let cosineSteps { o.cosineSteps = cosineSteps }
            if let batch { o.batch = batch }
            if let lr { o.lr = lr }
            if let warmup { o.warmup = warmup }
            if let weightDecay { o.weightDecay = weightDecay }
            if let gradClip { o.gradClip = gradClip }
            if let seed = source.generated.seed { o.seed = seed }
            if let lossOn { o.lossOn = lossOn }
            if let threads = runtime.threads { o.threads = threads }
            if let evalEvery { o.evalEvery = evalEvery }
            if let saveEvery { o.saveEvery = saveEvery }
            if keepBest { o.keepBest = true }
            if let rulePrior { o.rulePrior = rulePrior }
            if let inject { o.inject = inject.rawValue }
            return o
        }
    }

    public struct Result: Encodable {
        /// The run's step count (its --steps).
        public var steps: Int
        /// Steps this invocation took (0 when --resume found the run finished).
        public var stepsRun: Int
        /// Training loss of the last step run; null when no step ran.
        public var finalLoss: Double?
        public var seconds: Double
        public var tokensPerS: Double
        public var family: String
        public var layers: Int
        public var dModel: Int
        public var resumed: Bool
        /// The last held-out loss (eval_log.csv); null when the run had no evaluation.
        public var evalLoss: Double?
        /// The lowest held-out loss and its step (eval_log.csv; with --keep-best the weights of that step are in
        /// OUT/best); null without held-out evaluation.
        public var bestEvalLoss: Double?
        public var bestStep: Int?
        /// Ranks under mpirun (1 otherwise), and the mean allreduce time per step (null for one rank).
        public var ranks: Int
        public var allreduceMsPerStep: Double?
        public var provenance: BLASProvenance

        enum CodingKeys: String, CodingKey {
            case steps, stepsRun = "steps_run", finalLoss = "final_loss", seconds, tokensPerS = "tokens_per_s", family, layers,
                 dModel = "d_model", resumed, evalLoss = "eval_loss", bestEvalLoss = "best_eval_loss", bestStep = "best_step", ranks, allreduceMsPerStep = "allreduce_ms_per_step", provenance
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(steps, forKey: .steps); try c.encode(stepsRun, forKey: .stepsRun); try c.encode(finalLoss, forKey: .finalLoss)
            try c.encode(seconds, forKey: .seconds); try c.encode(tokensPerS, forKey: .tokensPerS); try c.encode(family, forKey: .family)
            try c.encode(layers, forKey: .layers); try c.encode(dModel, forKey: .dModel); try c.encode(resumed, forKey: .resumed)
            try c.encode(evalLoss, forKey: .evalLoss); try c.encode(ranks, forKey: .ranks)
            try c.encode(bestEvalLoss, forKey: .bestEvalLoss); try c.encode(bestStep, forKey: .bestStep)
            try c.encode(allreduceMsPerStep, forKey: .allreduceMsPerStep); try c.encode(provenance, forKey: .provenance)
        }
    }

    /// --quick: a few steps, small batches, no periodic evaluation.
    public static func quick(_ o: inout QuickOptions) {
        o.cap("steps", 20)
        o.cap("batch", 16, orSet: false)
        o.cap("warmup", 5, orSet: false)
        o.set("eval-every", "0")
    }

    public static var continueFlag: String? { "resume" }
    public static func canContinue(dir: String) -> Bool { (try? TrainJob.savedOptions(in: dir)) != nil }

    public static func run(_ a: Arguments, _ ctx: VerbContext) throws -> VerbOutcome<Result> {
        let out = a.out
        let world = Communicator.world
        // Fresh runs start from the defaults; resumed runs from the saved options. Options given here override
        // either (on resume, an override that changes the result is refused by the job, naming it).
        // A folder holding only leftovers of a run killed before it saved its options is started afresh, --resume or not.
        let fresh = !a.resume || TrainLoop<TrainOptions>.holdsOnlyLeftovers(out)
        let options = a.options(base: fresh ? TrainOptions(data: "") : try TrainJob.savedOptions(in: out))
        if fresh {
            // Refusals change nothing: check the options and the folder before generating data into it.
            try TrainJob.checkFresh(options: options, outDir: out)
        }
        let fm = FileManager.default
        let dataDir = (out as NSString).appendingPathComponent("data")
        // The folders this run would create (out and any missing parents), deepest first.
        var created: [String] = []
        var folder = URL(fileURLWithPath: out).standardizedFileURL
        while !fm.fileExists(atPath: folder.path) && folder.path != "/" {
            created.append(folder.path)
            folder = folder.deletingLastPathComponent()
        }
        let dataExisted = fm.fileExists(atPath: dataDir)
        let job = TrainJob(options: options, outDir: out, resume: a.resume)
        job.progress = world.isRoot ? ctx.progress : ProgressLine(enabled: false)
        var parallel: DataParallel? = nil
        if world.size > 1 {
            parallel = DataParallel(communicator: world)
            parallel?.bucketElements = a.allreduceBucket
            job.parallel = parallel
            if a.runtime.threads == nil { job.threads = world.defaultThreads }
        }
        let summary: TrainSummary
        var contextFiles: [String] = []   // the examples a derived --ctx must fit: train, test and held-out data
        do {
            if a.source.given {
                // Under mpirun, rank 0 writes generated data first; the other ranks then check it against their own.
                let files = try world.rootFirst { try a.source.source().materialize(into: dataDir) }
                contextFiles = [files.train] + [files.test].compactMap { $0 }
                job.options.data = files.train
                if fresh, job.options.evalEvery > 0, a.evalData == nil, let test = files.test { job.options.evalData = test }
            }
            if let evalData = a.evalData { job.options.evalData = evalData.path }
            // A context the user did not choose fits the data: the longest training or held-out example.
            if !a.resume && a.initFrom == nil && a.shape.ctx == nil {
                let files = contextFiles + [job.options.evalData].compactMap { $0 }.filter { !contextFiles.contains($0) }
                if let longest = try ContextLength.longest(in: files) {
                    job.options.ctx = longest
                    if world.isRoot { ctx.progress.message(ContextLength.derivedMessage(longest, files: files)) }
                }
            }
            summary = try job.run()
        } catch {
            // A run refused before it wrote anything leaves the folder as it found it.
            if !job.wroteAnything && world.isRoot {
                if !dataExisted { try? fm.removeItem(atPath: dataDir) }
                for path in created { rmdir(path) }   // only empty folders go
            }
            throw error
        }
        let o = job.options
        // The shape as written (with --init-from it is the source model's, not the options').
        let config = (try? Checkpoint.readJSONObject((out as NSString).appendingPathComponent(Checkpoint.configFile))) ?? [:]
        let layers = (config["n_layer"] ?? config["num_hidden_layers"]) as? Int ?? o.layers
        let dModel = (config["n_embd"] ?? config["hidden_size"]) as? Int ?? o.dModel
        var evalLoss: Double? = nil
        // The last held-out evaluation, when the run had one.
        if let text = try? String(contentsOfFile: (out as NSString).appendingPathComponent(TrainJob.evalLogFile), encoding: .utf8),
           let last = text.split(separator: "\n").last?.split(separator: ",", omittingEmptySubsequences: false), last.count >= 4, let v = Double(last[2]), v.isFinite {
            evalLoss = v
        }
        let best = TrainJob.bestHeldOut(logAt: out)
        var figures: [VerbFigure] = []
        if world.isRoot, try TrainLossChart.write(logFile: (out as NSString).appendingPathComponent(TrainJob.logFile),
                                                  to: (out as NSString).appendingPathComponent("loss.svg")) {
            figures.append(VerbFigure(title: "Training loss (log10)", file: "loss.svg"))
        }
        let loss = Double(summary.finalLoss)
        let result = Result(steps: summary.steps, stepsRun: summary.stepsRun,
                            finalLoss: summary.stepsRun > 0 && loss.isFinite ? loss : nil,
                            seconds: summary.seconds, tokensPerS: summary.tokensPerSecond.isFinite ? summary.tokensPerSecond : 0,
                            family: o.family, layers: layers, dModel: dModel, resumed: !fresh, evalLoss: evalLoss,
                            bestEvalLoss: best?.loss, bestStep: best?.step,
                            ranks: parallel?.ranks ?? 1, allreduceMsPerStep: parallel.map(\.allreduceMillisecondsPerStep),
                            provenance: summary.blas)
        return VerbOutcome(result, figures: figures, files: ["model.safetensors", "config.json", TrainJob.logFile])
    }

    public static func lines(_ r: Result, _ a: Arguments) -> [String] {
        guard r.stepsRun > 0 else {
            return ["nothing to train: \(a.out) is already at step \(r.steps) of \(r.steps); checkpoint in \(a.out)"]
        }
        let ranks = r.allreduceMsPerStep.map { String(format: "; %d ranks, allreduce %.2f ms/step", r.ranks, $0) } ?? ""
        return [String(format: "trained %d steps in %.1f s (%.0f tokens/s), final loss %@; ", r.steps, r.seconds, r.tokensPerS,
                       r.finalLoss.map { String(format: "%.4f", $0) } ?? "n/a")
                + "checkpoint in \(a.out) (\(r.provenance.summary))" + ranks]
    }
}
