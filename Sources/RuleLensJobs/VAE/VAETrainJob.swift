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
    /// γ; nil (the default) scales it to the reconstruction: the mean number of positions the reconstruction sums
    /// over per example (`VAEItems.meanReconstructed`), so the classifier is not drowned by a sum over ~80 tokens.
    public var superviseWeight: Float? = nil
    public var steps = 1000, batch = 32
    public var lr: Float = 1e-3
    public var minLRFraction: Float = 0.1
    public var warmup = 50
    public var weightDecay: Float = 0.01
    public var gradClip: Float = 1.0
    public var seed: UInt64 = 0
    /// Length of the cosine decay (and of the β cycles) in steps (nil = `steps`); steps past it run at the final
    /// learning rate and the last β, which is how `--resume --steps N` extends a run.
    public var cosineSteps: Int? = nil
    /// Worker threads (the weights depend on the count); a run saves the count it used.
    public var threads: Int? = nil
    /// Save every this many steps (and always after the last). Changes no result, so a resume may change it.
    public var saveEvery = 100

    public init(data: String) { self.data = data }

    /// The largest size each shape option may take (far above any model this workbench trains; larger values are
    /// refused before anything is allocated).
    public static let sizeLimits: [String: Int] = ["layers": 1024, "enc-layers": 1024, "heads": 4096, "d-model": 1 << 16,
                                                   "d-mlp": 1 << 18, "ctx": 1 << 16, "latent": 1 << 16, "batch": 1 << 20]

    /// The model these options build (classes filled in from the data when supervised).
    public func modelConfig(vocabSize: Int, classNames: [String] = []) -> VAEConfig {
        var c = VAEConfig(nLayer: layers, nEncLayer: encLayers, nHead: heads, dModel: dModel, dMLP: dMLP, nCtx: ctx,
                          vocabSize: vocabSize, latentSize: latent)
        c.pooling = pooling; c.inject = inject; c.decode = decode; c.freeBits = freeBits; c.beta = beta
        c.betaCycles = betaCycles; c.ratioZero = ratioZero; c.ratioIncrease = ratioIncrease
        c.supervise = supervise; c.superviseWeight = superviseWeight ?? 1
        c.nClasses = classNames.count; c.classNames = classNames
        return c
    }

    public func validate() throws {
        try validateSchedule()
        // A β cycle shorter than one step has no shape: the schedule would only alternate β between steps.
        if betaCycles > scheduleSteps {
            throw RuleLensError("--beta-cycles is \(betaCycles), more cycles than the \(scheduleSteps) steps of the schedule",
                                fix: "pass --beta-cycles of at most \(scheduleSteps) (e.g. 1, or 4 for cyclical annealing)")
        }
        for (name, value) in [("layers", layers), ("enc-layers", encLayers), ("heads", heads), ("d-model", dModel),
                              ("d-mlp", dMLP ?? 4 * dModel), ("ctx", ctx), ("latent", latent), ("batch", batch)] {
            guard let cap = Self.sizeLimits[name], value > cap else { continue }
            throw RuleLensError("--\(name) is \(value), more than this VAE supports (\(cap))", fix: "pass a --\(name) of at most \(cap)")
        }
        var c = modelConfig(vocabSize: CharTokenizer.standard.count)
        if supervise != nil { c.nClasses = 2; c.classNames = ["a", "b"] }   // the real classes come from the data
        try c.validate()
    }
}

extension VAETrainOptions: TrainLoopOptions {
    public static var defaults: VAETrainOptions { VAETrainOptions(data: "") }
    public static var mayDifferOnResume: Set<String> { [] }
    public static var command: String { "rulelens vae train" }
    /// A `vae train` folder's options have a latent size.
    public static func isOwnConfig(_ object: [String: Any]) -> Bool { object["latent"] != nil }

    /// Refuses a run whose parameters, gradients, AdamW moments and activations would not fit in memory (before any
    /// allocation), naming the estimate.
    public func checkMemory(vocabSize: Int, classes: Int) throws {
        var c = modelConfig(vocabSize: vocabSize)
        c.nClasses = classes; c.classNames = (0..<classes).map { "\($0)" }
        let latentParams = LatentParameters.layout(for: c).reduce(0) { $0.addingSaturating($1.count) }
        var estimate = MemoryEstimate.training(c.decoderConfig, batch: batch, seqLen: ctx)
        estimate.parts += MemoryEstimate.training(c.encoderConfig, batch: batch, seqLen: ctx).parts.map { ("encoder " + $0.label, $0.bytes) }
        estimate.parts.append(("latent maps, gradients and AdamW moments", latentParams.multipliedSaturating(16)))
        estimate.parts.append(("latent activations", batch.multipliedSaturating(latent).multipliedSaturating(4 * 16)))
        guard let room = MemoryEstimate.available(), estimate.total > room else { return }
        try estimate.require("VAE training (latent \(latent), d-model \(dModel), batch \(batch))",
                             fix: "choose a smaller --latent, --d-model, --layers/--enc-layers or --batch")
    }
}

/// A VAE training run writing into one folder, driven by `TrainLoop` (the same saves, lock, resume and provenance as
/// `rulelens train`): the checkpoint of the newest save at the top (`VAECheckpoint`), the saves under `checkpoints/`
/// (each one unit of checkpoint, `train_state.safetensors` with the AdamW moments of the three parameter stores, and
/// manifest), `train_config.json`, `train_log.csv` (`step,loss,rec,kl,kl_fb,beta,cls_loss,cls_acc,lr,grad_norm,tokens_per_s`)
/// and `kl_dims.csv` (mean KL of every latent dimension per step). Reproducible: initialisation from the seed, data
/// order and ε from (seed, step); a killed and resumed run ends bitwise equal to an uninterrupted one.
public final class VAETrainJob {
    public static let logHeader = "step,loss,rec,kl,kl_fb,beta,cls_loss,cls_acc,lr,grad_norm,tokens_per_s"
    public static let klLogFile = "kl_dims.csv"
    public var options: VAETrainOptions
    public let outDir: String
    public let resume: Bool
    /// Save every this many steps (and after the last); `options.saveEvery`.
    public var saveEvery: Int { get { options.saveEvery } set { options.saveEvery = newValue } }
    /// Worker threads (nil = as configured); `options.threads`.
    public var threads: Int? { get { options.threads } set { options.threads = newValue } }
    /// Check the save's SHA-256 manifest before resuming from it.
    public var verify = Checkpoint.verifiesByDefault
    public var progress = ProgressLine()
    /// Whether `run()` wrote anything into `outDir` (false after a refusal).
    public private(set) var wroteAnything = false

    public init(options: VAETrainOptions, outDir: String, resume: Bool = false) {
        self.options = options; self.outDir = outDir; self.resume = resume
    }

    /// The options of the VAE run saved in `outDir` (for `--resume`).
    public static func savedOptions(in outDir: String) throws -> VAETrainOptions {
        try TrainLoop<VAETrainOptions>.savedOptions(in: outDir)
    }

    /// The checks a fresh run makes before writing anything: the options, and that `outDir` holds no run.
    public static func checkFresh(options: VAETrainOptions, outDir: String) throws {
        try TrainLoop<VAETrainOptions>.checkFresh(options: options, outDir: outDir)
    }

    @discardableResult
    public func run() throws -> TrainSummary {
        let tokenizer = CharTokenizer.standard
        let loop = TrainLoop<VAETrainOptions>(outDir: outDir, resume: resume)
        loop.verify = verify; loop.progress = progress
        defer { wroteAnything = loop.wroteAnything }
        var (options, resumed) = try loop.open(self.options)
        if resume && !FileManager.default.fileExists(atPath: options.data) {
            throw RuleLensError("--resume: \(options.data), the --data of the run in \(outDir) (recorded in \(TrainJob.configFile)), does not exist",
                                fix: "pass --data PATH to point the run at the same file where it is now (its contents are checked against the save)")
        }
        options.data = TrainJob.absolute(options.data)
        let savedVAE = try resumed.map { try VAECheckpoint.load($0.dir) }
        let items = try VAEItems(path: options.data, tokenizer: tokenizer, nCtx: options.ctx, labelColumn: options.supervise,
                                 classNames: options.supervise == nil ? nil : savedVAE?.config.classNames)
        let fingerprint = try TrainJob.fingerprint(options.data)
        if let resumed, resumed.manifest.dataFingerprint != fingerprint {
            throw RuleLensError("--resume: \(options.data) is not the data the run in \(outDir) was trained on (its contents changed)",
                                fix: "resume with the original data file (--data PATH re-points the run to a copy of it), or start a new run in another --out folder")
        }
        try options.checkMemory(vocabSize: tokenizer.count, classes: items.classNames.count)
        TrainLoop<VAETrainOptions>.configureThreads(&options)
        var config = options.modelConfig(vocabSize: tokenizer.count, classNames: items.classNames)
        if options.supervise != nil && options.superviseWeight == nil {
            config.superviseWeight = Float(items.meanReconstructed(decode: options.decode))
            if savedVAE == nil {
                progress.message(String(format: "--supervise-weight not given: γ = %.2f, the mean number of positions the reconstruction sums over per example", config.superviseWeight))
            }
        }
        let vae = try savedVAE ?? VAE(config: config, seed: options.seed)
        let trainable = VAETrainable(vae: vae, items: items, options: options)
        let adams = try loop.optimizers(trainable, resumed: resumed, weightDecay: options.weightDecay)
        self.options = options
        return try loop.train(trainable, adams: adams, options: options, resumed: resumed, fingerprint: fingerprint,
                              evalFingerprint: nil, checkpointExtra: [:])
    }
}

/// The VAE as `TrainLoop` trains it: batch and ε of each step from (seed, step), cyclical β over the schedule,
/// the loss terms and per-dimension KL logged, three parameter stores (encoder, latent, decoder).
final class VAETrainable: Trainable {
    let vae: VAE
    let items: VAEItems
    let options: VAETrainOptions
    let betaSchedule: BetaSchedule
    private var terms: VAE.LossTerms? = nil
    private var beta: Float = 0
    private var batchSize = 0

    init(vae: VAE, items: VAEItems, options: VAETrainOptions) {
        self.vae = vae; self.items = items; self.options = options
        betaSchedule = vae.config.betaSchedule(totalSteps: options.scheduleSteps)
    }

    var parameterStores: [ParameterStore] { vae.stores.map { ParameterStore(params: $0.params, grads: $0.grads, tensors: $0.tensors) } }
    var storeNames: [String]? { ["encoder", "latent", "decoder"] }
    var stateFormat: String { "rulelens-vae-train-state" }
    var logFiles: [TrainLogFile] {
        [TrainLogFile(name: TrainJob.logFile, header: VAETrainJob.logHeader),
         TrainLogFile(name: VAETrainJob.klLogFile, header: "step," + (0..<vae.config.latentSize).map { "kl_\($0)" }.joined(separator: ","))]
    }

    func zeroGrads() { vae.zeroGrads() }

    func forwardLoss(step: Int) throws -> (loss: Float, tokens: Int) {
        let k = vae.config.latentSize
        let batch = items.batch(Batching.indices(step: step, batchSize: options.batch, count: items.count, seed: options.seed), decode: options.decode)
        beta = betaSchedule.value(at: step)
        vae.forward(batch, epsilon: VAE.epsilon(seed: options.seed, step: step, count: batch.batch * k))
        let terms = vae.loss(batch, beta: beta)
        self.terms = terms
        batchSize = batch.batch
        return (Float(terms.total), batch.batch * batch.decLen)
    }

    func backward() { vae.backward() }

    func logRows(step: Int, loss: Float, lr: Float, gradNorm: Float, tokensPerSecond: Double) -> [String?] {
        guard let terms else { return [nil, nil] }
        let clsAcc = terms.classifierLoss == nil ? "" : String(format: "%.4f", Double(terms.classifierCorrect) / Double(batchSize))
        let row = String(format: "%d,%.6f,%.6f,%.6f,%.6f,%.4f,", step, terms.total, terms.reconstruction, terms.kl, terms.klFreeBits, beta)
            + (terms.classifierLoss.map { String(format: "%.6f", $0) } ?? "") + ",\(clsAcc),"
            + String(format: "%.6e,%.4f,%.1f", lr, gradNorm, tokensPerSecond)
        return [row, "\(step)," + terms.klPerDimension.map { String(format: "%.5f", $0) }.joined(separator: ",")]
    }

    func progressText(step: Int, steps: Int, loss: Float, lr: Float) -> String {
        guard let terms else { return "" }
        var line = String(format: "step %d/%d | loss %.3f | rec %.3f | kl %.3f | β %.2f", step, steps, terms.total, terms.reconstruction, terms.kl, beta)
        if let cls = terms.classifierLoss {
            line += String(format: " | cls %.3f acc %.4f", cls, Double(terms.classifierCorrect) / Double(max(1, batchSize)))
        }
        return line + " | "
    }

    func writeCheckpoint(to dir: String, step: Int, extra: [String: String]) throws {
        try VAECheckpoint.save(vae, vocab: CharTokenizer.standard.vocab, to: dir, extra: extra, metadata: ["step": "\(step)"], overwrite: false)
    }
}
