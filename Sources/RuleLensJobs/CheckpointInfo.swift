import Foundation

/// What a checkpoint folder holds — read from its files without building the model: `rulelens info`.
public struct CheckpointInfo {
    public let dir: String
    public let config: GPTConfig
    /// Parameters stored in model.safetensors (the tied LM head counted once).
    public let parameters: Int
    /// Tensor count, dtypes and bytes of model.safetensors.
    public let tensors: Int, dtypes: [String], weightBytes: Int
    /// rulelens.json (step, data, seed, version, and whatever provenance the save recorded), if present.
    public let notes: [String: Any]
    /// train_config.json (the options the run was trained with), if present.
    public let trainingOptions: [String: Any]?
    /// "character vocabulary (99 tokens; vocab.json, tokenizer.json)" or what the folder has instead.
    public let tokenizer: String

    /// Reads `dir`; the config is checked against the tensors, so a contradiction is an error, as on load.
    public init(dir: String) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw RuleLensError("checkpoint folder \(dir) does not exist", fix: "pass the --out folder of `rulelens train` or `rulelens init`")
        }
        self.dir = dir
        config = try Checkpoint.readConfig(dir + "/" + Checkpoint.configFile)
        let file = try WeightFiles.open(folder: dir)
        try Checkpoint.checkConfig(config, against: file, configPath: dir + "/" + Checkpoint.configFile)
        let infos = file.tensors.map(\.info)
        let stored = infos.filter { $0.name != "lm_head.weight" && !$0.name.hasSuffix(".attn.bias") && !$0.name.hasSuffix(".attn.masked_bias") }
        parameters = stored.reduce(0) { $0 + $1.count }
        tensors = infos.count
        dtypes = Array(Set(infos.map(\.dtype.rawValue))).sorted()
        weightBytes = infos.reduce(0) { $0 + ($1.end - $1.begin) }
        func json(_ name: String) -> [String: Any]? {
            FileManager.default.contents(atPath: dir + "/" + name).flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
        }
        notes = json(Checkpoint.infoFile) ?? [:]
        trainingOptions = json(TrainJob.configFile)
        var files: [String] = []
        for name in [Checkpoint.vocabFile, "tokenizer.json", "tokenizer_config.json"] where FileManager.default.fileExists(atPath: dir + "/" + name) {
            files.append(name)
        }
        if let vocab = json(Checkpoint.vocabFile) {
            let isChar = (try? CharTokenizer(vocab: vocab.compactMapValues { ($0 as? NSNumber)?.intValue })) != nil
            tokenizer = "\(isChar ? "RuleLens character vocabulary" : "vocabulary (not RuleLens's character one)"), \(vocab.count) tokens (\(files.joined(separator: ", ")))"
        } else {
            tokenizer = "no vocab.json: the standard character vocabulary (\(CharTokenizer.standard.count) tokens) is assumed"
        }
    }

    /// The lines `rulelens info` prints.
    public var lines: [String] {
        let c = config
        var out = ["\(dir): GPT-2, \(c.nLayer) layer\(c.nLayer == 1 ? "" : "s"), \(c.nHead) heads × d_head \(c.dHead), d_model \(c.dModel), d_mlp \(c.dMLP), context \(c.nCtx), vocab \(c.vocabSize), layer_norm_epsilon \(c.layerNormEps)",
                   "parameters: \(parameters) in \(tensors) tensors (\(dtypes.joined(separator: ", ")), \(MemoryEstimate.format(weightBytes))); LM head tied to transformer.wte.weight"]
        if notes["init"] != nil {
            out.append("untrained: random initialisation (seed \(notes["seed"] ?? "?")), written by `rulelens init`")
        } else if let step = notes["step"] {
            let steps = notes["steps"].map { " of \($0)" } ?? ""
            out.append("trained: step \(step)\(steps)" + (notes["data"].map { ", data \($0)" } ?? "") + (notes["seed"].map { ", seed \($0)" } ?? ""))
        }
        if let o = trainingOptions {
            let keys = ["steps", "batch", "lr", "minLRFraction", "warmup", "weightDecay", "gradClip", "lossOn", "seed", "ctx", "data", "evalData"]
            let shown = keys.compactMap { k in o[k].map { "\(k) \($0)" } }
            out.append("training options: " + shown.joined(separator: ", "))
            let others = o.keys.filter { !keys.contains($0) && !["layers", "heads", "dModel", "dMLP"].contains($0) }.sorted()
            if !others.isEmpty { out.append("  also: " + others.map { "\($0) \(o[$0]!)" }.joined(separator: ", ")) }
        }
        let kernelKeys = notes.keys.filter { $0.lowercased().contains("blas") || $0.lowercased().contains("kernel") || $0.lowercased().contains("coretype") || $0.lowercased().contains("thread") }.sorted()
        out.append("kernel: " + (kernelKeys.isEmpty ? "not recorded (saved before RuleLens recorded the BLAS kernel)"
                                                     : kernelKeys.map { "\($0) \(notes[$0]!)" }.joined(separator: ", ")))
        out.append("tokenizer: \(tokenizer)")
        if let v = notes["rulelens_version"] { out.append("written by rulelens \(v)") }
        return out
    }

    /// `--json`: the same facts as one object.
    public var json: [String: Any] {
        let c = config
        return ["checkpoint": dir, "architecture": "gpt2", "n_layer": c.nLayer, "n_head": c.nHead, "n_embd": c.dModel,
                "n_inner": c.dMLP, "n_positions": c.nCtx, "vocab_size": c.vocabSize, "layer_norm_epsilon": Double(c.layerNormEps),
                "parameters": parameters, "tensors": tensors, "dtypes": dtypes, "weight_bytes": weightBytes,
                "rulelens": notes, "training_options": trainingOptions ?? NSNull(), "tokenizer": tokenizer]
    }

    /// Every hook site of the model with its per-example shape (batch axis dropped; position axes as `pos`, up to
    /// the context) and dimension names, filtered by `patterns` (names or `*` globs; empty = all).
    public static func hooks(config: GPTConfig, patterns: [String]) throws -> [(name: String, shape: String, dims: String)] {
        let names = patterns.isEmpty ? HookSites.names(for: config) : try HookSites.resolve(patterns, config: config)
        return names.map { name in
            let dims = Array(HookSites.dims(of: name).dropFirst())
            let sizes = Array(HookSites.shape(of: name, config: config, batch: 1, seqLen: config.nCtx).dropFirst())
            let shape = zip(dims, sizes).map { DumpSiteLayout.isPosition($0) ? "pos" : String($1) }
            return (name, "[" + shape.joined(separator: ", ") + "]", dims.joined(separator: ","))
        }
    }

    /// Writes a randomly initialised checkpoint (GPT-2 initialisation from `seed`, exactly the weights
    /// `rulelens train --seed SEED` starts from with the same shape) — a baseline for probes and dumps.
    public static func writeRandomInit(config: GPTConfig, seed: UInt64, to dir: String) throws {
        try config.validate()
        try MemoryEstimate.model(config).require("a \(MemoryEstimate.parameterCount(config))-parameter model",
                                                 fix: "choose a smaller model (--layers, --d-model, --d-mlp, --ctx)")
        if FileManager.default.fileExists(atPath: dir) {
            throw RuleLensError("\(dir) already exists", fix: "choose a new --out folder")
        }
        let model = try GPT(config: config, seed: seed)
        try Checkpoint.save(model, vocab: CharTokenizer.standard.vocab, to: dir,
                            extra: ["init": "random", "seed": "\(seed)", "step": "0"], metadata: ["step": "0", "init": "random"])
    }
}
