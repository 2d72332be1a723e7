import Foundation
import RuleLensDistributed
import RuleLensModel
import RuleLensNumerics
import RuleLensStudies
import RuleLensTasks

/// Everything that determines a training run's result and outputs (saved as DIR/train_config.json, so that
/// `--resume` with nothing but `--out` continues exactly the run that was started).
public struct TrainOptions: Codable, Equatable, Sendable {
    public var data: String
    public var evalData: String?
    public var layers = 2, heads = 4, dModel = 128
    public var dMLP: Int? = nil
    public var ctx = 32
    public var steps = 1000, batch = 32
    /// Length of the cosine decay in steps (nil = `steps`). Steps past it run at the final learning rate,
    /// `lr × minLRFraction`: this is how `--resume --steps N` extends a run beyond its original `--steps`.
    public var cosineSteps: Int? = nil
    public var lr: Float = 1e-3
    /// Final learning rate of the cosine schedule, as a fraction of `lr`.
    public var minLRFraction: Float = 0.1
    public var warmup = 50
    public var weightDecay: Float = 0.01
    /// Global gradient-norm clip (0 = off).
    public var gradClip: Float = 1.0
    public var seed: UInt64 = 0
    public var lossOn: LossOn = .target
    /// Worker threads of RuleLens's loops, split GEMMs and OpenBLAS. The weights depend on it bit for bit.
    /// nil: as configured (`Parallel.threads`, all cores by default); a run saves the count it used.
    public var threads: Int? = nil
    /// Evaluate every this many steps (0 = never); results go to eval_log.csv.
    public var evalEvery = 0
    /// Save every this many steps (and always after the last). Changes no result, so a resume may change it.
    public var saveEvery = 100
    /// Early stopping by checkpoint selection: at each held-out evaluation that lowers the best held-out loss so far,
    /// the weights are written to DIR/best (needs `evalEvery` and held-out data).
    public var keepBest = false
    /// Start from the weights (and tokenizer) of this model folder instead of a random initialisation; the model's
    /// shape (layers, heads, widths, context, vocabulary) then comes from its config.json.
    public var initFrom: String? = nil
    /// Model family: "gpt2" (nil, the default), "llama" or "qwen2".
    public var arch: String? = nil
    /// How positions enter: "learned" (GPT-2's only option), "rope" (the Llama/Qwen2 default) or "none".
    public var positions: String? = nil
    /// Llama/Qwen2: key/value heads for grouped-query attention (default: = heads).
    public var kvHeads: Int? = nil
    /// Llama/Qwen2: rotary base (default 10000).
    public var ropeTheta: Float? = nil
    /// Llama/Qwen2: tie the LM head to the embedding (default true).
    public var tiedHead: Bool? = nil
    /// Train a rule prior: the data column whose value selects a learned vector per example (`RulePriorGPT`).
    public var rulePrior: String? = nil
    /// Where the rule prior enters: query, key, value, embedding or memory (`Injection`); needs `rulePrior`.
    public var inject: String? = nil

    public init(data: String) { self.data = data }

    /// The family to build: gpt2, llama or qwen2.
    public var family: String { arch ?? "gpt2" }

    /// The Llama/Qwen2 shape these options ask for (nil for GPT-2).
    public func llamaConfig(vocabSize: Int) -> LlamaConfig? {
        guard let family = LlamaConfig.Family(rawValue: self.family) else { return nil }
        return LlamaConfig(family: family, nLayer: layers, nHead: heads, nKVHead: kvHeads ?? heads, dModel: dModel, dMLP: dMLP,
                           nCtx: ctx, vocabSize: vocabSize, ropeTheta: ropeTheta ?? 10_000,
                           positions: positions == "none" ? .none : .rope, tiedEmbeddings: tiedHead ?? true)
    }

    /// A freshly initialised model of the requested family (initialisation depends only on `seed`).
    public func buildModel(vocabSize: Int) throws -> any LanguageModel {
        if let c = llamaConfig(vocabSize: vocabSize) { return try LlamaModel(config: c, seed: seed) }
        return try GPT(config: modelConfig(vocabSize: vocabSize), seed: seed)
    }

    /// The model shape these options ask for (the character vocabulary fixes the vocab size).
    public func modelConfig(vocabSize: Int) -> GPTConfig {
        GPTConfig(nLayer: layers, nHead: heads, dModel: dModel, dMLP: dMLP, nCtx: ctx, vocabSize: vocabSize)
    }

    /// The number of steps the cosine decay spans.
    public var scheduleSteps: Int { cosineSteps ?? steps }

    /// Checks the numbers make sense before anything is written.
    public func validate() throws {
        try validateSchedule()
        guard ["gpt2", "llama", "qwen2"].contains(family) else {
            throw RuleLensError("--arch \(family) is not gpt2, llama or qwen2", fix: "pass --arch gpt2, --arch llama or --arch qwen2")
        }
        let allowed = family == "gpt2" ? ["learned"] : ["rope", "none"]
        if let positions, !allowed.contains(positions) {
            throw RuleLensError("--positions \(positions) does not apply to --arch \(family) (it takes \(allowed.joined(separator: " or ")))",
                                fix: family == "gpt2" ? "GPT-2 has learned positions only; for rotary or no positions pass --arch llama (or qwen2) --positions rope|none"
                                                      : "pass --positions rope or --positions none")
        }
        if family == "gpt2" {
            for (flag, given) in [("--kv-heads", kvHeads != nil), ("--rope-theta", ropeTheta != nil), ("--untied-head", tiedHead == false)] where given {
                throw RuleLensError("\(flag) applies to --arch llama or qwen2, not gpt2", fix: "drop \(flag), or pass --arch llama")
            }
            try modelConfig(vocabSize: CharTokenizer.standard.count).validate()
        } else {
            try llamaConfig(vocabSize: CharTokenizer.standard.count)!.validate()
        }
        try validateRulePrior()
    }

    /// `--rule-prior COLUMN` and `--inject SITE` come together, on a GPT-2 trained from scratch.
    func validateRulePrior() throws {
        switch (rulePrior, inject) {
        case (nil, nil): return
        case (nil, let site?):
            throw RuleLensError("--inject \(site) needs --rule-prior COLUMN (the data column whose value selects the prior)",
                                fix: "pass e.g. --rule-prior rule --inject \(site), or drop --inject")
        case (_?, nil):
            throw RuleLensError("--rule-prior needs --inject query|key|value|embedding|memory (where the prior enters the model)",
                                fix: "pass e.g. --inject query")
        case (let column?, let site?):
            guard Injection(rawValue: site) != nil else {
                throw RuleLensError("--inject \(site) is not query, key, value, embedding or memory", fix: "pass e.g. --inject query")
            }
            if column.isEmpty { throw RuleLensError("--rule-prior is empty", fix: "name the data column, e.g. --rule-prior rule") }
            if family != "gpt2" {
                throw RuleLensError("--rule-prior applies to --arch gpt2 only", fix: "drop --arch \(family), or drop --rule-prior")
            }
            if initFrom != nil {
                throw RuleLensError("--rule-prior cannot be combined with --init-from", fix: "train the rule-prior model from scratch (drop --init-from)")
            }
        }
    }
}

extension TrainOptions: TrainLoopOptions {
    public static var defaults: TrainOptions { TrainOptions(data: "") }
    /// The held-out data may be re-pointed (its fingerprint is checked).
    public static var mayDifferOnResume: Set<String> { ["evalData"] }
    public static var command: String { "rulelens train" }
    /// A `vae train` folder (its options have a latent size) is not a `train` run.
    public static func isOwnConfig(_ object: [String: Any]) -> Bool { object["latent"] == nil && object["encLayers"] == nil }

    /// Decodes a saved train_config.json; fields an older file lacks take their defaults, extra fields (the BLAS
    /// provenance) are ignored.
    public static func decode(_ data: Data) throws -> TrainOptions { try decodeSaved(data) }
}

/// What a finished run reports.
public struct TrainSummary: Sendable {
    public let steps: Int
    /// Steps this call trained (0 when a resumed run had already finished).
    public let stepsRun: Int
    public let finalLoss: Float
    public let tokensPerSecond: Double
    public let seconds: Double
    public let checkpoint: String
    /// The BLAS kernel and thread count the run used (its weights are bitwise reproducible with the same ones).
    public let blas: BLASProvenance
}

/// A training run writing into one folder: the checkpoint of the newest save at the top (HF GPT-2 safetensors +
/// config.json + vocab.json + rulelens.json, so `transformers` loads the folder as it is), the saves themselves
/// under `checkpoints/` (see `TrainSaves`: one unit each, kill-proof), `train_config.json`, `train_log.csv`
/// (step, loss, lr, tokens/s) and, with evaluation, `eval_log.csv`.
///
/// Reproducible: the data order depends only on (seed, step), initialisation only on the seed, so a resumed run
/// takes exactly the steps an uninterrupted one would (bitwise identical weights for the same BLAS kernel and
/// thread count).
public final class TrainJob {
    public static let stateFile = "train_state.safetensors"
    public static let configFile = "train_config.json"
    public static let logFile = "train_log.csv"
    public static let evalLogFile = "eval_log.csv"
    /// The checkpoint at the lowest held-out loss (`keepBest`).
    public static let bestFolder = "best"
    static let logHeader = "step,loss,lr,tokens_per_s"
    static let evalLogHeader = "step,split,loss,accuracy"

    /// The options of the run (on resume: the saved ones, with the overrides the job accepts).
    public var options: TrainOptions
    public let outDir: String
    public let resume: Bool
    /// Save every this many steps (and always after the last); `options.saveEvery`.
    public var saveEvery: Int { get { options.saveEvery } set { options.saveEvery = newValue } }
    /// Evaluate every this many steps (0 = never); `options.evalEvery`.
    public var evalEvery: Int { get { options.evalEvery } set { options.evalEvery = newValue } }
    /// Worker threads for RuleLens loops and BLAS (nil = leave as configured); `options.threads`.
    public var threads: Int? { get { options.threads } set { options.threads = newValue } }
    /// Check the save's SHA-256 manifest before resuming from it (`--no-verify` turns it off).
    public var verify = Checkpoint.verifiesByDefault

    /// Checks the run-time options (0 means "none"/"automatic" for each; negative numbers are refused).
    public func validateRunOptions() throws {
        for (name, value) in [("save-every", saveEvery), ("eval-every", evalEvery), ("threads", threads ?? 0)] where value < 0 {
            throw RuleLensError("--\(name) is \(value), but it must be 0 or positive",
                                fix: "pass --\(name) 0 (\(name == "threads" ? "all cores" : "never periodically")) or a positive number")
        }
    }
    /// The progress line (disable for quiet library use).
    public var progress = ProgressLine()
    /// Whether `run()` has written anything into `outDir` yet (false after a refusal: the caller may remove what
    /// it prepared for the run, e.g. generated data, so a refused command changes nothing).
    public private(set) var wroteAnything = false
    /// The tokenizer of the run (set by `run`): characters, or the `--init-from` model's.
    var tokenizer: any TextTokenizer = CharTokenizer.standard

    /// Data parallelism under mpirun (nil: one process, exactly as before). Each step every rank computes its rows of
    /// the global batch and `parallel` turns its gradient into the global batch's; only rank 0 writes (TrainParallel.swift).
    public var parallel: GradientReducer? = nil
    var writes: Bool { (parallel?.rank ?? 0) == 0 }

    public init(options: TrainOptions, outDir: String, resume: Bool = false) {
        self.options = options; self.outDir = outDir; self.resume = resume
    }

    var dir: String { outDir }
    func path(_ name: String) -> String { outDir + "/" + name }
    var saves: TrainSaves { TrainSaves(outDir: outDir) }

    /// Runs (or resumes) training to `options.steps`; returns the summary. Throws `RuleLensError` for bad input
    /// and for a non-finite loss (the last good checkpoint stays in place). Every check runs before the first write.
    @discardableResult
    public func run() throws -> TrainSummary {
        try validateRunOptions()
        var tokenizer: any TextTokenizer = CharTokenizer.standard
        let loop = TrainLoop<TrainOptions>(outDir: outDir, resume: resume)
        loop.verify = verify; loop.progress = progress; loop.writes = writes
        defer { wroteAnything = loop.wroteAnything }

        // Decide where we start: a fresh folder or the newest complete save of an earlier run.
        var model: (any LanguageModel)! = nil
        var (options, resumed) = try loop.open(self.options)
        if let resumed {
            model = try ModelFolder.load(resumed.dir, rulePriors: true)
            tokenizer = try Jobs.tokenizer(checkpoint: resumed.dir, vocabSize: model.vocabSize)
        } else if let initFrom = options.initFrom {
            model = try Jobs.loadModel(initFrom)
            tokenizer = try Jobs.tokenizer(checkpoint: initFrom, vocabSize: model.vocabSize)
            if !resume {
                // The shape is the pretrained model's; recorded so train_config.json says what was trained.
                switch ModelFolder.config(of: model) {
                case .gpt2(let c), .gpt2RulePrior(let c):
                    options.layers = c.nLayer; options.heads = c.nHead; options.dModel = c.dModel; options.dMLP = c.dMLP; options.ctx = c.nCtx
                    options.arch = nil
                case .llama(let c):
                    options.layers = c.nLayer; options.heads = c.nHead; options.dModel = c.dModel; options.dMLP = c.dMLP; options.ctx = c.nCtx
                    options.arch = c.family.rawValue; options.kvHeads = c.nKVHead; options.ropeTheta = c.ropeTheta
                    options.positions = c.positions.rawValue; options.tiedHead = c.tiedEmbeddings
                case .vae, .other: break
                }
                try options.validate()
            }
        }
        TrainLoop<TrainOptions>.configureThreads(&options)
        // Paths that resolve from any working directory, so `--resume` works from anywhere.
        options.data = Self.absolute(options.data)
        options.evalData = options.evalData.map(Self.absolute)
        options.initFrom = options.initFrom.map(Self.absolute)
        self.tokenizer = tokenizer

        let examples = try loadData(options.data, option: "--data", resumed: resume)
        let items = try Batching.tokenize(examples, tokenizer: tokenizer, nCtx: options.ctx, source: options.data, use: .training)
        let fingerprint = try Self.fingerprint(options.data)
        var evalItems: [TokenizedExample]? = nil
        var evalFingerprint: String? = nil
        if let evalPath = options.evalData {
            evalItems = try Batching.tokenize(try loadData(evalPath, option: "--eval-data", resumed: resume),
                                              tokenizer: tokenizer, nCtx: options.ctx, source: evalPath, use: .training)
            evalFingerprint = try Self.fingerprint(evalPath)
        }
        if let manifest = resumed?.manifest {
            if manifest.dataFingerprint != fingerprint {
                throw RuleLensError("--resume: \(options.data) is not the data the run in \(outDir) was trained on (its contents changed)",
                                    fix: "resume with the original data file (--data PATH re-points the run to a copy of it), or start a new run in another --out folder")
            }
            if let saved = manifest.evalDataFingerprint, let evalFingerprint, saved != evalFingerprint {
                throw RuleLensError("--resume: \(options.evalData!) is not the held-out data the run in \(outDir) was evaluated on (its contents changed)",
                                    fix: "resume with the original file (--eval-data PATH re-points the run to a copy of it), or start a new run in another --out folder")
            }
        }
        // A learned position table far longer than every example trains rows no example reaches and costs memory
        // and time for nothing (--ctx 50000000 on 10-token examples: 12.8 GB and minutes of initialisation).
        let longestSequence = (items + (evalItems ?? [])).map { $0.inputLength + 1 }.max() ?? 1
        if resumed == nil, options.initFrom == nil, options.family == "gpt2", options.ctx > max(8 * longestSequence, Self.contextAlwaysAccepted) {
            throw RuleLensError("--ctx \(options.ctx) is far beyond the longest example (\(longestSequence) positions): the learned position table would hold \(options.ctx - longestSequence) rows no example trains, at \(MemoryEstimate.format(options.ctx.multipliedSaturating(options.dModel).multipliedSaturating(16))) with their optimizer state",
                                fix: "pass --ctx \(longestSequence) (or leave --ctx out: it is derived from the data), or up to \(max(8 * longestSequence, Self.contextAlwaysAccepted)) for longer examples later")
        }
        // Sizes before allocation: parameters, gradients, AdamW moments and activations for the longest batch.
        try Self.checkMemory(options, vocabSize: tokenizer.count, longestInput: items.map(\.inputLength).max() ?? 1,
                             evalInputs: evalItems?.map(\.inputLength).max(), log: progress.message)
        // Rule prior: each training example's table row, from the --rule-prior column (values sorted, as in the checkpoint).
        var priorRows: [Int]? = nil
        if let column = options.rulePrior, let site = options.inject.flatMap(Injection.init(rawValue:)) {
            if parallel != nil {
                throw RuleLensError("--rule-prior is not supported under mpirun yet", fix: "train the rule-prior model in one process")
            }
            if options.evalEvery > 0 {
                throw RuleLensError("--eval-every is not supported with --rule-prior yet (evaluation would run without the prior)",
                                    fix: "drop --eval-every and evaluate the checkpoint with `rulelens eval` (it selects each example's prior)")
            }
            let values = try RulePriorData.values(column: column, examples: examples, path: options.data)
            let rules = Array(Set(values)).sorted()
            if let prior = model as? any RuleConditionedModel {      // resumed: the saved table must have the same rows
                guard prior.spec.rules == rules, prior.spec.column == column, prior.spec.inject == site else {
                    throw RuleLensError("--resume: the saved rule prior (\(prior.spec.column), \(prior.spec.inject.rawValue), rules \(prior.spec.rules)) does not match the data's (\(column), \(site.rawValue), rules \(rules))",
                                        fix: "resume with the data the run was trained on, or start a new run in another --out folder")
                }
            } else if model != nil {
                throw RuleLensError("--resume: the saved model has no rule prior, but the run's options name one", fix: "start a new run in another --out folder")
            } else {
                model = try RulePriorGPT(config: options.modelConfig(vocabSize: tokenizer.count),
                                         spec: RulePriorSpec(column: column, inject: site, rules: rules), seed: options.seed)
            }
            let index = Dictionary(uniqueKeysWithValues: rules.enumerated().map { ($1, $0) })
            priorRows = values.map { index[$0]! }
        }
        if model == nil { model = try options.buildModel(vocabSize: tokenizer.count) }
        if options.keepBest && (options.evalEvery == 0 || evalItems == nil) {
            throw RuleLensError("--keep-best keeps the checkpoint with the lowest held-out loss, but this run has no held-out evaluation",
                                fix: "add --eval-every N and held-out data (--eval-data FILE, or --data DIR / --task, whose test part is used)")
        }
        let trainable = LanguageModelTrainable(job: self, model: model, options: options, items: items, evalItems: evalItems, priorRows: priorRows)
        let adams = try loop.optimizers(trainable, resumed: resumed, weightDecay: options.weightDecay)
        // Every rank has passed every check: agree on what makes the result, then rank 0 alone writes.
        try parallel?.agree(try Self.agreementItems(options, dataFingerprint: fingerprint, model: model, adam: adams[0]))

        // All checks passed: from here on the folder is written (under mpirun by rank 0 alone).
        self.options = options
        return try loop.train(trainable, adams: adams, options: options, resumed: resumed, fingerprint: fingerprint,
                              evalFingerprint: evalFingerprint, checkpointExtra: [:])
    }

    /// A --ctx up to this is accepted whatever the data (room for longer examples later).
    static let contextAlwaysAccepted = 4096
    /// Runs whose estimate reaches this are announced before they allocate.
    static let announcedMemory = 1 << 30

    /// Refuses a run whose parameters, optimizer state and activations would not fit in memory, with the estimate
    /// and which option to lower.
    static func checkMemory(_ options: TrainOptions, vocabSize: Int, longestInput: Int, evalInputs: Int?, log: (String) -> Void = { _ in }) throws {
        let config = options.llamaConfig(vocabSize: vocabSize).map(MemoryEstimate.comparableConfig) ?? options.modelConfig(vocabSize: vocabSize)
        let seqLen = min(options.ctx, longestInput)
        var estimate = MemoryEstimate.training(config, batch: options.batch, seqLen: seqLen)
        if let evalInputs {   // held-out loss runs forward-only in batches of 64 on top of the training buffers
            estimate.parts.append(("held-out evaluation", MemoryEstimate.inference(config, batch: min(64, options.batch), seqLen: min(options.ctx, evalInputs)).parts[1].bytes))
        }
        guard let room = MemoryEstimate.available(), estimate.total > room else {
            // Large runs say what they allocate before they start (initialising gigabytes takes a while).
            if estimate.total >= Self.announcedMemory { log("training needs about \(estimate); allocating") }
            return
        }
        let modelOnly = MemoryEstimate.training(config, batch: 1, seqLen: 1).parts[0].bytes
        var fixes: [String] = []
        if modelOnly > room / 2 {
            let wpe = MemoryEstimate.format(config.nCtx.multipliedSaturating(config.dModel).multipliedSaturating(16))
            if options.ctx > longestInput + 1 { fixes.append("lower --ctx to \(longestInput + 1) (what the data needs; --ctx \(options.ctx) alone costs \(wpe) of position embeddings and their optimizer state)") }
            fixes.append("choose a smaller model (--layers, --d-model, --d-mlp)")
        } else if let fits = MemoryEstimate.largestBatch(upTo: options.batch, { MemoryEstimate.training(config, batch: $0, seqLen: seqLen) }) {
            fixes.append("lower --batch to \(fits) or less")
        } else {
            fixes.append("choose a smaller model or shorter examples")
        }
        try estimate.require("training (\(MemoryEstimate.parameterCount(config)) parameters, batch \(options.batch) × \(seqLen) positions)",
                             fix: fixes.joined(separator: ", or "))
    }

    // MARK: - Output folder and resume

    /// The checks a fresh run makes before writing anything: the options, and that `outDir` holds no run.
    /// Callers that prepare files for the run (e.g. generated data) call this first, so a refusal changes nothing.
    public static func checkFresh(options: TrainOptions, outDir: String) throws {
        try TrainLoop<TrainOptions>.checkFresh(options: options, outDir: outDir)
    }

    /// The options of the run saved in `outDir` (for `--resume`); throws if it holds no resumable run. A run killed
    /// before its first save is resumable too: it starts again from step 0 with these options.
    public static func savedOptions(in outDir: String) throws -> TrainOptions {
        try TrainLoop<TrainOptions>.savedOptions(in: outDir)
    }

    /// Loads a data file of the run; on resume a missing file names the option that re-points it.
    func loadData(_ file: String, option: String, resumed: Bool) throws -> [Example] {
        if resumed && !FileManager.default.fileExists(atPath: file) {
            throw RuleLensError("--resume: \(file), the \(option) of the run in \(outDir) (recorded in \(Self.configFile)), does not exist",
                                fix: "pass \(option) PATH to point the run at the same file where it is now (its contents are checked against the save), or, for data generated with --task, the same --task options")
        }
        return try Jobs.loadExamples(path: file)
    }

    /// `path` made absolute against the current folder (standardised), so it still resolves from another one.
    static func absolute(_ path: String) -> String {
        URL(fileURLWithPath: path).standardizedFileURL.path
    }

    /// FNV-1a (64-bit) of a file's bytes, so a resumed run can tell that its data file changed.
    static func fingerprint(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RuleLensError("data file \(path) cannot be read", fix: "check the path and its permissions")
        }
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        data.withUnsafeBytes { raw in for byte in raw { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 } }
        return String(hash, radix: 16)
    }

    // MARK: - Evaluation during training

    /// Appends one row to eval_log.csv; returns the held-out loss (nil when it scored a training subset instead).
    @discardableResult
    func evaluate(_ model: any LanguageModel, step: Int, trainItems: [TokenizedExample], evalItems: [TokenizedExample]?) throws -> Double? {
        let line: String
        var heldOut: Double? = nil
        if let evalItems {
            let loss = EvalJob.targetLoss(model, items: evalItems, batchSize: 64, pad: tokenizer.pad).mean
            heldOut = loss
            line = "\(step),heldout,\(loss),"
            progress.message(String(format: "eval step %d: held-out loss %.4f (%d examples)", step, loss, evalItems.count))
        } else {
            let subset = Array(trainItems.prefix(128))
            let outputs = Generate.greedy(model, prompts: subset.map(\.prompt), maxNewTokens: (subset.map { $0.tokens.count - $0.promptLength }.max() ?? 1) + 1,
                                          eos: tokenizer.eos)
            let correct = zip(subset, outputs).filter { item, output in Array(item.tokens[item.promptLength..<(item.tokens.count - 1)]) == output }.count
            let accuracy = Double(correct) / Double(max(1, subset.count))
            line = "\(step),train_subset,,\(accuracy)"
            progress.message(String(format: "eval step %d: train-subset accuracy %.3f (%d examples)", step, accuracy, subset.count))
        }
        let file = path(Self.evalLogFile)
        if !FileManager.default.fileExists(atPath: file) { try AtomicFile.write(Data((Self.evalLogHeader + "\n").utf8), to: file) }
        guard let handle = FileHandle(forWritingAtPath: file) else {
            throw RuleLensError("cannot append to \(file)", fix: "check the permissions of \(outDir)")
        }
        handle.seekToEndOfFile()
        handle.write(Data((line + "\n").utf8))
        handle.closeFile()
        return heldOut
    }

    /// The lowest held-out loss in eval_log.csv and its step (nil without held-out rows). After a resume the log is
    /// cut back to the save, so this is the best the resumed run has seen.
    public static func bestHeldOut(logAt dir: String) -> (step: Int, loss: Double)? {
        guard let text = try? String(contentsOfFile: (dir as NSString).appendingPathComponent(evalLogFile), encoding: .utf8) else { return nil }
        var best: (step: Int, loss: Double)? = nil
        for row in text.split(separator: "\n").dropFirst() {
            let f = row.split(separator: ",", omittingEmptySubsequences: false)
            guard f.count >= 3, f[1] == "heldout", let step = Int(f[0]), let loss = Double(f[2]), loss.isFinite else { continue }
            if best == nil || loss < best!.loss { best = (step, loss) }
        }
        return best
    }

    /// Writes the model as DIR/best, replacing the previous best only once the new one is complete (written beside it,
    /// then swapped by renames; a kill between the renames leaves `.best-old`, which `restoreBest` puts back).
    func saveBest(_ write: (String) throws -> Void) throws {
        let best = path(Self.bestFolder), fresh = path(".best-new-\(getpid())"), old = path(".best-old")
        try? FileManager.default.removeItem(atPath: fresh)
        try write(fresh)
        try? FileManager.default.removeItem(atPath: old)
        if FileManager.default.fileExists(atPath: best) { try FileManager.default.moveItem(atPath: best, toPath: old) }
        try FileManager.default.moveItem(atPath: fresh, toPath: best)
        try? FileManager.default.removeItem(atPath: old)
    }

    /// Repairs what a kill inside `saveBest` left: a `.best-old` is put back when `best` is missing (killed between
    /// the renames) and removed otherwise; half-written `.best-new-PID` folders are removed.
    func restoreBest() {
        let fm = FileManager.default
        let best = path(Self.bestFolder), old = path(".best-old")
        if fm.fileExists(atPath: old) {
            if fm.fileExists(atPath: best) { try? fm.removeItem(atPath: old) } else { try? fm.moveItem(atPath: old, toPath: best) }
        }
        for name in (try? fm.contentsOfDirectory(atPath: outDir)) ?? [] where name.hasPrefix(".best-new-") {
            try? fm.removeItem(atPath: path(name))
        }
    }
}

/// Rewinding a training log (train_log.csv, eval_log.csv, kl_dims.csv) to a save.
enum TrainLog {
    /// Rewrites a CSV whose first column is the step, keeping the header and the rows up to `throughStep`
    /// (a resumed run repeats the steps after its checkpoint). A missing file gets just the header.
    static func rewind(_ path: String, header: String, throughStep keep: Int) throws {
        var text = header + "\n"
        if let old = try? String(contentsOfFile: path, encoding: .utf8) {
            for line in old.split(separator: "\n").dropFirst() {
                if let step = Int(line.split(separator: ",").first ?? ""), step <= keep { text += line + "\n" }
            }
        }
        try AtomicFile.write(Data(text.utf8), to: path)
    }
}

/// A GPT-2 / Llama-family model (plain or with a rule prior) as `TrainLoop` trains it: the batch of each step from
/// (seed, step), the loss on the targets, data parallelism under mpirun, evaluation every `evalEvery` steps, and the
/// checkpoint with the run's tokenizer.
final class LanguageModelTrainable: Trainable {
    let job: TrainJob
    let model: any LanguageModel
    let options: TrainOptions
    let items: [TokenizedExample]
    let evalItems: [TokenizedExample]?
    let priorRows: [Int]?
    /// The lowest held-out loss so far (`keepBest`): read from eval_log.csv before the first evaluation of this
    /// process, once the loop has cut the log back to the save it resumes from (rows of killed steps would count).
    var bestLoss: Double? = nil
    var tokenizer: any TextTokenizer { job.tokenizer }
    private var lastBatch: (local: Batch, global: Batch)? = nil

    init(job: TrainJob, model: any LanguageModel, options: TrainOptions, items: [TokenizedExample], evalItems: [TokenizedExample]?, priorRows: [Int]?) {
        self.job = job; self.model = model; self.options = options; self.items = items; self.evalItems = evalItems; self.priorRows = priorRows
        job.restoreBest()
    }

    var parameterStores: [ParameterStore] {
        [ParameterStore(params: model.parameterStorage, grads: model.gradientStorage, tensors: model.parameterTensors)]
    }
    var stateFormat: String { "rulelens-train-state" }
    var logFiles: [TrainLogFile] {
        [TrainLogFile(name: TrainJob.logFile, header: TrainJob.logHeader),
         TrainLogFile(name: TrainJob.evalLogFile, header: TrainJob.evalLogHeader, keptEmpty: false)]
    }

    func zeroGrads() { model.zeroGrads() }

    func forwardLoss(step: Int) throws -> (loss: Float, tokens: Int) {
        let pad = tokenizer.pad
        let batchIndices = Batching.indices(step: step, batchSize: options.batch, count: items.count, seed: options.seed)
        let global = Batching.makeBatch(batchIndices.map { items[$0] }, lossOn: options.lossOn, pad: pad)
        if let priorRows, let prior = model as? any RuleConditionedModel { prior.ruleRows = batchIndices.map { priorRows[$0] } }
        let batch = job.parallel.map { global.rows($0.rows(ofGlobalBatch: global.batch), pad: pad) } ?? global
        _ = model.forward(tokens: batch.inputs, batch: batch.batch, seqLen: batch.seqLen, hooks: nil)
        lastBatch = (batch, global)
        return (model.loss(targets: batch.targets, lossMask: batch.lossMask), global.batch * global.seqLen)
    }

    func backward() { model.backward() }

    func reduceGradients(loss: Float) -> Float {
        guard let parallel = job.parallel, let (batch, global) = lastBatch else { return loss }
        return parallel.reduce(gradients: model.gradientStorage.ptr, count: model.gradientStorage.count, localLoss: loss,
                               localWeight: batch.lossWeight, globalWeight: global.lossWeight)
    }

    func logRows(step: Int, loss: Float, lr: Float, gradNorm: Float, tokensPerSecond: Double) -> [String?] {
        [String(format: "%d,%.6f,%.6e,%.1f", step, loss, lr, tokensPerSecond), nil]
    }

    func progressText(step: Int, steps: Int, loss: Float, lr: Float) -> String {
        String(format: "step %d/%d | loss %.4f | lr %.2e | ", step, steps, loss, lr)
    }

    func afterStep(_ step: Int) throws {
        if job.writes && options.evalEvery > 0 && step % options.evalEvery == 0 {
            if options.keepBest && bestLoss == nil { bestLoss = TrainJob.bestHeldOut(logAt: job.outDir)?.loss ?? .infinity }
            let loss = try job.evaluate(model, step: step, trainItems: items, evalItems: evalItems)
            if options.keepBest, let loss, loss < bestLoss! {
                bestLoss = loss
                try job.saveBest { try writeCheckpoint(to: $0, step: step, extra: [:]) }
            }
        }
    }

    func beforeSave() throws {
        try job.parallel?.checkIdentical(model.parameterStorage.ptr, count: model.parameterStorage.count, what: "weights")
    }

    func writeCheckpoint(to dir: String, step: Int, extra: [String: String]) throws {
        // Characters: vocab.json (+ the tokenizer.json Checkpoint derives from it); BPE: the tokenizer's own files.
        let tokenizer = self.tokenizer
        let chars = tokenizer as? CharTokenizer
        try ModelFolder.save(model, vocab: chars?.vocab, files: chars == nil ? try tokenizer.checkpointFiles() : [:],
                             bosTokenID: Int(tokenizer.bos), eosTokenID: Int(tokenizer.eos), to: dir, extra: extra,
                             metadata: ["step": "\(step)"], overwrite: false)
    }
}
