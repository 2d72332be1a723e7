import Foundation

/// Everything that determines a training run's result (saved as DIR/train_config.json so `--resume` can check it).
public struct TrainOptions: Codable, Equatable, Sendable {
    public var data: String
    public var evalData: String?
    public var layers = 2, heads = 4, dModel = 128
    public var dMLP: Int? = nil
    public var ctx = 32
    public var steps = 1000, batch = 32
    public var lr: Float = 1e-3
    /// Final learning rate of the cosine schedule, as a fraction of `lr`.
    public var minLRFraction: Float = 0.1
    public var warmup = 50
    public var weightDecay: Float = 0.01
    /// Global gradient-norm clip (0 = off).
    public var gradClip: Float = 1.0
    public var seed: UInt64 = 0
    public var lossOn: LossOn = .target
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

    /// Checks the numbers make sense before anything is written.
    public func validate() throws {
        for (name, v) in [("steps", steps), ("batch", batch)] where v <= 0 {
            throw RuleLensError("--\(name) is \(v), but it must be positive", fix: "pass a positive --\(name)")
        }
        if warmup < 0 { throw RuleLensError("--warmup is \(warmup), but it cannot be negative", fix: "pass --warmup 0 or more") }
        if !(lr > 0) || !lr.isFinite { throw RuleLensError("--lr is \(lr), but it must be a positive number", fix: "pass e.g. --lr 1e-3") }
        if !gradClip.isFinite || gradClip < 0 {
            throw RuleLensError("--grad-clip is \(gradClip), but it must be a finite number, 0 (off) or positive", fix: "pass e.g. --grad-clip 1, or --grad-clip 0 to turn clipping off")
        }
        if !minLRFraction.isFinite || minLRFraction < 0 {
            throw RuleLensError("the final learning-rate fraction is \(minLRFraction), but it must be a finite number ≥ 0", fix: "use the default 0.1")
        }
        if !(weightDecay >= 0) || !weightDecay.isFinite { throw RuleLensError("--weight-decay is \(weightDecay), but it cannot be negative", fix: "pass e.g. --weight-decay 0.01") }
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
    }
}

/// What a finished run reports.
public struct TrainSummary: Sendable {
    public let steps: Int
    public let finalLoss: Float
    public let tokensPerSecond: Double
    public let seconds: Double
    public let checkpoint: String
}

/// A training run writing into one folder: checkpoint (HF GPT-2 safetensors + config), `train_state.safetensors`
/// (AdamW moments and step, for `--resume`), `train_config.json`, `train_log.csv` (step, loss, lr, tokens/s) and,
/// with evaluation, `eval_log.csv`.
///
/// Reproducible: the data order depends only on (seed, step), initialisation only on the seed, so a resumed run
/// takes exactly the steps an uninterrupted one would (bitwise identical weights with one thread).
public final class TrainJob {
    public static let stateFile = "train_state.safetensors"
    public static let configFile = "train_config.json"
    public static let logFile = "train_log.csv"
    public static let evalLogFile = "eval_log.csv"
    static let evalLogHeader = "step,split,loss,accuracy"

    public let options: TrainOptions
    public let outDir: String
    public let resume: Bool
    /// Save a checkpoint every this many steps (0: no periodic saves); the last step is always saved.
    public var saveEvery = 100
    /// Evaluate every this many steps (0: no periodic evaluation).
    public var evalEvery = 0
    /// Worker threads for RuleLens loops and BLAS (nil = leave as configured, 0 = all cores).
    public var threads: Int? = nil

    /// Checks the run-time options (0 means "none"/"automatic" for each; negative numbers are refused).
    public func validateRunOptions() throws {
        for (name, value) in [("save-every", saveEvery), ("eval-every", evalEvery), ("threads", threads ?? 0)] where value < 0 {
            throw RuleLensError("--\(name) is \(value), but it must be 0 or positive",
                                fix: "pass --\(name) 0 (\(name == "threads" ? "all cores" : "never periodically")) or a positive number")
        }
    }
    /// The progress line (disable for quiet library use).
    public var progress = ProgressLine()
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

    /// Runs (or resumes) training to `options.steps`; returns the summary. Throws `RuleLensError` for bad input
    /// and for a non-finite loss (the last good checkpoint stays in place).
    @discardableResult
    public func run() throws -> TrainSummary {
        try validateRunOptions()
        if let threads { Parallel.configure(threads: threads) }
        var tokenizer: any TextTokenizer = CharTokenizer.standard
        var options = self.options
        let fm = FileManager.default

        // Decide where we start: a fresh folder or the saved state of an earlier run.
        var model: (any LanguageModel)! = nil
        var adam = AdamW(weightDecay: options.weightDecay)
        var startStep = 0
        var savedFingerprint: String? = nil
        if resume {
            try options.validate()
            let saved = try readSavedOptions()
            try checkResumable(requested: options, saved: saved)
            options = saved
            (model, startStep, savedFingerprint) = try loadState(into: &adam)
            tokenizer = try Jobs.tokenizer(checkpoint: outDir, vocabSize: model.vocabSize)
        } else if let initFrom = options.initFrom {
            try checkFreshOutput()
            model = try Jobs.loadModel(initFrom)
            tokenizer = try Jobs.tokenizer(checkpoint: initFrom, vocabSize: model.vocabSize)
            // The shape is the pretrained model's; recorded so train_config.json says what was trained.
            if let gpt = model as? GPT {
                let c = gpt.config
                options.layers = c.nLayer; options.heads = c.nHead; options.dModel = c.dModel; options.dMLP = c.dMLP; options.ctx = c.nCtx
                options.arch = nil
            } else if let llama = model as? LlamaModel {
                let c = llama.config
                options.layers = c.nLayer; options.heads = c.nHead; options.dModel = c.dModel; options.dMLP = c.dMLP; options.ctx = c.nCtx
                options.arch = c.family.rawValue; options.kvHeads = c.nKVHead; options.ropeTheta = c.ropeTheta
                options.positions = c.positions.rawValue; options.tiedHead = c.tiedEmbeddings
            }
            try options.validate()
        } else {
            try options.validate()
            try checkFreshOutput()
        }
        self.tokenizer = tokenizer

        let examples = try Jobs.loadExamples(path: options.data)
        let items = try Batching.tokenize(examples, tokenizer: tokenizer, nCtx: options.ctx, source: options.data, use: .training)
        let fingerprint = try Self.fingerprint(options.data)
        if let savedFingerprint, savedFingerprint != fingerprint {
            throw RuleLensError("--resume: \(options.data) is not the data the run in \(outDir) was trained on (its contents changed)",
                                fix: "resume with the original data file, or start a new run in another --out folder")
        }
        var evalItems: [TokenizedExample]? = nil
        if let evalPath = options.evalData {
            evalItems = try Batching.tokenize(try Jobs.loadExamples(path: evalPath), tokenizer: tokenizer, nCtx: options.ctx, source: evalPath, use: .training)
        }
        // Sizes before allocation: parameters, gradients, AdamW moments and activations for the longest batch.
        try Self.checkMemory(options, vocabSize: tokenizer.count, longestInput: items.map(\.inputLength).max() ?? 1,
                             evalInputs: evalItems?.map(\.inputLength).max())
        if model == nil { model = try options.buildModel(vocabSize: tokenizer.count) }
        // Every rank has passed every check: agree on what makes the result, then rank 0 alone writes.
        try parallel?.agree(try Self.agreementItems(options, dataFingerprint: fingerprint, model: model, adam: adam))

        if !resume && writes {
            if !fm.fileExists(atPath: outDir) {
                do { try fm.createDirectory(atPath: outDir, withIntermediateDirectories: true) } catch {
                    throw RuleLensError("cannot create the output folder \(outDir) (\(error.localizedDescription))", fix: "check the path and its permissions")
                }
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            try AtomicFile.write(try encoder.encode(options), to: path(Self.configFile))
        }
        let log = writes ? try TrainLog(path: path(Self.logFile), keepingStepsThrough: resume ? startStep : nil) : nil
        if resume && writes && FileManager.default.fileExists(atPath: path(Self.evalLogFile)) {
            try TrainLog.rewind(path(Self.evalLogFile), header: Self.evalLogHeader, throughStep: startStep)
        }

        let schedule = CosineSchedule(maxLR: options.lr, minLR: options.lr * options.minLRFraction,
                                      warmupSteps: options.warmup, totalSteps: options.steps)
        var lastSaved: Int? = resume ? startStep : nil
        var lastLoss: Float = .nan
        var tokensDone = 0
        let t0 = ProgressLine.now()
        var windowSeconds = 0.0, windowTokens = 0, stepSeconds = 0.0
        var tokensPerSecond = 0.0
        if startStep >= options.steps {
            progress.message("\(outDir) already finished all \(options.steps) steps; nothing to do")
        }
        for step in startStep..<max(startStep, options.steps) {
            let stepStart = ProgressLine.now()
            let global = Batching.makeBatch(Batching.indices(step: step, batchSize: options.batch, count: items.count, seed: options.seed).map { items[$0] },
                                            lossOn: options.lossOn, pad: tokenizer.pad)
            let batch = parallel.map { global.rows($0.rows(ofGlobalBatch: global.batch), pad: tokenizer.pad) } ?? global
            model.zeroGrads()
            _ = model.forward(tokens: batch.inputs, batch: batch.batch, seqLen: batch.seqLen, hooks: nil)
            var loss = model.loss(targets: batch.targets, lossMask: batch.lossMask)
            guard loss.isFinite else { throw nonFinite("the loss is \(loss)", step: step + 1, lastSaved: lastSaved) }
            model.backward()
            if let parallel {
                loss = parallel.reduce(gradients: model.gradientStorage.ptr, count: model.gradientStorage.count, localLoss: loss,
                                       localWeight: batch.lossWeight, globalWeight: global.lossWeight)
            }
            let lr = schedule.lr(at: step)
            if options.gradClip > 0 {
                let norm = clipGradNorm(model.gradientStorage, maxNorm: options.gradClip)
                guard norm.isFinite else { throw nonFinite("the gradient norm is \(norm)", step: step + 1, lastSaved: lastSaved) }
            }
            adam.step(model, lr: lr)
            lastLoss = loss

            let now = ProgressLine.now()
            let stepTokens = global.batch * global.seqLen
            tokensDone += stepTokens
            stepSeconds += now - stepStart
            windowTokens += stepTokens
            windowSeconds += now - stepStart
            if windowSeconds >= 1 || tokensPerSecond == 0 || step + 1 == options.steps {
                // Throughput over the last second of training steps (evaluation and saving excluded).
                tokensPerSecond = Double(windowTokens) / max(windowSeconds, 1e-9)
                windowSeconds = 0; windowTokens = 0
            }
            try log?.append(step: step + 1, loss: loss, lr: lr, tokensPerSecond: Double(stepTokens) / max(now - stepStart, 1e-9))
            // ETA from the mean wall time per step of this session (evaluation and saving included).
            let remaining = Double(options.steps - step - 1) * (now - t0) / Double(step + 1 - startStep)
            progress.update(String(format: "step %d/%d | loss %.4f | lr %.2e | ", step + 1, options.steps, loss, lr)
                            + "\(ProgressLine.rate(tokensPerSecond)) tok/s | ETA \(ProgressLine.duration(remaining))",
                            final: step + 1 == options.steps)

            if writes && evalEvery > 0 && (step + 1) % evalEvery == 0 {
                try evaluate(model, step: step + 1, trainItems: items, evalItems: evalItems)
            }
            if (saveEvery > 0 && (step + 1) % saveEvery == 0) || step + 1 == options.steps {
                try parallel?.checkIdentical(model.parameterStorage.ptr, count: model.parameterStorage.count, what: "weights")
                if writes { try saveState(model, adam: adam, step: step + 1, options: options, fingerprint: fingerprint) }
                lastSaved = step + 1
            }
        }
        try log?.close()
        let seconds = ProgressLine.now() - t0
        return TrainSummary(steps: options.steps, finalLoss: lastLoss, tokensPerSecond: Double(tokensDone) / max(stepSeconds, 1e-9),
                            seconds: seconds, checkpoint: outDir)
    }

    /// Refuses a run whose parameters, optimizer state and activations would not fit in memory, with the estimate
    /// and which option to lower.
    static func checkMemory(_ options: TrainOptions, vocabSize: Int, longestInput: Int, evalInputs: Int?) throws {
        let config = options.llamaConfig(vocabSize: vocabSize).map(MemoryEstimate.comparableConfig) ?? options.modelConfig(vocabSize: vocabSize)
        let seqLen = min(options.ctx, longestInput)
        var estimate = MemoryEstimate.training(config, batch: options.batch, seqLen: seqLen)
        if let evalInputs {   // held-out loss runs forward-only in batches of 64 on top of the training buffers
            estimate.parts.append(("held-out evaluation", MemoryEstimate.inference(config, batch: min(64, options.batch), seqLen: min(options.ctx, evalInputs)).parts[1].bytes))
        }
        guard let room = MemoryEstimate.available(), estimate.total > room else { return }
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

    func checkFreshOutput() throws {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: outDir, isDirectory: &isDir) else { return }
        guard isDir.boolValue else {
            throw RuleLensError("--out \(outDir) is a file, not a folder", fix: "choose a folder name for --out")
        }
        if Checkpoint.exists(at: outDir) || fm.fileExists(atPath: path(Self.stateFile)) {
            throw RuleLensError("\(outDir) already holds a training run (checkpoint and state)",
                                fix: "pass --resume to continue it, or choose another --out folder")
        }
        if fm.fileExists(atPath: path(Self.logFile)) || fm.fileExists(atPath: path(Self.configFile)) {
            throw RuleLensError("\(outDir) holds the log of an earlier run that stopped before its first checkpoint",
                                fix: "choose another --out folder, or delete \(outDir) first")
        }
    }

    func readSavedOptions() throws -> TrainOptions { try Self.savedOptions(in: outDir) }

    /// The options of the run saved in `outDir` (for `--resume`); throws if it holds no resumable run.
    public static func savedOptions(in outDir: String) throws -> TrainOptions {
        func path(_ name: String) -> String { outDir + "/" + name }
        let file = path(Self.configFile)
        guard Checkpoint.exists(at: outDir), FileManager.default.fileExists(atPath: path(Self.stateFile)),
              let data = FileManager.default.contents(atPath: file) else {
            throw RuleLensError("--resume: \(outDir) holds no resumable run (it needs \(Checkpoint.weightsFile), \(Self.stateFile) and \(Self.configFile))",
                                fix: "resume the --out folder of a `rulelens train` run that saved at least one checkpoint, or drop --resume to start afresh")
        }
        do { return try JSONDecoder().decode(TrainOptions.self, from: data) } catch {
            throw RuleLensError("\(file) cannot be read (\(error))", fix: "it is written by `rulelens train`; restore it or start a new run in another folder")
        }
    }

    /// On resume, the options that shape the result must equal the saved ones; the error names each difference.
    func checkResumable(requested: TrainOptions, saved: TrainOptions) throws {
        let a = try JSONSerialization.jsonObject(with: JSONEncoder().encode(requested)) as? [String: Any] ?? [:]
        let b = try JSONSerialization.jsonObject(with: JSONEncoder().encode(saved)) as? [String: Any] ?? [:]
        var differences: [String] = []
        for key in Set(a.keys).union(b.keys).sorted() {
            let x = a[key].map { "\($0)" } ?? "none", y = b[key].map { "\($0)" } ?? "none"
            if x != y { differences.append("\(key): saved \(y), now \(x)") }
        }
        if !differences.isEmpty {
            throw RuleLensError("--resume: the options differ from the run saved in \(outDir) (\(differences.joined(separator: "; ")))",
                                fix: "pass the same options as the original run (see \(path(Self.configFile))), or start a new run in another --out folder")
        }
    }

    func loadState(into adam: inout AdamW) throws -> (any LanguageModel, Int, String?) {
        let model = try Jobs.loadModel(outDir)
        let state = try Safetensors.read(path: path(Self.stateFile))
        let weights = try Safetensors.read(path: path(Checkpoint.weightsFile))
        guard let stepText = state.metadata["step"], let step = Int(stepText), let tText = state.metadata["adam_t"], let t = Int(tText),
              let m = state.info("adam.m"), let v = state.info("adam.v"),
              m.count == model.parameterStorage.count, v.count == model.parameterStorage.count else {
            throw RuleLensError("\(path(Self.stateFile)) is not a RuleLens training state for this model",
                                fix: "it is written by `rulelens train`; start a new run in another --out folder")
        }
        guard weights.metadata["step"] == stepText else {
            throw RuleLensError("the checkpoint in \(outDir) is from step \(weights.metadata["step"] ?? "?") but the optimizer state from step \(step) (an interrupted save)",
                                fix: "start a new run in another --out folder; the weights in \(outDir) still load with `rulelens eval`")
        }
        adam.m = FloatBuffer(count: model.parameterStorage.count)
        adam.v = FloatBuffer(count: model.parameterStorage.count)
        state.copyFloats(m, into: adam.m.ptr)
        state.copyFloats(v, into: adam.v.ptr)
        adam.t = t
        return (model, step, state.metadata["data_fingerprint"])
    }

    func saveState(_ model: any LanguageModel, adam: AdamW, step: Int, options: TrainOptions, fingerprint: String) throws {
        let n = model.parameterStorage.count
        let meta = ["format": "rulelens-train-state", "step": "\(step)", "adam_t": "\(adam.t)", "seed": "\(options.seed)",
                    "data_fingerprint": fingerprint]
        // State first, weights last: a crash between the two leaves step numbers that disagree, which resume detects.
        try Safetensors.write([Safetensors.Entry(name: "adam.m", shape: [n], floats: adam.m.ptr),
                               Safetensors.Entry(name: "adam.v", shape: [n], floats: adam.v.ptr)],
                              metadata: meta, to: path(Self.stateFile))
        // Characters: vocab.json (+ the tokenizer.json Checkpoint derives from it); BPE: the tokenizer's own files.
        let chars = tokenizer as? CharTokenizer
        try ModelFolder.save(model, vocab: chars?.vocab, files: chars == nil ? try tokenizer.checkpointFiles() : [:],
                             bosTokenID: Int(tokenizer.bos), eosTokenID: Int(tokenizer.eos), to: outDir,
                            extra: ["step": "\(step)", "steps": "\(options.steps)", "data": options.data, "seed": "\(options.seed)"],
                            metadata: ["step": "\(step)"], overwrite: true)
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

    func nonFinite(_ what: String, step: Int, lastSaved: Int?) -> RuleLensError {
        let kept = lastSaved.map { "the last good checkpoint (step \($0)) is kept in \(outDir)" }
            ?? "no checkpoint had been saved yet, so none was written"
        return RuleLensError("training stopped at step \(step): \(what); \(kept)",
                             fix: "lower --lr (now \(options.lr)), lengthen --warmup, or keep --grad-clip on; then train again into a new --out folder")
    }

    // MARK: - Evaluation during training

    func evaluate(_ model: any LanguageModel, step: Int, trainItems: [TokenizedExample], evalItems: [TokenizedExample]?) throws {
        let line: String
        if let evalItems {
            let loss = EvalJob.targetLoss(model, items: evalItems, batchSize: 64, pad: tokenizer.pad).mean
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
    }
}

/// DIR/train_log.csv: `step,loss,lr,tokens_per_s`, one row per step, appended as training runs.
final class TrainLog {
    let handle: FileHandle
    let path: String

    /// Opens the log; with `keepingStepsThrough`, keeps only the header and rows up to that step (a resumed run
    /// rewrites the steps after its checkpoint), otherwise starts a new file.
    init(path: String, keepingStepsThrough: Int?) throws {
        self.path = path
        if let keep = keepingStepsThrough {
            try TrainLog.rewind(path, header: "step,loss,lr,tokens_per_s", throughStep: keep)
        } else {
            try AtomicFile.write(Data("step,loss,lr,tokens_per_s\n".utf8), to: path)
        }
        guard let h = FileHandle(forWritingAtPath: path) else {
            throw RuleLensError("cannot open \(path) for writing", fix: "check the permissions of its folder")
        }
        h.seekToEndOfFile()
        handle = h
    }

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

    func append(step: Int, loss: Float, lr: Float, tokensPerSecond: Double) throws {
        handle.write(Data(String(format: "%d,%.6f,%.6e,%.1f\n", step, loss, lr, tokensPerSecond).utf8))
    }

    func close() throws { handle.closeFile() }
}
