import Foundation
import RuleLensNumerics

/// Llama/Qwen2-family checkpoints in Hugging Face form: `config.json` (`LlamaConfig` / `Qwen2Config`) and safetensors
/// weights under HF's names (`model.layers.{l}.self_attn.q_proj.weight`, …; single file or sharded; F32/F16/BF16),
/// so `LlamaForCausalLM` / `Qwen2ForCausalLM.from_pretrained(dir)` opens what RuleLens writes and real checkpoints
/// of the family load into RuleLens.
public enum LlamaCheckpoint {
    /// The family's causal-LM classes, by `model_type`.
    public static let architectures: [LlamaConfig.Family: String] = [.llama: "LlamaForCausalLM", .qwen2: "Qwen2ForCausalLM"]

    /// Reads an HF `LlamaConfig`/`Qwen2Config` (already parsed from `path`), rejecting what RuleLens does not implement.
    public static func readConfig(_ dict: [String: Any], path: String) throws -> LlamaConfig {
        let type = dict["model_type"] as? String ?? ""
        guard let family = LlamaConfig.Family(rawValue: type) else {
            throw RuleLensError("\(path) describes a \"\(type)\" model, not llama or qwen2", fix: "pass a Llama or Qwen2 checkpoint")
        }
        if let archs = dict["architectures"] as? [String], !archs.isEmpty, !archs.contains(where: { $0.hasSuffix("ForCausalLM") }) {
            throw RuleLensError("\(path) describes a \(archs.joined(separator: ", ")), not a causal language model",
                                fix: "RuleLens loads \(architectures[family]!) checkpoints (a language-model head over the vocabulary)")
        }
        func int(_ key: String) throws -> Int {
            guard let v = (dict[key] as? NSNumber)?.intValue else {
                throw RuleLensError("\(path) has no integer \"\(key)\"",
                                    fix: "config.json must be an HF \(type == "qwen2" ? "Qwen2Config" : "LlamaConfig") with hidden_size, num_hidden_layers, num_attention_heads, intermediate_size, max_position_embeddings and vocab_size")
            }
            return v
        }
        let activation = dict["hidden_act"] as? String ?? "silu"
        guard activation == "silu" else {
            throw RuleLensError("\(path) uses hidden_act \"\(activation)\"", fix: "RuleLens's Llama/Qwen2 MLP is SwiGLU with silu; use a model with hidden_act silu")
        }
        // RoPE: transformers 5 writes rope_parameters {rope_theta, rope_type}; older files rope_theta + rope_scaling.
        var theta = (dict["rope_theta"] as? NSNumber)?.floatValue ?? 10_000
        var ropeType = "default"
        if let rp = dict["rope_parameters"] as? [String: Any] {
            if let t = (rp["rope_theta"] as? NSNumber)?.floatValue { theta = t }
            ropeType = rp["rope_type"] as? String ?? rp["type"] as? String ?? "default"
        }
        if let scaling = dict["rope_scaling"] as? [String: Any] {
            ropeType = scaling["rope_type"] as? String ?? scaling["type"] as? String ?? ropeType
        }
        guard ropeType == "default" else {
            throw RuleLensError("\(path) uses RoPE scaling \"\(ropeType)\" (long-context rescaling, e.g. Llama 3.1's llama3 or YaRN), which RuleLens does not implement",
                                fix: "use a checkpoint with default rotary embeddings (rope_type default / rope_scaling null)")
        }
        if (dict["use_sliding_window"] as? Bool) == true || (dict["layer_types"] as? [String])?.contains(where: { $0 != "full_attention" }) == true {
            throw RuleLensError("\(path) uses sliding-window attention in some layers, which RuleLens does not implement",
                                fix: "use a checkpoint with use_sliding_window false (every layer full attention)")
        }
        let nHead = try int("num_attention_heads"), dModel = try int("hidden_size")
        let config = LlamaConfig(
            family: family, nLayer: try int("num_hidden_layers"), nHead: nHead,
            nKVHead: (dict["num_key_value_heads"] as? NSNumber)?.intValue ?? nHead, dModel: dModel,
            dHead: (dict["head_dim"] as? NSNumber)?.intValue ?? dModel / max(1, nHead), dMLP: try int("intermediate_size"),
            nCtx: try int("max_position_embeddings"), vocabSize: try int("vocab_size"),
            rmsNormEps: (dict["rms_norm_eps"] as? NSNumber)?.floatValue ?? 1e-6, ropeTheta: theta,
            positions: (dict["rulelens_positions"] as? String) == "none" ? .none : .rope,
            tiedEmbeddings: dict["tie_word_embeddings"] as? Bool ?? false,
            qkvBias: family == .qwen2 ? true : (dict["attention_bias"] as? Bool ?? false),
            outputBias: family == .llama && (dict["attention_bias"] as? Bool ?? false),
            mlpBias: family == .llama && (dict["mlp_bias"] as? Bool ?? false))
        do { try config.validate() } catch let error as RuleLensError {
            throw RuleLensError("\(path): \(error.problem)", fix: error.fix)
        }
        return config
    }

    /// The HF config JSON for `config` (both `rope_theta` and transformers 5's `rope_parameters`).
    public static func configJSON(_ c: LlamaConfig, bosTokenID: Int? = nil, eosTokenID: Int? = nil) throws -> Data {
        var object: [String: Any] = [
            "architectures": [architectures[c.family]!],
            "model_type": c.family.rawValue,
            "hidden_size": c.dModel, "intermediate_size": c.dMLP,
            "num_hidden_layers": c.nLayer, "num_attention_heads": c.nHead, "num_key_value_heads": c.nKVHead,
            "head_dim": c.dHead,
            "max_position_embeddings": c.nCtx, "vocab_size": c.vocabSize,
            // Through the shortest decimal text, so 1e-6 is written 1e-06, not 9.99999997e-07.
            "rms_norm_eps": Checkpoint.jsonNumber(c.rmsNormEps),
            "rope_theta": Checkpoint.jsonNumber(c.ropeTheta),
            "rope_parameters": ["rope_theta": Checkpoint.jsonNumber(c.ropeTheta), "rope_type": "default"],
            "hidden_act": "silu",
            "tie_word_embeddings": c.tiedEmbeddings,
            "attention_dropout": 0.0, "initializer_range": 0.02, "use_cache": true,
            "bos_token_id": bosTokenID.map { $0 as Any } ?? NSNull(),
            "eos_token_id": eosTokenID.map { $0 as Any } ?? NSNull(),
        ]
        switch c.family {
        case .qwen2:
            object["use_sliding_window"] = false
            object["sliding_window"] = NSNull()
            object["max_window_layers"] = c.nLayer
        case .llama:
            object["attention_bias"] = c.qkvBias
            object["mlp_bias"] = c.mlpBias
            object["pretraining_tp"] = 1
        }
        if c.positions == .none {
            // transformers always rotates; this marks a RuleLens NoPE model (it does not reproduce in transformers).
            object["rulelens_positions"] = "none"
        }
        return try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
    }

    /// Loads `dir` (config.json + safetensors weights).
    public static func load(_ dir: String) throws -> LlamaModel {
        let path = dir + "/" + Checkpoint.configFile
        let config = try readConfig(try Checkpoint.readJSONObject(path), path: path)
        let weights = try WeightFiles.open(folder: dir)
        try MemoryEstimate.model(MemoryEstimate.comparableConfig(config)).require("loading the model in \(dir)",
                                                                                    fix: "use a machine with more memory, or a smaller model")
        let model = try LlamaModel(config: config, seed: 0)
        try assign(weights, to: model.params)
        return model
    }

    /// Copies every parameter from `weights`, accepting names with or without the `model.` prefix. A stored
    /// `lm_head.weight` of a tied model must equal the embedding; rotary `inv_freq` buffers are ignored.
    public static func assign(_ weights: WeightFiles, to params: LlamaParameters) throws {
        var byName: [String: Safetensors.TensorInfo] = [:]
        var storedHead: Safetensors.TensorInfo? = nil
        var unexpected: [String] = []
        for info in weights.tensors.map(\.info) {
            if info.name.hasSuffix("rotary_emb.inv_freq") { continue }
            if info.name == "lm_head.weight" && params.config.tiedEmbeddings { storedHead = info; continue }
            let name = info.name == "lm_head.weight" || info.name.hasPrefix("model.") ? info.name : "model." + info.name
            guard params.tensor(name) != nil else { unexpected.append(info.name); continue }
            byName[name] = info
        }
        let missing = params.tensors.map(\.name).filter { byName[$0] == nil }
        let source = weights.description
        if !missing.isEmpty || !unexpected.isEmpty {
            var parts: [String] = []
            if !missing.isEmpty { parts.append("missing tensors: \(missing.prefix(6).joined(separator: ", "))\(missing.count > 6 ? " … (\(missing.count) in all)" : "")") }
            if !unexpected.isEmpty { parts.append("unexpected tensors: \(unexpected.prefix(6).joined(separator: ", "))\(unexpected.count > 6 ? " … (\(unexpected.count) in all)" : "")") }
            let hint = missing.contains("lm_head.weight") ? " (an untied model needs lm_head.weight; set tie_word_embeddings true if the head is the embedding)"
                : unexpected.contains(where: { $0.hasSuffix(".bias") }) || missing.contains(where: { $0.hasSuffix(".bias") })
                ? " (biases follow attention_bias / mlp_bias in config.json)" : ""
            throw RuleLensError("\(source) does not match the \(params.config.family.rawValue) model its config.json describes (\(parts.joined(separator: "; ")))",
                                fix: "make config.json agree with the weights\(hint), or re-save the checkpoint from the model it came from")
        }
        for t in params.tensors {
            let info = byName[t.name]!
            guard info.shape == t.shape else {
                throw RuleLensError("tensor \(info.name) in \(weights.path(of: info.name)) has shape \(info.shape), but the config needs \(t.shape)",
                                    fix: "make config.json agree with the weights (nn.Linear weights are stored [out, in])")
            }
            weights.copyFloats(info.name, into: params.storage.ptr + t.offset)
        }
        if let head = storedHead {
            var values = [Float](repeating: 0, count: head.count)
            guard head.shape == [params.config.vocabSize, params.config.dModel] else {
                throw RuleLensError("lm_head.weight in \(source) has shape \(head.shape), not the embedding's", fix: "set tie_word_embeddings false in config.json")
            }
            values.withUnsafeMutableBufferPointer { weights.copyFloats(head.name, into: $0.baseAddress!) }
            for i in 0..<head.count where values[i] != params.embed[i] {
                throw RuleLensError("config.json ties the LM head to the embedding, but lm_head.weight in \(source) differs from it",
                                    fix: "set tie_word_embeddings false in config.json (the head is a separate matrix)")
            }
        }
    }

    /// Writes the checkpoint into `dir` (atomically, as `Checkpoint.save`): config.json, model.safetensors (F32, HF
    /// names; no lm_head.weight when tied), rulelens.json and `files` (the tokenizer's).
    public static func save(_ model: LlamaModel, files extraFiles: [String: Data] = [:], bosTokenID: Int? = nil, eosTokenID: Int? = nil,
                            to dir: String, extra: [String: String] = [:], metadata: [String: String] = [:], overwrite: Bool = false) throws {
        var files: [(name: String, data: Data)] = [(Checkpoint.configFile, try configJSON(model.config, bosTokenID: bosTokenID, eosTokenID: eosTokenID))]
        for name in extraFiles.keys.sorted() { files.append((name, extraFiles[name]!)) }
        var info = extra
        info["format"] = "rulelens-checkpoint"
        info["rulelens_version"] = RuleLensVersion.string
        files.append((Checkpoint.infoFile, try Checkpoint.sortedJSON(info)))
        var meta = metadata
        meta["format"] = "pt"
        let p = model.params
        let entries = p.tensors.map { Safetensors.Entry(name: $0.name, shape: $0.shape, floats: UnsafePointer(p.storage.ptr + $0.offset)) }
        files.append((Checkpoint.weightsFile, Safetensors.encode(entries, metadata: meta)))
        try Checkpoint.writeFolder(files, to: dir, overwrite: overwrite)
    }
}
