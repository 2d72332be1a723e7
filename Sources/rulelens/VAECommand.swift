import ArgumentParser
import Foundation
import RuleLensJobs
import RuleLensVerbs

/// `rulelens vae …`: the language VAE of study 2 (train, eval, encode, decode, interpolate, traverse, logits).
struct VAECommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vae",
        abstract: "The language VAE (study 2): bidirectional encoder → μ, log σ² → z → GPT-2 decoder with z injected.",
        subcommands: [VAETrainCommand.self, VAEEvalCommand.self, VAEEncodeCommand.self, VAEDecodeCommand.self,
                      VAEInterpolateCommand.self, VAETraverseCommand.self, VAELogitsCommand.self])
}

struct VAETrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a language VAE (reconstruction + β·KL with free bits, optional rule classifier on z).",
        discussion: """
        Writes into --out: model.safetensors (decoder in Hugging Face GPT-2 names, encoder.h.{l}.…, latent.…), \
        config.json (model_type rulelens-vae, every option), vocab.json, train_state.safetensors and train_config.json \
        (for --resume), train_log.csv (step, loss, rec, kl, kl_fb, beta, cls_loss, cls_acc, lr, grad_norm, tokens_per_s) \
        and kl_dims.csv (mean KL of each latent dimension per step).
        """)

    @OptionGroup var source: DataSourceOptions
    @Option(help: "Output folder (must not hold a checkpoint unless --resume).") var out: String
    @Option(help: "Decoder blocks (default 2).") var layers: Int?
    @Option(help: "Encoder blocks (default 2).") var encLayers: Int?
    @Option(help: "Attention heads per block (default 4).") var heads: Int?
    @Option(name: .customLong("d-model"), help: "Residual width of both stacks (default 128).") var dModel: Int?
    @Option(name: .customLong("d-mlp"), help: "MLP width (default 4 x d-model).") var dMLP: Int?
    @Option(help: "Context in positions; each example needs len([bos]+prompt+target+[eos]) (default 64).") var ctx: Int?
    @Option(help: "Latent size k (default 32, Optimus's).") var latent: Int?
    @Option(help: "Pooling of the encoder output: mean (over real tokens) or cls (the leading <bos>) (default mean).") var pool: String?
    @Option(help: "How z enters the decoder: memory, query, embedding, or a comma list (default memory).") var inject: String?
    @Option(help: "all (autoencode prompt+target, default) or target (condition on the prompt, decode the target).") var decode: String?
    @Option(help: "Free bits λ per dimension, nats (Optimus fb_mode 1; default 0.5; 0 = off).") var freeBits: Float?
    @Option(help: "β, the KL weight at the top of each cycle (default 1.0).") var beta: Float?
    @Option(help: "Number of cyclical β cycles over the run (default 1).") var betaCycles: Int?
    @Option(help: "Share of each cycle at β = 0 (default 0.5).") var ratioZero: Float?
    @Option(help: "Share of each cycle over which β rises linearly (default 0.25).") var ratioIncrease: Float?
    @Option(help: "JSONL column a softmax classifier on z must predict (explicit supervision, e.g. rule).") var supervise: String?
    @Option(help: "γ, the classifier loss weight (default 1).") var superviseWeight: Float?
    @Option(help: "Optimizer steps (default 1000).") var steps: Int?
    @Option(help: "Examples per step (default 32).") var batch: Int?
    @Option(help: "Peak learning rate, cosine to 10% (default 1e-3).") var lr: Float?
    @Option(help: "Linear warm-up steps (default 50).") var warmup: Int?
    @Option(help: "AdamW weight decay on weight matrices (default 0.01).") var weightDecay: Float?
    @Option(help: "Global gradient-norm clip, 0 = off (default 1).") var gradClip: Float?
    @Option(help: "Threads for RuleLens loops and BLAS (default: all cores).") var threads: Int?
    @Option(help: "Save a resumable checkpoint every N steps (and after the last).") var saveEvery: Int?
    @Flag(help: "Continue the run saved in --out from its last checkpoint.") var resume = false
    @Flag(help: "No progress line.") var quiet = false

    func run() throws {
        var files: (train: String, test: String?)? = nil
        if source.data != nil || source.generated.task != nil {
            files = try source.source().materialize(into: (out as NSString).appendingPathComponent("data"))
        }
        var o: VAETrainOptions
        if resume {
            o = try VAETrainJob.savedOptions(in: out)
        } else {
            guard let files else {
                throw RuleLensError("no training data given", fix: "pass --data FILE.jsonl or --task NAME (or --resume to continue the run in --out)")
            }
            o = VAETrainOptions(data: files.train)
        }
        if let files { o.data = files.train }
        if let layers { o.layers = layers }
        if let encLayers { o.encLayers = encLayers }
        if let heads { o.heads = heads }
        if let dModel { o.dModel = dModel }
        if let dMLP { o.dMLP = dMLP }
        if let ctx { o.ctx = ctx }
        if let latent { o.latent = latent }
        if let pool { o.pooling = try VAEOptionParsing.pool(pool) }
        if let inject { o.inject = try InjectMode.parseList(inject) }
        if let decode { o.decode = try VAEOptionParsing.decode(decode) }
        if let freeBits { o.freeBits = freeBits }
        if let beta { o.beta = beta }
        if let betaCycles { o.betaCycles = betaCycles }
        if let ratioZero { o.ratioZero = ratioZero }
        if let ratioIncrease { o.ratioIncrease = ratioIncrease }
        if let supervise { o.supervise = supervise }
        if let superviseWeight { o.superviseWeight = superviseWeight }
        if let steps { o.steps = steps }
        if let batch { o.batch = batch }
        if let lr { o.lr = lr }
        if let warmup { o.warmup = warmup }
        if let weightDecay { o.weightDecay = weightDecay }
        if let gradClip { o.gradClip = gradClip }
        if let seed = source.generated.seed { o.seed = seed }
        let job = VAETrainJob(options: o, outDir: out, resume: resume)
        if let saveEvery { job.saveEvery = saveEvery }
        if let threads { job.threads = threads }
        job.progress = ProgressLine(enabled: !quiet)
        let summary = try job.run()
        print(String(format: "trained %d steps in %.1f s (%.0f tokens/s), final loss %.4f; ", summary.steps, summary.seconds,
                     summary.tokensPerSecond, summary.finalLoss) + "checkpoint in \(summary.checkpoint)")
    }
}

struct VAELogitsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logits",
        abstract: "One forward pass over a small data file with seeded ε; writes μ, log σ², z, logits and the ELBO terms (safetensors).")
    @Option(help: "VAE checkpoint folder.") var checkpoint: String
    @Option(help: "JSONL examples (one batch: keep it small).") var data: String
    @Option(help: "Seed of ε (z = μ + σ·ε); without it z = μ.") var epsSeed: UInt64?
    @Option(help: "β for the reported loss (default: the checkpoint's).") var beta: Float?
    @Option(help: "Output .safetensors file.") var out: String

    func run() throws {
        let loss = try VAELogitsJob.run(checkpoint: checkpoint, data: data, epsSeed: epsSeed, beta: beta, out: out)
        print(String(format: "wrote %@ (loss %.6f)", out, loss))
    }
}

/// Parsing of the VAE's enumerated options with errors that list the choices.
enum VAEOptionParsing {
    static func pool(_ text: String) throws -> PoolMode {
        guard let mode = PoolMode(rawValue: text) else {
            throw RuleLensError("unknown pooling \"\(text)\"", fix: "pass --pool mean or --pool cls")
        }
        return mode
    }
    static func decode(_ text: String) throws -> DecodeMode {
        guard let mode = DecodeMode(rawValue: text) else {
            throw RuleLensError("unknown decode mode \"\(text)\"", fix: "pass --decode all (autoencode) or --decode target (prompt → target)")
        }
        return mode
    }
}

struct VAEEvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Reconstruction (exact match, token accuracy, BLEU), ELBO, KL, active units, I(x; z), classifier accuracy.")
    @Option(help: "VAE checkpoint folder.") var checkpoint: String
    @Option(help: "JSONL examples (or a `data generate` directory: its test split).") var data: String
    @Option(help: "Examples per forward pass.") var batch: Int = 64
    @Option(help: "Seed of the z samples for the mutual-information estimate.") var seed: UInt64 = 0
    @Option(help: "Write one JSON line per example (reference, reconstruction, exact, rec, kl, elbo, labels).") var out: String?
    @Flag(help: "Print the report as JSON.") var json = false
    @Flag(help: "No progress line.") var quiet = false

    func run() throws {
        let path = try VAEOptionParsing.dataFile(data, split: "test")
        if let out, FileManager.default.fileExists(atPath: out) {
            throw RuleLensError("\(out) already exists", fix: "choose another --out or delete it first")
        }
        let (r, lines) = try VAEEvalJob.run(checkpoint: checkpoint, data: path, batch: batch, seed: seed, progress: !quiet)
        if let out {
            let encoder = JSONEncoder(); encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            var text = Data()
            for l in lines { text += try encoder.encode(l); text.append(0x0A) }
            try AtomicFile.write(text, to: out)
        }
        if json {
            let encoder = JSONEncoder(); encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(r), as: UTF8.self))
            return
        }
        print(String(format: "%d examples | exact match %.4f | token accuracy %.4f | BLEU %.4f", r.n, r.exactMatch, r.tokenAccuracy, r.bleu))
        print(String(format: "ELBO %.4f = −(rec %.4f + KL %.4f) nats/example | active units %d/%d | MI %.4f",
                     r.elbo, r.reconstruction, r.kl, r.activeUnits, r.latentSize, r.mutualInformation))
        if let acc = r.classifierAccuracy { print(String(format: "classifier accuracy %.4f (loss %.4f)", acc, r.classifierLoss ?? .nan)) }
    }
}

struct VAEEncodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encode",
        abstract: "Write μ, log σ², z (and optionally encoder sites, mean over tokens) with /meta to HDF5 for `probe`.")
    @Option(help: "VAE checkpoint folder.") var checkpoint: String
    @Option(help: "JSONL examples (or a `data generate` directory: --part).") var data: String
    @Option(help: "Split of a data directory: train or test.") var part: String = "train"
    @Option(help: "Output HDF5 file.") var out: String
    @Option(help: "Encoder sites to store too (globs; each averaged over the example's tokens), e.g. 'encoder.blocks.*.hook_mlp_out'.")
    var hooks: [String] = []
    @Option(help: "Examples per forward pass.") var batch: Int = 64
    @Flag(help: "Store z sampled with ε from --seed (default z = μ).") var sample = false
    @Option(help: "Seed of ε with --sample.") var seed: UInt64 = 0
    @Flag(help: "Overwrite --out.") var force = false
    @Flag(help: "No progress line.") var quiet = false

    func run() throws {
        var o = VAEEncodeOptions(checkpoint: checkpoint, data: try VAEOptionParsing.dataFile(data, split: part), out: out)
        o.hooks = hooks.flatMap { $0.split(separator: ",").map(String.init) }
        o.batch = batch; o.sample = sample; o.seed = seed; o.force = force; o.progress = !quiet
        let r = try VAEEncodeJob.run(o)
        print("wrote \(out): \(r.examples) examples, sites \(r.sites.joined(separator: ", "))")
    }
}

struct VAEDecodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode", abstract: "Generate (greedy) from latents: --z values, --prior N samples, or rows of a `vae encode` file.")
    @Option(help: "VAE checkpoint folder.") var checkpoint: String
    @Option(help: "One latent, comma-separated (k values).") var z: String?
    @Option(help: "Draw N latents from the prior N(0, I) (seeded).") var prior: Int?
    @Option(help: "A `vae encode` HDF5 file to read latents from.") var latents: String?
    @Option(help: "Site in --latents (default latent.hook_mu).") var site: String = "latent.hook_mu"
    @Option(help: "Rows of --latents, comma-separated (default all).") var rows: String?
    @Option(help: "Prompt (premises) for a VAE trained with --decode target.") var prompt: String?
    @Option(help: "Seed for --prior.") var seed: UInt64 = 0
    @Flag(help: "One JSON line per text.") var json = false

    func run() throws {
        let vae = try VAECheckpoint.load(checkpoint)
        let k = vae.config.latentSize
        var values: [Float] = [], labels: [String] = []
        if let z {
            values = try z.split(separator: ",").map { s in
                guard let v = Float(s.trimmingCharacters(in: .whitespaces)) else { throw RuleLensError("--z value \"\(s)\" is not a number", fix: "pass k comma-separated numbers") }
                return v
            }
            guard values.count == k else { throw RuleLensError("--z has \(values.count) values, but the latent has k = \(k)", fix: "pass exactly \(k) numbers") }
            labels = ["z"]
        } else if let prior {
            guard prior > 0 else { throw RuleLensError("--prior must be positive", fix: "pass e.g. --prior 5") }
            values = VAE.epsilon(seed: seed, step: -1, count: prior * k)
            labels = (0..<prior).map { "prior \($0)" }
        } else if let latents {
            let picks = try rows.map { try $0.split(separator: ",").map { s -> Int in
                guard let r = Int(s) else { throw RuleLensError("--rows entry \"\(s)\" is not an integer", fix: "pass e.g. --rows 0,5,9") }
                return r } }
            let r = try VAEGenerateJob.latents(fromStore: latents, site: site, rows: picks, k: k)
            values = r.values
            labels = (picks ?? Array(0..<r.count)).map { "row \($0)" }
        } else {
            throw RuleLensError("no latent given", fix: "pass --z v1,…,vk, --prior N, or --latents FILE.h5 [--rows …]")
        }
        let texts = try VAEGenerateJob.decode(vae, latents: values, count: labels.count, prompt: prompt)
        try VAEOptionParsing.printLines(labels: labels, latents: values, k: k, texts: texts, json: json)
    }
}

struct VAEInterpolateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "interpolate", abstract: "Decode z along the line between two examples' μ in N steps.")
    @Option(help: "VAE checkpoint folder.") var checkpoint: String
    @Option(help: "JSONL examples.") var data: String
    @Option(help: "Index of the first example.") var from: Int
    @Option(help: "Index of the second example.") var to: Int
    @Option(help: "Number of points, ends included.") var steps: Int = 5
    @Flag(help: "One JSON line per text.") var json = false

    func run() throws {
        guard steps >= 2 else { throw RuleLensError("--steps must be at least 2", fix: "pass e.g. --steps 5") }
        let vae = try VAECheckpoint.load(checkpoint)
        let k = vae.config.latentSize
        let (mu, items) = try VAEGenerateJob.encodeMeans(vae, path: try VAEOptionParsing.dataFile(data, split: "test"))
        for i in [from, to] where i < 0 || i >= items.count {
            throw RuleLensError("example \(i) is outside \(data) (\(items.count) examples)", fix: "pass --from/--to below \(items.count)")
        }
        var values: [Float] = [], labels: [String] = []
        for s in 0..<steps {
            let t = Float(s) / Float(steps - 1)
            for j in 0..<k { values.append((1 - t) * mu[from * k + j] + t * mu[to * k + j]) }
            labels.append(String(format: "t=%.2f", t))
        }
        let texts = try VAEGenerateJob.decode(vae, latents: values, count: steps, prompt: items.examples[from].prompt)
        try VAEOptionParsing.printLines(labels: labels, latents: values, k: k, texts: texts, json: json)
    }
}

struct VAETraverseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "traverse", abstract: "Sweep one latent dimension over its quantiles in the data (others from one example's μ) and decode.")
    @Option(help: "VAE checkpoint folder.") var checkpoint: String
    @Option(help: "JSONL examples (their μ give the quantiles).") var data: String
    @Option(help: "The dimension to sweep (0-based).") var dim: Int
    @Option(help: "The example whose μ fixes the other dimensions.") var example: Int = 0
    @Option(help: "Number of quantiles from 5% to 95%.") var steps: Int = 5
    @Flag(help: "One JSON line per text.") var json = false

    func run() throws {
        guard steps >= 2 else { throw RuleLensError("--steps must be at least 2", fix: "pass e.g. --steps 5") }
        let vae = try VAECheckpoint.load(checkpoint)
        let k = vae.config.latentSize
        guard dim >= 0 && dim < k else { throw RuleLensError("--dim \(dim) is outside the latent (k = \(k))", fix: "pass --dim in 0..<\(k)") }
        let (mu, items) = try VAEGenerateJob.encodeMeans(vae, path: try VAEOptionParsing.dataFile(data, split: "test"))
        guard example >= 0 && example < items.count else {
            throw RuleLensError("example \(example) is outside \(data) (\(items.count) examples)", fix: "pass --example below \(items.count)")
        }
        let column = (0..<items.count).map { mu[$0 * k + dim] }.sorted()
        var values: [Float] = [], labels: [String] = []
        for s in 0..<steps {
            let q = 0.05 + 0.9 * Double(s) / Double(steps - 1)
            let value = column[min(column.count - 1, Int((q * Double(column.count - 1)).rounded()))]
            for j in 0..<k { values.append(j == dim ? value : mu[example * k + j]) }
            labels.append(String(format: "q%02.0f z[%d]=%.3f", q * 100, dim, value))
        }
        let texts = try VAEGenerateJob.decode(vae, latents: values, count: steps, prompt: items.examples[example].prompt)
        try VAEOptionParsing.printLines(labels: labels, latents: values, k: k, texts: texts, json: json)
    }
}

extension VAEOptionParsing {
    /// A JSONL file, or a `data generate` directory's `split`.jsonl.
    static func dataFile(_ path: String, split: String) throws -> String {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw RuleLensError("data file \(path) does not exist", fix: "pass a JSONL file or a `rulelens data generate` directory")
        }
        guard isDir.boolValue else { return path }
        guard ["train", "test"].contains(split) else { throw RuleLensError("--part \(split) is not train or test", fix: "pass --part train or --part test") }
        let file = path + "/\(split).jsonl"
        guard FileManager.default.fileExists(atPath: file) else {
            throw RuleLensError("\(path) has no \(split).jsonl", fix: "pass a `rulelens data generate` directory or a JSONL file")
        }
        return file
    }

    static func printLines(labels: [String], latents: [Float], k: Int, texts: [String], json: Bool) throws {
        for (i, text) in texts.enumerated() {
            if json {
                let line = VAEGenerateJob.Line(label: labels[i], z: Array(latents[(i * k)..<((i + 1) * k)]), text: text)
                let encoder = JSONEncoder(); encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                print(String(decoding: try encoder.encode(line), as: UTF8.self))
            } else {
                print("\(labels[i])\t\(text)")
            }
        }
    }
}
