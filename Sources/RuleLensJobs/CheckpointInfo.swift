import Foundation
import RuleLensModel
import RuleLensNumerics
import RuleLensTasks

/// What a checkpoint folder holds — read from its files without building the model: `rulelens info`.
public struct CheckpointInfo {
    public let dir: String
    /// GPT-2's shape; for the Llama/Qwen2 family a GPT-2 shape of the same widths (see `llamaConfig`).
    public let config: GPTConfig
    /// The Llama/Qwen2-family shape (nil for GPT-2).
    public let llamaConfig: LlamaConfig?
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
        let configPath = dir + "/" + Checkpoint.configFile
        let family = try ModelFolder.modelType(dir)
        let file = try WeightFiles.open(folder: dir)
        if family == "llama" || family == "qwen2" {
            let lc = try LlamaCheckpoint.readConfig(try Checkpoint.readJSONObject(configPath), path: configPath)
            llamaConfig = lc
            config = MemoryEstimate.comparableConfig(lc)
        } else {
            llamaConfig = nil
            config = try Checkpoint.readConfig(configPath)
            try Checkpoint.checkConfig(config, against: file, configPath: configPath)
        }
        let infos = file.tensors.map(\.info)
        let tiedHead = llamaConfig.map(\.tiedEmbeddings) ?? true
        let stored = infos.filter { ($0.name != "lm_head.weight" || !tiedHead) && !$0.name.hasSuffix(".attn.bias") && !$0.name.hasSuffix(".attn.masked_bias")
                                    && !$0.name.hasSuffix("rotary_emb.inv_freq") }
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
        if let bpe = (try? TokenizerFolder.load(folder: dir)) as? BPETokenizer {
            tokenizer = "byte-level BPE, \(bpe.count) ids, \(bpe.mergeCount) merges (\(files.joined(separator: ", "))\(files.contains("merges.txt") || !FileManager.default.fileExists(atPath: dir + "/merges.txt") ? "" : ", merges.txt"))"
        } else if let vocab = json(Checkpoint.vocabFile) {
            let isChar = (try? CharTokenizer(vocab: vocab.compactMapValues { ($0 as? NSNumber)?.intValue })) != nil
            tokenizer = "\(isChar ? "RuleLens character vocabulary" : "vocabulary (not RuleLens's character one)"), \(vocab.count) tokens (\(files.joined(separator: ", ")))"
        } else {
            tokenizer = "no vocab.json: the standard character vocabulary (\(CharTokenizer.standard.count) tokens) is assumed"
        }
    }

    /// The lines `rulelens info` prints.
    public var lines: [String] {
        let c = config
        var out: [String]
        if let l = llamaConfig {
            out = ["\(dir): \(l.family == .qwen2 ? "Qwen2" : "Llama") (\(LlamaCheckpoint.architectures[l.family]!)), \(l.nLayer) layer\(l.nLayer == 1 ? "" : "s"), \(l.nHead) heads (\(l.nKVHead) key/value) × d_head \(l.dHead), d_model \(l.dModel), d_mlp \(l.dMLP), context \(l.nCtx), vocab \(l.vocabSize), positions \(l.positions == .rope ? "rotary (theta \(l.ropeTheta))" : "none"), rms_norm_eps \(l.rmsNormEps)",
                   "parameters: \(parameters) in \(tensors) tensors (\(dtypes.joined(separator: ", ")), \(MemoryEstimate.format(weightBytes))); LM head \(l.tiedEmbeddings ? "tied to model.embed_tokens.weight" : "untied (lm_head.weight)")"]
        } else {
        out = ["\(dir): GPT-2, \(c.nLayer) layer\(c.nLayer == 1 ? "" : "s"), \(c.nHead) heads × d_head \(c.dHead), d_model \(c.dModel), d_mlp \(c.dMLP), context \(c.nCtx), vocab \(c.vocabSize), layer_norm_epsilon \(c.layerNormEps)",
                   "parameters: \(parameters) in \(tensors) tensors (\(dtypes.joined(separator: ", ")), \(MemoryEstimate.format(weightBytes))); LM head \(c.tiedHead ? "tied to transformer.wte.weight" : "untied (lm_head.weight)")"]
        }
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
            // (The BLAS provenance in train_config.json is shown on the kernel line, from rulelens.json.)
            let others = o.keys.filter { !keys.contains($0) && !["layers", "heads", "dModel", "dMLP", "blas", "blas_history"].contains($0) }.sorted()
            if !others.isEmpty { out.append("  also: " + others.map { "\($0) \(o[$0]!)" }.joined(separator: ", ")) }
        }
        let kernelKeys = notes.keys.filter { $0.lowercased().contains("blas") || $0.lowercased().contains("kernel") || $0.lowercased().contains("coretype") || $0.lowercased().contains("thread") }.sorted()
        func text(_ value: Any) -> String { (value as? [Any]).map { $0.map { "\($0)" }.joined(separator: "; ") } ?? "\(value)" }
        out.append("kernel: " + (kernelKeys.isEmpty ? "not recorded (saved before RuleLens recorded the BLAS kernel)"
                                                     : kernelKeys.map { "\($0) \(text(notes[$0]!))" }.joined(separator: ", ")))
        out.append("tokenizer: \(tokenizer)")
        if let v = notes["rulelens_version"] { out.append("written by rulelens \(v)") }
        return out
    }

    /// `--json`: the same facts as one object.
    public var json: [String: Any] {
        let c = config
        if let l = llamaConfig {
            return ["checkpoint": dir, "architecture": l.family.rawValue, "num_hidden_layers": l.nLayer, "num_attention_heads": l.nHead,
                    "num_key_value_heads": l.nKVHead, "head_dim": l.dHead, "hidden_size": l.dModel, "intermediate_size": l.dMLP,
                    "max_position_embeddings": l.nCtx, "vocab_size": l.vocabSize, "rope_theta": Double(l.ropeTheta),
                    "positions": l.positions.rawValue, "tie_word_embeddings": l.tiedEmbeddings, "rms_norm_eps": Double(l.rmsNormEps),
                    "parameters": parameters, "tensors": tensors, "dtypes": dtypes, "weight_bytes": weightBytes,
                    "rulelens": notes, "training_options": trainingOptions ?? NSNull(), "tokenizer": tokenizer]
        }
        return ["checkpoint": dir, "architecture": "gpt2", "n_layer": c.nLayer, "n_head": c.nHead, "n_embd": c.dModel,
                "n_inner": c.dMLP, "n_positions": c.nCtx, "vocab_size": c.vocabSize, "layer_norm_epsilon": Checkpoint.jsonNumber(c.layerNormEps),
                "parameters": parameters, "tensors": tensors, "dtypes": dtypes, "weight_bytes": weightBytes,
                "rulelens": notes, "training_options": trainingOptions ?? NSNull(), "tokenizer": tokenizer]
    }

    /// Every hook site of the model with its per-example shape (batch axis dropped; position axes as `pos`, up to
    /// the context) and dimension names, filtered by `patterns` (names or `*` globs; empty = all).
    /// `hooks(config:patterns:)` for any checkpoint folder (GPT-2 or the Llama/Qwen2 family), from config.json alone.
    public static func hooks(checkpoint dir: String, patterns: [String]) throws -> [(name: String, shape: String, dims: String)] {
        let family = try ModelFolder.modelType(dir)
        let configPath = dir + "/" + Checkpoint.configFile
        guard family == "llama" || family == "qwen2" else {
            return try hooks(config: try Checkpoint.readConfig(configPath), patterns: patterns)
        }
        let c = try LlamaCheckpoint.readConfig(try Checkpoint.readJSONObject(configPath), path: configPath)
        let all = LlamaHookSites.names(for: c)
        let names = patterns.isEmpty ? all : try HookSites.resolve(patterns, sites: all, modelDescription: "this \(family) model")
        return names.map { name in
            let dims = Array(LlamaHookSites.dims(of: name).dropFirst())
            let sizes = Array(LlamaHookSites.shape(of: name, config: c, batch: 1, seqLen: c.nCtx).dropFirst())
            let shape = zip(dims, sizes).map { DumpSiteLayout.isPosition($0) ? "pos" : String($1) }
            return (name, "[" + shape.joined(separator: ", ") + "]", dims.joined(separator: ","))
        }
    }

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
