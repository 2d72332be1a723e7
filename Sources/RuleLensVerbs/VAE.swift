import ArgumentParser
import Foundation
import RuleLensJobs
import RuleLensModel
import RuleLensNumerics
import RuleLensReport
import RuleLensTasks

// The language VAE of study 2 (`rulelens vae …`): train, eval, encode, decode, interpolate, traverse, logits.

extension PoolMode: ExpressibleByArgument {}
extension DecodeMode: ExpressibleByArgument {}

/// Where z enters the VAE's decoder (the `Injection` sites a VAE supports).
public enum VAEInjection: String, CaseIterable, ExpressibleByArgument, Sendable {
    case memory, query, embedding
    var injection: Injection { Injection(rawValue: rawValue)! }
}

/// The part of a `rulelens data generate` folder a VAE verb reads (a JSONL file is read whole).
public enum VAEDataPart: String, CaseIterable, ExpressibleByArgument, Sendable { case train, test }

enum VAEVerbs {
    /// A JSONL file, or a `data generate` folder's `part`.jsonl.
    static func dataFile(_ path: String, part: VAEDataPart) throws -> String {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw RuleLensError("data file \(path) does not exist", fix: "pass a JSONL file or a `rulelens data generate` folder")
        }
        guard isDir.boolValue else { return path }
        let file = (path as NSString).appendingPathComponent("\(part.rawValue).jsonl")
        guard FileManager.default.fileExists(atPath: file) else {
            throw RuleLensError("\(path) has no \(part.rawValue).jsonl", fix: "pass a `rulelens data generate` folder or a JSONL file")
        }
        return file
    }

    /// The largest number of latents `decode`, `interpolate` and `traverse` generate from at once.
    static let maxTexts = 10_000

    /// `out/name`, refused when it exists (unless `force`: then removed).
    static func output(_ out: String, _ name: String, force: Bool) throws -> String {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: out, isDirectory: &isDir), !isDir.boolValue {
            throw RuleLensError("--out \(out) is a file; --out names a folder (the verb writes \(name) into it)",
                                fix: "pass a folder, e.g. --out \((out as NSString).deletingPathExtension)")
        }
        try OutputCommit.createFolder(out)
        let path = (out as NSString).appendingPathComponent(name)
        // With --force the old file stays until the new one is complete (the verb's outputs are published together).
        if fm.fileExists(atPath: path) && !force {
            throw RuleLensError("\(path) already exists", fix: "choose another --out folder, or pass --force to replace it")
        }
        return path
    }
}

/// One generated text: its label (which latent), the latent and the greedy decoding.
public struct VAEText: Codable, Sendable {
    public var label: String
    public var z: [Float]
    public var text: String
}

/// The texts of `decode`, `interpolate` and `traverse`.
public struct VAETexts: Encodable {
    public var texts: [VAEText]
    public var provenance: BLASProvenance

    static func make(labels: [String], latents: [Float], k: Int, texts: [String]) -> VAETexts {
        VAETexts(texts: texts.enumerated().map { i, text in VAEText(label: labels[i], z: Array(latents[(i * k)..<((i + 1) * k)]), text: text) },
                 provenance: .current)
    }
    var lines: [String] { texts.map { "\($0.label)\t\($0.text)" } }
}

/// `--checkpoint DIR --data FILE|DIR [--part]`: the VAE and the examples most VAE verbs read.
public struct VAEInputOptions: ParsableArguments {
    @Option(help: "VAE checkpoint folder (a `rulelens vae train` run).") public var checkpoint: InputPath
    @Option(help: "JSONL examples, or a `rulelens data generate` folder (its --part).") public var data: InputPath
    @Option(help: "Part of a data folder to read.") public var part: VAEDataPart = .test
    public init() {}
    func file() throws -> String { try VAEVerbs.dataFile(data.path, part: part) }
}

// MARK: - vae train

/// `vae train`: trains a language VAE with `TrainLoop` (the saves, lock and resume of `train`), then evaluates it on
/// the data's test part.
public enum VAETrainVerb: Verb {
    public static let commandPath = ["vae", "train"]
    /// Its saves are published as it goes, each a kill-proof unit (`TrainSaves`).
    public static let publishesAsItGoes = true
    public static let abstract = "Train a language VAE (reconstruction + β·KL with free bits, optional rule classifier on z); then `vae eval` on the test part."
    public static let discussion = """
        Writes into --out: the checkpoint of the newest save (model.safetensors: decoder in Hugging Face GPT-2 names, \
        encoder.h.{l}.…, latent.…; config.json with model_type rulelens-vae; vocab.json; rulelens.json), the saves under \
        checkpoints/step-N/ (each one unit of checkpoint, optimizer state and manifest: a kill at any instant leaves a \
        resumable run), train_config.json (every option, threads and BLAS included), train_log.csv (step, loss, rec, kl, \
        kl_fb, beta, cls_loss, cls_acc, lr, grad_norm, tokens_per_s), kl_dims.csv (mean KL of each latent dimension per \
        step) and loss.svg. `--out DIR --resume` alone continues a killed run with its saved options; `--resume --steps N` \
        extends a finished one. With a data folder (or --task) the test part is evaluated at the end (as `vae eval`). \
        Shape and schedule options left out take the defaults shown (on --resume: the saved run's).
        """
    public static let stepOutput = ""

    public struct Arguments: VerbArguments {
        @OptionGroup public var source: DataSourceOptions
        @Option(help: "Examples for the closing evaluation (default: the data folder's test.jsonl; none for a JSONL file).")
        public var evalData: InputPath?
        @Option(help: "Output folder (must not hold a run unless --resume).") public var out: String
        @Flag(help: "Continue the run saved in --out from its newest save (its options are the defaults; --steps N extends it).")
        public var resume = false
        @Option(parsing: .unconditional, help: "Decoder blocks (default 2).") public var layers: Int?
        @Option(parsing: .unconditional, help: "Encoder blocks (default 2).") public var encLayers: Int?
        @Option(parsing: .unconditional, help: "Attention heads per block (default 4).") public var heads: Int?
        @Option(name: .customLong("d-model"), parsing: .unconditional, help: "Residual width of both stacks (default 128).") public var dModel: Int?
        @Option(name: .customLong("d-mlp"), parsing: .unconditional, help: "MLP width (default 4 × d-model).") public var dMLP: Int?
        @Option(parsing: .unconditional, help: "Context in positions; each example needs len([bos]+prompt+target+[eos]) (default: the longest example of the training and evaluation data).") public var ctx: Int?
        @Option(parsing: .unconditional, help: "Latent size k (default 32, Optimus's).") public var latent: Int?
        @Option(help: "Pooling of the encoder output: mean (over real tokens) or cls (the leading <bos>) (default mean).") public var pool: PoolMode?
        @Option(help: "Where z enters the decoder (repeat for several; default memory).") public var inject: [VAEInjection] = []
        @Option(help: "all (autoencode prompt+target) or target (condition on the prompt, decode the target) (default all).") public var decode: DecodeMode?
        @Option(parsing: .unconditional, help: "Free bits λ per dimension, nats (Optimus fb_mode 1; 0 = off; default 0.5).") public var freeBits: Float?
        @Option(parsing: .unconditional, help: "β, the KL weight at the top of each cycle (default 1).") public var beta: Float?
        @Option(parsing: .unconditional, help: "Number of cyclical β cycles over the run (default 1).") public var betaCycles: Int?
        @Option(parsing: .unconditional, help: "Share of each cycle at β = 0 (default 0.5).") public var ratioZero: Float?
        @Option(parsing: .unconditional, help: "Share of each cycle over which β rises linearly (default 0.25).") public var ratioIncrease: Float?
        @Option(help: "JSONL column a softmax classifier on z must predict (explicit supervision, e.g. rule).") public var supervise: String?
        @Option(parsing: .unconditional, help: "γ, the classifier loss weight (default: the mean number of positions the reconstruction sums over per example, so the classifier weighs like the reconstruction).") public var superviseWeight: Float?
        @Option(parsing: .unconditional, help: "Optimizer steps (default 1000).") public var steps: Int?
        @Option(parsing: .unconditional, help: "Examples per step (default 32).") public var batch: Int?
        @Option(parsing: .unconditional, help: "Peak learning rate, cosine to 10% (default 1e-3).") public var lr: Float?
        @Option(parsing: .unconditional, help: "Length of the cosine decay and the β cycles in steps (default: --steps).") public var cosineSteps: Int?
        @Option(parsing: .unconditional, help: "Linear warm-up steps (default 50).") public var warmup: Int?
        @Option(parsing: .unconditional, help: "AdamW weight decay on weight matrices (default 0.01).") public var weightDecay: Float?
        @Option(parsing: .unconditional, help: "Global gradient-norm clip, 0 = off (default 1).") public var gradClip: Float?
        @Option(parsing: .unconditional, help: "Save every N steps, and after the last (default 100; changes no result).") public var saveEvery: Int?
        @OptionGroup(title: "Runtime") public var runtime: RuntimeOptions

        public init() {}

        public func validate() throws {
            for (name, value) in [("layers", layers), ("enc-layers", encLayers), ("heads", heads), ("d-model", dModel), ("d-mlp", dMLP),
                                  ("ctx", ctx), ("latent", latent), ("steps", steps), ("batch", batch), ("cosine-steps", cosineSteps)] {
                if let value, value < 1 { throw ValidationError("--\(name) is \(value), but it must be positive; pass e.g. --\(name) \(name == "latent" ? 32 : 2)") }
            }
            for (name, value) in [("warmup", warmup), ("save-every", saveEvery), ("beta-cycles", betaCycles)] {
                if let value, value < 0 { throw ValidationError("--\(name) is \(value), but it cannot be negative; pass 0 or more") }
            }
            for (name, value) in [("free-bits", freeBits), ("beta", beta), ("ratio-zero", ratioZero), ("ratio-increase", ratioIncrease),
                                  ("supervise-weight", superviseWeight), ("lr", lr), ("weight-decay", weightDecay), ("grad-clip", gradClip)] {
                if let value, !(value.isFinite && value >= 0) {
                    throw ValidationError("--\(name) is \(value), but it must be a finite number ≥ 0; pass e.g. --\(name) \(name == "lr" ? "1e-3" : "1")")
                }
            }
            for (name, value) in [("layers", layers), ("enc-layers", encLayers), ("heads", heads), ("d-model", dModel), ("d-mlp", dMLP),
                                  ("ctx", ctx), ("latent", latent), ("batch", batch)] {
                if let value, let cap = VAETrainOptions.sizeLimits[name], value > cap {
                    throw ValidationError("--\(name) is \(value), more than this VAE supports (\(cap)); pass a --\(name) of at most \(cap)")
                }
            }
            if let lr, lr == 0 { throw ValidationError("--lr is 0; pass a positive learning rate, e.g. --lr 1e-3") }
            if Set(inject).count != inject.count { throw ValidationError("--inject names a site twice; name each site once") }
            if !resume && !source.given { throw ValidationError("no training data given; pass --data FILE.jsonl|DIR or --task NAME (or --resume to continue the run in --out)") }
            if resume && source.generated.task != nil && source.data != nil {
                throw ValidationError("both --data and --task were given; give one of them")
            }
        }
    }

    public struct Result: Encodable {
        public var steps: Int
        public var finalLoss: Double?
        public var resumed: Bool
        public var supervised: Bool
        public var checkpoint: String
        /// The closing evaluation (null without evaluation data).
        public var evaluation: VAEEvalVerb.Result?
        public var provenance: BLASProvenance
        /// Not part of the JSON (it differs between runs): wall time and throughput, for the printed lines.
        public var seconds = 0.0, tokensPerSecond = 0.0

        enum CodingKeys: String, CodingKey {
            case steps, finalLoss = "final_loss", resumed, supervised, provenance
            case elbo, reconstruction, kl, activeUnits = "active_units", latentSize = "latent_size", mutualInformation = "mutual_information"
            case tokenAccuracy = "token_accuracy", exactMatch = "exact_match", bleu, classifierAccuracy = "classifier_accuracy"
            case classifierLoss = "classifier_loss", evalN = "eval_n"
        }

        /// The evaluation's numbers sit next to the training's (the keys a spec's expect: reads), null without evaluation.
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(steps, forKey: .steps); try c.encode(finalLoss, forKey: .finalLoss)
            try c.encode(resumed, forKey: .resumed); try c.encode(supervised, forKey: .supervised)
            try c.encode(provenance, forKey: .provenance)
            let e = evaluation
            try c.encode(e?.n, forKey: .evalN); try c.encode(e?.elbo, forKey: .elbo); try c.encode(e?.reconstruction, forKey: .reconstruction)
            try c.encode(e?.kl, forKey: .kl); try c.encode(e?.activeUnits, forKey: .activeUnits); try c.encode(e?.latentSize, forKey: .latentSize)
            try c.encode(e?.mutualInformation, forKey: .mutualInformation); try c.encode(e?.tokenAccuracy, forKey: .tokenAccuracy)
            try c.encode(e?.exactMatch, forKey: .exactMatch); try c.encode(e?.bleu, forKey: .bleu)
            try c.encode(e?.classifierAccuracy, forKey: .classifierAccuracy); try c.encode(e?.classifierLoss, forKey: .classifierLoss)
        }
    }

    public static func quick(_ o: inout QuickOptions) {
        o.cap("steps", 20)
        o.cap("batch", 16, orSet: false)
        o.cap("warmup", 5, orSet: false)
    }

    public static let continueFlag: String? = "resume"
    public static func canContinue(dir: String) -> Bool { (try? VAETrainJob.savedOptions(in: dir)) != nil }

    public static func run(_ a: Arguments, _ ctx: VerbContext) throws -> VerbOutcome<Result> {
        // A folder holding only leftovers of a run killed before it saved its options is started afresh, --resume or not.
        let fresh = !a.resume || TrainLoop<VAETrainOptions>.holdsOnlyLeftovers(a.out)
        var o = fresh ? VAETrainOptions(data: "") : try VAETrainJob.savedOptions(in: a.out)
        if let v = a.layers { o.layers = v }
        if let v = a.encLayers { o.encLayers = v }
        if let v = a.heads { o.heads = v }
        if let v = a.dModel { o.dModel = v }
        if let v = a.dMLP { o.dMLP = v }
        if let v = a.ctx { o.ctx = v }
        if let v = a.latent { o.latent = v }
        if let v = a.pool { o.pooling = v }
        if !a.inject.isEmpty { o.inject = a.inject.map(\.injection) }
        if let v = a.decode { o.decode = v }
        if let v = a.freeBits { o.freeBits = v }
        if let v = a.beta { o.beta = v }
        if let v = a.betaCycles { o.betaCycles = v }
        if let v = a.ratioZero { o.ratioZero = v }
        if let v = a.ratioIncrease { o.ratioIncrease = v }
        if let v = a.supervise { o.supervise = v }
        if let v = a.superviseWeight { o.superviseWeight = v }
        if let v = a.steps { o.steps = v }
        if let v = a.batch { o.batch = v }
        if let v = a.lr { o.lr = v }
        if let v = a.cosineSteps { o.cosineSteps = v }
        if let v = a.warmup { o.warmup = v }
        if let v = a.weightDecay { o.weightDecay = v }
        if let v = a.gradClip { o.gradClip = v }
        if let v = a.saveEvery { o.saveEvery = v }
        if let v = a.source.generated.seed { o.seed = v }
        if let v = a.runtime.threads { o.threads = v }
        // A fresh run refuses a folder that holds one before anything (generated data included) is written.
        if fresh { try VAETrainJob.checkFresh(options: o, outDir: a.out) }
        var evalData = a.evalData?.path
        if a.source.given {
            let files = try a.source.source().materialize(into: (a.out as NSString).appendingPathComponent("data"))
            o.data = files.train
            if evalData == nil { evalData = files.test }
            // A context the user did not choose fits the data: the longest example of training and evaluation data.
            if !a.resume && a.ctx == nil {
                let contextFiles = [files.train] + [files.test, evalData].compactMap { $0 }.reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
                if let longest = try ContextLength.longest(in: contextFiles) {
                    o.ctx = longest
                    ctx.progress.message(ContextLength.derivedMessage(longest, files: contextFiles))
                }
            }
        }
        let job = VAETrainJob(options: o, outDir: a.out, resume: a.resume)
        job.progress = ctx.progress
        let summary = try job.run()
        var evaluation: VAEEvalVerb.Result? = nil
        if let evalData {
            let (report, _) = try VAEEvalJob.run(checkpoint: a.out, data: evalData, batch: 64, seed: 0, progress: ctx.progress.isEnabled)
            evaluation = VAEEvalVerb.Result(report)
        }
        var figures: [VerbFigure] = []
        if try TrainLossChart.write(logFile: (a.out as NSString).appendingPathComponent(TrainJob.logFile),
                                    to: (a.out as NSString).appendingPathComponent("loss.svg")) { figures.append(VerbFigure(title: "Training loss (log10)", file: "loss.svg")) }
        let result = Result(steps: summary.steps, finalLoss: summary.finalLoss.isFinite ? Double(summary.finalLoss) : nil, resumed: !fresh,
                            supervised: job.options.supervise != nil, checkpoint: a.out, evaluation: evaluation, provenance: summary.blas,
                            seconds: summary.seconds, tokensPerSecond: summary.tokensPerSecond)
        return VerbOutcome(result, figures: figures, files: ["model.safetensors", "config.json", TrainJob.logFile, VAETrainJob.klLogFile])
    }

    public static func lines(_ r: Result, _ a: Arguments) -> [String] {
        var lines = [String(format: "trained %d steps in %.1f s (%.0f tokens/s), final loss %@; checkpoint in %@", r.steps, r.seconds,
                            r.tokensPerSecond, r.finalLoss.map { String(format: "%.4f", $0) } ?? "n/a", r.checkpoint)]
        if let e = r.evaluation { lines += ["test part:"] + VAEEvalVerb.reportLines(e, out: nil).map { "  " + $0 } }
        lines.append("(\(r.provenance.summary); results are bitwise reproducible only under the same kernel and threads)")
        return lines
    }
}

// MARK: - vae eval

public enum VAEEvalVerb: Verb {
    public static let commandPath = ["vae", "eval"]
    public static let abstract = "Reconstruction (exact match, token accuracy, BLEU), ELBO, KL, active units, I(x; z), classifier accuracy."
    public static let discussion = """
        z = μ for reconstruction and the ELBO terms; one seeded z sample per example (ε from --seed) for the mutual \
        information. With --out DIR, writes DIR/reconstructions.jsonl (one line per example: reference, reconstruction, \
        exact, rec, kl, elbo, labels).
        """

    public struct Arguments: VerbArguments {
        @OptionGroup public var input: VAEInputOptions
        @Option(parsing: .unconditional, help: "Examples per forward pass.") public var batch: Int = 64
        @Option(parsing: .unconditional, help: "Seed of the z samples for the mutual-information estimate.") public var seed: UInt64 = 0
        @Option(help: "Folder for reconstructions.jsonl (created; an existing file is kept unless --force).") public var out: String?
        @OptionGroup(title: "Runtime") public var runtime: RuntimeOptions
        public init() {}
        public func validate() throws {
            if batch < 1 || batch > 1 << 20 { throw ValidationError("--batch is \(batch); pass a positive number up to 1048576, e.g. --batch 64") }
        }
    }

    public struct Result: Encodable {
        public var n: Int
        public var exactMatch: Double, tokenAccuracy: Double, bleu: Double
        public var reconstruction: Double, kl: Double, elbo: Double
        public var activeUnits: Int, latentSize: Int
        public var mutualInformation: Double?
        public var classifierAccuracy: Double?, classifierLoss: Double?
        public var provenance: BLASProvenance

        init(_ r: VAEEvalReport) {
            n = r.n; exactMatch = r.exactMatch; tokenAccuracy = r.tokenAccuracy; bleu = r.bleu; reconstruction = r.reconstruction
            kl = r.kl; elbo = r.elbo; activeUnits = r.activeUnits; latentSize = r.latentSize
            mutualInformation = r.mutualInformation.isFinite ? r.mutualInformation : nil
            classifierAccuracy = r.classifierAccuracy; classifierLoss = r.classifierLoss; provenance = .current
        }

        enum CodingKeys: String, CodingKey {
            case n, exactMatch = "exact_match", tokenAccuracy = "token_accuracy", bleu, reconstruction, kl, elbo
            case activeUnits = "active_units", latentSize = "latent_size", mutualInformation = "mutual_information"
            case classifierAccuracy = "classifier_accuracy", classifierLoss = "classifier_loss", provenance
        }
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(n, forKey: .n); try c.encode(exactMatch, forKey: .exactMatch); try c.encode(tokenAccuracy, forKey: .tokenAccuracy)
            try c.encode(bleu, forKey: .bleu); try c.encode(reconstruction, forKey: .reconstruction); try c.encode(kl, forKey: .kl)
            try c.encode(elbo, forKey: .elbo); try c.encode(activeUnits, forKey: .activeUnits); try c.encode(latentSize, forKey: .latentSize)
            try c.encode(mutualInformation, forKey: .mutualInformation); try c.encode(classifierAccuracy, forKey: .classifierAccuracy)
            try c.encode(classifierLoss, forKey: .classifierLoss); try c.encode(provenance, forKey: .provenance)
        }
    }

    public static func quick(_ o: inout QuickOptions) {}

    public static func run(_ a: Arguments, _ ctx: VerbContext) throws -> VerbOutcome<Result> {
        let data = try a.input.file()
        let out = try a.out.map { try VAEVerbs.output($0, "reconstructions.jsonl", force: a.runtime.force) }
        let (report, lines) = try VAEEvalJob.run(checkpoint: a.input.checkpoint.path, data: data, batch: a.batch, seed: a.seed,
                                                 progress: ctx.progress.isEnabled)
        if let out {
            let encoder = JSONEncoder(); encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            var text = Data()
            for l in lines { text += try encoder.encode(l); text.append(0x0A) }
            try AtomicFile.write(text, to: out)
        }
        return VerbOutcome(Result(report), files: out == nil ? [] : ["reconstructions.jsonl"])
    }

    public static func lines(_ r: Result, _ a: Arguments) -> [String] { reportLines(r, out: a.out) }

    static func reportLines(_ r: Result, out: String?) -> [String] {
        var lines = [String(format: "%d examples | exact match %.4f | token accuracy %.4f | BLEU %.4f", r.n, r.exactMatch, r.tokenAccuracy, r.bleu),
                     String(format: "ELBO %.4f = −(rec %.4f + KL %.4f) nats/example | active units %d/%d | MI %@",
                            r.elbo, r.reconstruction, r.kl, r.activeUnits, r.latentSize, r.mutualInformation.map { String(format: "%.4f", $0) } ?? "n/a")]
        if let acc = r.classifierAccuracy {
            lines.append(String(format: "classifier accuracy %.4f (loss %@)", acc, r.classifierLoss.map { String(format: "%.4f", $0) } ?? "n/a"))
        }
        if let out { lines.append("wrote \((out as NSString).appendingPathComponent("reconstructions.jsonl"))") }
        return lines
    }
}

// MARK: - vae encode

public enum VAEEncodeVerb: Verb {
    public static let commandPath = ["vae", "encode"]
    public static let abstract = "Write μ, log σ², z (and optionally encoder sites, mean over tokens) with /meta to OUT/latents.h5 for `probe`."
    public static let stepOutput = "latents.h5"

    public struct Arguments: VerbArguments {
        @OptionGroup public var input: VAEInputOptions
        @Option(help: "Folder for latents.h5 (created; an existing file is replaced only with --force).") public var out: String
        @Option(help: "Encoder sites to store too (globs, repeatable or comma-separated; each averaged over the example's tokens), e.g. 'encoder.blocks.*.hook_mlp_out'.")
        public var hooks: [String] = []
        @Option(parsing: .unconditional, help: "Examples per forward pass.") public var batch: Int = 64
        @Flag(help: "Store z sampled with ε from --seed (default z = μ).") public var sample = false
        @Option(parsing: .unconditional, help: "Seed of ε with --sample.") public var seed: UInt64 = 0
        @OptionGroup(title: "Runtime") public var runtime: RuntimeOptions
        public init() {}
        public func validate() throws {
            if batch < 1 || batch > 1 << 20 { throw ValidationError("--batch is \(batch); pass a positive number up to 1048576, e.g. --batch 64") }
        }
    }

    public struct Result: Encodable {
        public var examples: Int
        public var sites: [String]
        public var file: String
        public var provenance: BLASProvenance
    }

    public static func run(_ a: Arguments, _ ctx: VerbContext) throws -> VerbOutcome<Result> {
        let data = try a.input.file()
        let path = try VAEVerbs.output(a.out, stepOutput, force: a.runtime.force)
        var o = VAEEncodeOptions(checkpoint: a.input.checkpoint.path, data: data, out: path)
        o.hooks = a.hooks.flatMap { $0.split(separator: ",").map(String.init) }
        o.batch = a.batch; o.sample = a.sample; o.seed = a.seed; o.force = a.runtime.force; o.progress = ctx.progress.isEnabled
        let r = try VAEEncodeJob.run(o)
        return VerbOutcome(Result(examples: r.examples, sites: r.sites, file: stepOutput, provenance: .current), files: [stepOutput])
    }

    public static func lines(_ r: Result, _ a: Arguments) -> [String] {
        ["wrote \((a.out as NSString).appendingPathComponent(r.file)): \(r.examples) examples, sites \(r.sites.joined(separator: ", "))"]
    }
}

// MARK: - vae decode

public enum VAEDecodeVerb: Verb {
    public static let commandPath = ["vae", "decode"]
    public static let abstract = "Generate (greedy) from latents: --z values, --prior N samples, or rows of a `vae encode` file."

    public struct Arguments: VerbArguments {
        public static var outputOption: String? { nil }
        @Option(help: "VAE checkpoint folder.") public var checkpoint: InputPath
        @Option(help: "One latent: k comma-separated finite numbers.") public var z: String?
        @Option(parsing: .unconditional, help: "Draw N latents from the prior N(0, I) (seeded by --seed; at most 10000).") public var prior: Int?
        @Option(help: "A `vae encode` file (OUT/latents.h5) to read latents from.") public var latents: InputPath?
        @Option(help: "Site in --latents.") public var site: String = "latent.hook_mu"
        @Option(help: "Rows of --latents (repeatable; default all).") public var rows: [Int] = []
        @Option(help: "Prompt (premises) for a VAE trained with --decode target.") public var prompt: String?
        @Option(parsing: .unconditional, help: "Seed for --prior.") public var seed: UInt64 = 0
        @OptionGroup(title: "Runtime") public var runtime: RuntimeOptions
        public init() {}

        public func validate() throws {
            let given = [z != nil, prior != nil, latents != nil].filter { $0 }.count
            if given != 1 { throw ValidationError("give exactly one source of latents: --z v1,…,vk, --prior N, or --latents FILE.h5 [--rows …]") }
            if let prior, prior < 1 || prior > VAEVerbs.maxTexts {
                throw ValidationError("--prior is \(prior); pass a number of samples from 1 to \(VAEVerbs.maxTexts), e.g. --prior 5")
            }
            if let z { _ = try Self.values(z) }
            if !rows.isEmpty && latents == nil { throw ValidationError("--rows picks rows of --latents; pass --latents FILE.h5 too, or drop --rows") }
            if let bad = rows.first(where: { $0 < 0 }) { throw ValidationError("--rows has \(bad); rows are 0-based, pass 0 or more") }
            if rows.count > VAEVerbs.maxTexts { throw ValidationError("--rows names \(rows.count) rows; pass at most \(VAEVerbs.maxTexts)") }
        }

        static func values(_ text: String) throws -> [Float] {
            try text.split(separator: ",", omittingEmptySubsequences: false).map { s in
                guard let v = Float(s.trimmingCharacters(in: .whitespaces)), v.isFinite else {
                    throw ValidationError("--z value \"\(s)\" is not a finite number; pass k comma-separated numbers, e.g. --z 0.1,-0.5,…")
                }
                return v
            }
        }
    }

    public static func run(_ a: Arguments, _ ctx: VerbContext) throws -> VerbOutcome<VAETexts> {
        let vae = try VAECheckpoint.load(a.checkpoint.path)
        let k = vae.config.latentSize
        var values: [Float] = [], labels: [String] = []
        if let z = a.z {
            values = try Arguments.values(z)
            guard values.count == k else { throw RuleLensError("--z has \(values.count) values, but the latent has k = \(k)", fix: "pass exactly \(k) numbers") }
            labels = ["z"]
        } else if let prior = a.prior {
            values = VAE.epsilon(seed: a.seed, step: -1, count: prior * k)
            labels = (0..<prior).map { "prior \($0)" }
        } else if let latents = a.latents {
            let picks = a.rows.isEmpty ? nil : a.rows
            let r = try VAEGenerateJob.latents(fromStore: latents.path, site: a.site, rows: picks, k: k)
            guard r.count <= VAEVerbs.maxTexts else {
                throw RuleLensError("\(latents.path) has \(r.count) rows; decoding is limited to \(VAEVerbs.maxTexts) at once", fix: "pick rows with --rows")
            }
            values = r.values
            labels = (picks ?? Array(0..<r.count)).map { "row \($0)" }
        }
        let texts = try VAEGenerateJob.decode(vae, latents: values, count: labels.count, prompt: a.prompt)
        return VerbOutcome(VAETexts.make(labels: labels, latents: values, k: k, texts: texts))
    }

    public static func lines(_ r: VAETexts, _ a: Arguments) -> [String] { r.lines }
}

// MARK: - vae interpolate

public enum VAEInterpolateVerb: Verb {
    public static let commandPath = ["vae", "interpolate"]
    public static let abstract = "Decode z along the line between two examples' μ in N steps."

    public struct Arguments: VerbArguments {
        public static var outputOption: String? { nil }
        @OptionGroup public var input: VAEInputOptions
        @Option(parsing: .unconditional, help: "Index of the first example.") public var from: Int
        @Option(parsing: .unconditional, help: "Index of the second example.") public var to: Int
        @Option(parsing: .unconditional, help: "Number of points, ends included (2 to 10000).") public var steps: Int = 5
        @OptionGroup(title: "Runtime") public var runtime: RuntimeOptions
        public init() {}
        public func validate() throws {
            if steps < 2 || steps > VAEVerbs.maxTexts { throw ValidationError("--steps is \(steps); pass 2 to \(VAEVerbs.maxTexts) points, e.g. --steps 5") }
            if from < 0 || to < 0 { throw ValidationError("--from and --to are 0-based example indices; pass 0 or more") }
        }
    }

    public static func run(_ a: Arguments, _ ctx: VerbContext) throws -> VerbOutcome<VAETexts> {
        let vae = try VAECheckpoint.load(a.input.checkpoint.path)
        let k = vae.config.latentSize
        let (mu, items) = try VAEGenerateJob.encodeMeans(vae, path: try a.input.file())
        for i in [a.from, a.to] where i >= items.count {
            throw RuleLensError("example \(i) is outside \(a.input.data) (\(items.count) examples)", fix: "pass --from/--to below \(items.count)")
        }
        var values: [Float] = [], labels: [String] = []
        for s in 0..<a.steps {
            let t = Float(s) / Float(a.steps - 1)
            for j in 0..<k { values.append((1 - t) * mu[a.from * k + j] + t * mu[a.to * k + j]) }
            labels.append(String(format: "t=%.2f", t))
        }
        let texts = try VAEGenerateJob.decode(vae, latents: values, count: a.steps, prompt: items.examples[a.from].prompt)
        return VerbOutcome(VAETexts.make(labels: labels, latents: values, k: k, texts: texts))
    }

    public static func lines(_ r: VAETexts, _ a: Arguments) -> [String] { r.lines }
}

// MARK: - vae traverse

public enum VAETraverseVerb: Verb {
    public static let commandPath = ["vae", "traverse"]
    public static let abstract = "Sweep one latent dimension over its quantiles in the data (others from one example's μ) and decode."

    public struct Arguments: VerbArguments {
        public static var outputOption: String? { nil }
        @OptionGroup public var input: VAEInputOptions
        @Option(parsing: .unconditional, help: "The dimension to sweep (0-based).") public var dim: Int
        @Option(parsing: .unconditional, help: "The example whose μ fixes the other dimensions.") public var example: Int = 0
        @Option(parsing: .unconditional, help: "Number of quantiles from 5% to 95% (2 to 10000).") public var steps: Int = 5
        @OptionGroup(title: "Runtime") public var runtime: RuntimeOptions
        public init() {}
        public func validate() throws {
            if steps < 2 || steps > VAEVerbs.maxTexts { throw ValidationError("--steps is \(steps); pass 2 to \(VAEVerbs.maxTexts) quantiles, e.g. --steps 5") }
            if dim < 0 { throw ValidationError("--dim is \(dim); dimensions are 0-based, pass 0 or more") }
            if example < 0 { throw ValidationError("--example is \(example); examples are 0-based, pass 0 or more") }
        }
    }

    public static func run(_ a: Arguments, _ ctx: VerbContext) throws -> VerbOutcome<VAETexts> {
        let vae = try VAECheckpoint.load(a.input.checkpoint.path)
        let k = vae.config.latentSize
        guard a.dim < k else { throw RuleLensError("--dim \(a.dim) is outside the latent (k = \(k))", fix: "pass --dim in 0..<\(k)") }
        let (mu, items) = try VAEGenerateJob.encodeMeans(vae, path: try a.input.file())
        guard a.example < items.count else {
            throw RuleLensError("example \(a.example) is outside \(a.input.data) (\(items.count) examples)", fix: "pass --example below \(items.count)")
        }
        let column = (0..<items.count).map { mu[$0 * k + a.dim] }.sorted()
        var values: [Float] = [], labels: [String] = []
        for s in 0..<a.steps {
            let q = 0.05 + 0.9 * Double(s) / Double(a.steps - 1)
            let value = column[min(column.count - 1, Int((q * Double(column.count - 1)).rounded()))]
            for j in 0..<k { values.append(j == a.dim ? value : mu[a.example * k + j]) }
            labels.append(String(format: "q%02.0f z[%d]=%.3f", q * 100, a.dim, value))
        }
        let texts = try VAEGenerateJob.decode(vae, latents: values, count: a.steps, prompt: items.examples[a.example].prompt)
        return VerbOutcome(VAETexts.make(labels: labels, latents: values, k: k, texts: texts))
    }

    public static func lines(_ r: VAETexts, _ a: Arguments) -> [String] { r.lines }
}

// MARK: - vae logits

public enum VAELogitsVerb: Verb {
    public static let commandPath = ["vae", "logits"]
    public static let abstract = "One forward pass over a small data file with seeded ε; writes μ, log σ², z, logits and the ELBO terms to OUT/logits.safetensors."
    public static let stepOutput = "logits.safetensors"

    public struct Arguments: VerbArguments {
        @OptionGroup public var input: VAEInputOptions
        @Option(parsing: .unconditional, help: "Seed of ε (z = μ + σ·ε); without it z = μ.") public var epsSeed: UInt64?
        @Option(parsing: .unconditional, help: "β for the reported loss (default: the checkpoint's).") public var beta: Float?
        @Option(help: "Folder for logits.safetensors (created; an existing file is replaced only with --force).") public var out: String
        @OptionGroup(title: "Runtime") public var runtime: RuntimeOptions
        public init() {}
        public func validate() throws {
            if let beta, !(beta.isFinite && beta >= 0) { throw ValidationError("--beta is \(beta); pass a finite β ≥ 0, e.g. --beta 1") }
        }
    }

    public struct Result: Encodable {
        public var loss: Double?
        public var file: String
        public var provenance: BLASProvenance
        enum CodingKeys: String, CodingKey { case loss, file, provenance }
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(loss, forKey: .loss); try c.encode(file, forKey: .file); try c.encode(provenance, forKey: .provenance)
        }
    }

    public static func run(_ a: Arguments, _ ctx: VerbContext) throws -> VerbOutcome<Result> {
        let data = try a.input.file()
        let path = try VAEVerbs.output(a.out, stepOutput, force: a.runtime.force)
        let loss = try VAELogitsJob.run(checkpoint: a.input.checkpoint.path, data: data, epsSeed: a.epsSeed, beta: a.beta, out: path)
        return VerbOutcome(Result(loss: loss.isFinite ? loss : nil, file: stepOutput, provenance: .current), files: [stepOutput])
    }

    public static func lines(_ r: Result, _ a: Arguments) -> [String] {
        ["wrote \((a.out as NSString).appendingPathComponent(r.file)) (loss \(r.loss.map { String(format: "%.6f", $0) } ?? "n/a"))"]
    }
}
