import Foundation
import RuleLensModel
import RuleLensNumerics
import RuleLensTasks

/// Everything that determines a VAE training run (saved as DIR/train_config.json; `--resume` checks it).
public struct VAETrainOptions: Codable, Equatable, Sendable {
    public var data: String
    public var layers = 2, encLayers = 2, heads = 4, dModel = 128
    public var dMLP: Int? = nil
    public var ctx = 64
    public var latent = 32
    public var pooling: PoolMode = .mean
    public var inject: [Injection] = [.memory]
    public var decode: DecodeMode = .all
    public var freeBits: Float = 0.5
    public var beta: Float = 1.0
    public var betaCycles = 1
    public var ratioZero: Float = 0.5
    public var ratioIncrease: Float = 0.25
    public var supervise: String? = nil
    public var superviseWeight: Float = 1.0
    public var steps = 1000, batch = 32
    public var lr: Float = 1e-3
    public var minLRFraction: Float = 0.1
    public var warmup = 50
    public var weightDecay: Float = 0.01
    public var gradClip: Float = 1.0
    public var seed: UInt64 = 0

    public init(data: String) { self.data = data }

    /// The model these options build (classes filled in from the data when supervised).
    public func modelConfig(vocabSize: Int, classNames: [String] = []) -> VAEConfig {
        var c = VAEConfig(nLayer: layers, nEncLayer: encLayers, nHead: heads, dModel: dModel, dMLP: dMLP, nCtx: ctx,
                          vocabSize: vocabSize, latentSize: latent)
        c.pooling = pooling; c.inject = inject; c.decode = decode; c.freeBits = freeBits; c.beta = beta
        c.betaCycles = betaCycles; c.ratioZero = ratioZero; c.ratioIncrease = ratioIncrease
        c.supervise = supervise; c.superviseWeight = superviseWeight
        c.nClasses = classNames.count; c.classNames = classNames
        return c
    }

    public func validate() throws {
        for (name, v) in [("steps", steps), ("batch", batch)] where v <= 0 {
            throw RuleLensError("--\(name) is \(v), but it must be positive", fix: "pass a positive --\(name)")
        }
        if warmup < 0 { throw RuleLensError("--warmup is \(warmup), but it cannot be negative", fix: "pass --warmup 0 or more") }
        if !(lr > 0) || !lr.isFinite { throw RuleLensError("--lr is \(lr), but it must be a positive number", fix: "pass e.g. --lr 1e-3") }
        if !(weightDecay >= 0) { throw RuleLensError("--weight-decay is \(weightDecay), but it cannot be negative", fix: "pass e.g. --weight-decay 0.01") }
        var c = modelConfig(vocabSize: CharTokenizer.standard.count)
        if supervise != nil { c.nClasses = 2; c.classNames = ["a", "b"] }   // the real classes come from the data
        try c.validate()
    }
}

/// A VAE training run writing into one folder: the checkpoint (`VAECheckpoint`), `train_state.safetensors` (AdamW
/// moments of the three parameter stores and the step), `train_config.json`, `train_log.csv`
/// (`step,loss,rec,kl,kl_fb,beta,cls_loss,cls_acc,lr,grad_norm,tokens_per_s`) and `kl_dims.csv` (mean KL of every
/// latent dimension per step). Reproducible as `TrainJob`: initialisation from the seed, data order from (seed, step),
/// ε from (seed, step); a resumed run ends with the same weights as an uninterrupted one.
public final class VAETrainJob {
    public static let logHeader = "step,loss,rec,kl,kl_fb,beta,cls_loss,cls_acc,lr,grad_norm,tokens_per_s"
    public let options: VAETrainOptions
    public let outDir: String
    public let resume: Bool
    public var saveEvery = 100
    public var threads: Int? = nil
    public var progress = ProgressLine()

    public init(options: VAETrainOptions, outDir: String, resume: Bool = false) {
        self.options = options; self.outDir = outDir; self.resume = resume
    }

    func path(_ name: String) -> String { outDir + "/" + name }

    /// The options of the VAE run saved in `outDir`.
    public static func savedOptions(in outDir: String) throws -> VAETrainOptions {
        let file = outDir + "/" + TrainJob.configFile
        guard Checkpoint.exists(at: outDir), FileManager.default.fileExists(atPath: outDir + "/" + TrainJob.stateFile),
              let data = FileManager.default.contents(atPath: file) else {
            throw RuleLensError("--resume: \(outDir) holds no resumable VAE run (it needs model.safetensors, \(TrainJob.stateFile) and \(TrainJob.configFile))",
                                fix: "resume the --out folder of a `rulelens vae train` run that saved at least one checkpoint, or drop --resume")
        }
        do { return try JSONDecoder().decode(VAETrainOptions.self, from: data) } catch {
            throw RuleLensError("\(file) is not the options of a `rulelens vae train` run (\(error))", fix: "resume a VAE run, or start a new one in another folder")
        }
    }

    @discardableResult
    public func run() throws -> TrainSummary {
        if let threads { Parallel.configure(threads: threads) }
        let tokenizer = CharTokenizer.standard
        var options = self.options
        let fm = FileManager.default
        var vae: VAE
        var adams = [AdamW(weightDecay: options.weightDecay), AdamW(weightDecay: options.weightDecay), AdamW(weightDecay: options.weightDecay)]
        var startStep = 0
        var items: VAEItems
        if resume {
            let saved = try Self.savedOptions(in: outDir)
            if saved != options {
                let a = try JSONSerialization.jsonObject(with: JSONEncoder().encode(options)) as? [String: Any] ?? [:]
                let b = try JSONSerialization.jsonObject(with: JSONEncoder().encode(saved)) as? [String: Any] ?? [:]
                let diffs = Set(a.keys).union(b.keys).sorted().filter { "\(a[$0] ?? "none")" != "\(b[$0] ?? "none")" }
                    .map { "\($0): saved \(b[$0] ?? "none"), now \(a[$0] ?? "none")" }
                throw RuleLensError("--resume: the options differ from the run saved in \(outDir) (\(diffs.joined(separator: "; ")))",
                                    fix: "pass the same options as the original run (see \(path(TrainJob.configFile))), or start a new run elsewhere")
            }
            options = saved
            vae = try VAECheckpoint.load(outDir)
            items = try VAEItems(path: options.data, tokenizer: tokenizer, nCtx: options.ctx, labelColumn: options.supervise,
                                 classNames: options.supervise == nil ? nil : vae.config.classNames)
            startStep = try loadState(vae, into: &adams)
        } else {
            try options.validate()
            try checkFreshOutput()
            items = try VAEItems(path: options.data, tokenizer: tokenizer, nCtx: options.ctx, labelColumn: options.supervise)
            vae = try VAE(config: options.modelConfig(vocabSize: tokenizer.count, classNames: items.classNames), seed: options.seed)
            if !fm.fileExists(atPath: outDir) {
                do { try fm.createDirectory(atPath: outDir, withIntermediateDirectories: true) } catch {
                    throw RuleLensError("cannot create the output folder \(outDir) (\(error.localizedDescription))", fix: "check the path and its permissions")
                }
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            try AtomicFile.write(try encoder.encode(options), to: path(TrainJob.configFile))
        }
        let fingerprint = try TrainJob.fingerprint(options.data)
        let log = try CSVLog(path: path(TrainJob.logFile), header: Self.logHeader, keepingStepsThrough: resume ? startStep : nil)
        let k = vae.config.latentSize
        let klLog = try CSVLog(path: path("kl_dims.csv"), header: "step," + (0..<k).map { "kl_\($0)" }.joined(separator: ","),
                               keepingStepsThrough: resume ? startStep : nil)
        let schedule = CosineSchedule(maxLR: options.lr, minLR: options.lr * options.minLRFraction, warmupSteps: options.warmup, totalSteps: options.steps)
        let betaSchedule = vae.config.betaSchedule(totalSteps: options.steps)
        var lastSaved: Int? = resume ? startStep : nil
        var lastLoss = Double.nan
        var tokensDone = 0, stepSeconds = 0.0, windowTokens = 0, windowSeconds = 0.0, tokensPerSecond = 0.0
        let t0 = ProgressLine.now()
        if startStep >= options.steps { progress.message("\(outDir) already finished all \(options.steps) steps; nothing to do") }
        for step in startStep..<max(startStep, options.steps) {
            let stepStart = ProgressLine.now()
            let batch = items.batch(Batching.indices(step: step, batchSize: options.batch, count: items.count, seed: options.seed), decode: options.decode)
            let beta = betaSchedule.value(at: step)
            vae.zeroGrads()
            vae.forward(batch, epsilon: VAE.epsilon(seed: options.seed, step: step, count: batch.batch * k))
            let terms = vae.loss(batch, beta: beta)
            guard terms.total.isFinite else { throw nonFinite("the loss is \(terms.total)", step: step + 1, lastSaved: lastSaved) }
            vae.backward()
            let lr = schedule.lr(at: step)
            var norm: Float = .nan
            if options.gradClip > 0 {
                norm = clipGradNorm(vae.stores.map(\.grads), maxNorm: options.gradClip)
                guard norm.isFinite else { throw nonFinite("the gradient norm is \(norm)", step: step + 1, lastSaved: lastSaved) }
            }
            for (i, store) in vae.stores.enumerated() { adams[i].step(params: store.params, grads: store.grads, tensors: store.tensors, lr: lr) }
            lastLoss = terms.total

            let now = ProgressLine.now()
            let stepTokens = batch.batch * batch.decLen
            tokensDone += stepTokens; stepSeconds += now - stepStart
            windowTokens += stepTokens; windowSeconds += now - stepStart
            if windowSeconds >= 1 || tokensPerSecond == 0 || step + 1 == options.steps {
                tokensPerSecond = Double(windowTokens) / max(windowSeconds, 1e-9); windowSeconds = 0; windowTokens = 0
            }
            let clsAcc = terms.classifierLoss == nil ? "" : String(format: "%.4f", Double(terms.classifierCorrect) / Double(batch.batch))
            try log.append(String(format: "%d,%.6f,%.6f,%.6f,%.6f,%.4f,", step + 1, terms.total, terms.reconstruction, terms.kl, terms.klFreeBits, beta)
                           + (terms.classifierLoss.map { String(format: "%.6f", $0) } ?? "") + ",\(clsAcc),"
                           + String(format: "%.6e,%.4f,%.1f", lr, norm, Double(stepTokens) / max(now - stepStart, 1e-9)))
            try klLog.append("\(step + 1)," + terms.klPerDimension.map { String(format: "%.5f", $0) }.joined(separator: ","))
            let remaining = Double(options.steps - step - 1) * (now - t0) / Double(step + 1 - startStep)
            var line = String(format: "step %d/%d | loss %.3f | rec %.3f | kl %.3f | β %.2f", step + 1, options.steps, terms.total,
                              terms.reconstruction, terms.kl, beta)
            if let cls = terms.classifierLoss { line += String(format: " | cls %.3f acc %@", cls, clsAcc) }
            line += " | \(ProgressLine.rate(tokensPerSecond)) tok/s | ETA \(ProgressLine.duration(remaining))"
            progress.update(line, final: step + 1 == options.steps)
            if (step + 1) % max(1, saveEvery) == 0 || step + 1 == options.steps {
                try saveState(vae, adams: adams, step: step + 1, options: options, fingerprint: fingerprint)
                lastSaved = step + 1
            }
        }
        try log.close(); try klLog.close()
        return TrainSummary(steps: options.steps, stepsRun: max(0, options.steps - startStep), finalLoss: Float(lastLoss),
                            tokensPerSecond: Double(tokensDone) / max(stepSeconds, 1e-9), seconds: ProgressLine.now() - t0, checkpoint: outDir,
                            blas: BLASProvenance.current)
    }

    func checkFreshOutput() throws {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: outDir, isDirectory: &isDir) else { return }
        guard isDir.boolValue else { throw RuleLensError("--out \(outDir) is a file, not a folder", fix: "choose a folder name for --out") }
        if Checkpoint.exists(at: outDir) || fm.fileExists(atPath: path(TrainJob.stateFile)) {
            throw RuleLensError("\(outDir) already holds a training run (checkpoint and state)", fix: "pass --resume to continue it, or choose another --out folder")
        }
        if fm.fileExists(atPath: path(TrainJob.logFile)) || fm.fileExists(atPath: path(TrainJob.configFile)) {
            throw RuleLensError("\(outDir) holds the log of an earlier run that stopped before its first checkpoint",
                                fix: "choose another --out folder, or delete \(outDir) first")
        }
    }

    static let storeNames = ["encoder", "latent", "decoder"]

    func loadState(_ vae: VAE, into adams: inout [AdamW]) throws -> Int {
        let state = try Safetensors.read(path: path(TrainJob.stateFile))
        let weights = try Safetensors.read(path: path(Checkpoint.weightsFile))
        guard state.metadata["format"] == "rulelens-vae-train-state", let stepText = state.metadata["step"], let step = Int(stepText) else {
            throw RuleLensError("\(path(TrainJob.stateFile)) is not a RuleLens VAE training state", fix: "start a new run in another --out folder")
        }
        guard weights.metadata["step"] == stepText else {
            throw RuleLensError("the checkpoint in \(outDir) is from step \(weights.metadata["step"] ?? "?") but the optimizer state from step \(step) (an interrupted save)",
                                fix: "start a new run in another --out folder")
        }
        for (i, store) in vae.stores.enumerated() {
            let name = Self.storeNames[i]
            guard let m = state.info("adam.\(name).m"), let v = state.info("adam.\(name).v"), m.count == store.params.count, v.count == store.params.count,
                  let t = Int(state.metadata["adam_t.\(name)"] ?? "") else {
                throw RuleLensError("\(path(TrainJob.stateFile)) does not match this VAE (\(name) moments)", fix: "start a new run in another --out folder")
            }
            adams[i].m = FloatBuffer(count: store.params.count); adams[i].v = FloatBuffer(count: store.params.count)
            state.copyFloats(m, into: adams[i].m.ptr); state.copyFloats(v, into: adams[i].v.ptr)
            adams[i].t = t
        }
        if let saved = state.metadata["data_fingerprint"], saved != (try TrainJob.fingerprint(options.data)) {
            throw RuleLensError("--resume: \(options.data) is not the data the run in \(outDir) was trained on (its contents changed)",
                                fix: "resume with the original data file, or start a new run in another --out folder")
        }
        return step
    }

    func saveState(_ vae: VAE, adams: [AdamW], step: Int, options: VAETrainOptions, fingerprint: String) throws {
        var meta = ["format": "rulelens-vae-train-state", "step": "\(step)", "seed": "\(options.seed)", "data_fingerprint": fingerprint]
        var entries: [Safetensors.Entry] = []
        for (i, store) in vae.stores.enumerated() {
            let name = Self.storeNames[i]
            meta["adam_t.\(name)"] = "\(adams[i].t)"
            let n = store.params.count
            entries.append(Safetensors.Entry(name: "adam.\(name).m", shape: [n], floats: adams[i].m.ptr))
            entries.append(Safetensors.Entry(name: "adam.\(name).v", shape: [n], floats: adams[i].v.ptr))
        }
        // State first, weights last: a crash between the two leaves step numbers that disagree, which resume detects.
        try Safetensors.write(entries, metadata: meta, to: path(TrainJob.stateFile))
        try VAECheckpoint.save(vae, vocab: CharTokenizer.standard.vocab, to: outDir,
                               extra: ["step": "\(step)", "steps": "\(options.steps)", "data": options.data, "seed": "\(options.seed)"],
                               metadata: ["step": "\(step)"], overwrite: true)
    }

    func nonFinite(_ what: String, step: Int, lastSaved: Int?) -> RuleLensError {
        let kept = lastSaved.map { "the last good checkpoint (step \($0)) is kept in \(outDir)" } ?? "no checkpoint had been saved yet, so none was written"
        return RuleLensError("training stopped at step \(step): \(what); \(kept)",
                             fix: "lower --lr (now \(options.lr)), lengthen --warmup, or keep --grad-clip on; then train again into a new --out folder")
    }
}

/// A CSV whose first column is the step, appended as training runs; a resumed run keeps the rows up to its checkpoint.
final class CSVLog {
    let handle: FileHandle
    init(path: String, header: String, keepingStepsThrough keep: Int?) throws {
        if let keep { try TrainLog.rewind(path, header: header, throughStep: keep) } else { try AtomicFile.write(Data((header + "\n").utf8), to: path) }
        guard let h = FileHandle(forWritingAtPath: path) else {
            throw RuleLensError("cannot open \(path) for writing", fix: "check the permissions of its folder")
        }
        h.seekToEndOfFile()
        handle = h
    }
    func append(_ line: String) throws { handle.write(Data((line + "\n").utf8)) }
    func close() throws { handle.closeFile() }
}
