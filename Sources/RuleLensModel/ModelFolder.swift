import Foundation
import RuleLensNumerics

/// Opens any model folder RuleLens supports, by the `model_type` in its config.json: `gpt2` (`GPT`), `llama` and
/// `qwen2` (`LlamaModel`). Every job loads checkpoints through here, so each command works on every family.
public enum ModelFolder {
    /// The families and Hugging Face classes RuleLens loads (for messages).
    public static let supported = "gpt2, llama and qwen2 (GPT2LMHeadModel, LlamaForCausalLM, Qwen2ForCausalLM)"

    /// The folder's `model_type` ("gpt2" when config.json names none, as RuleLens's earliest checkpoints).
    public static func modelType(_ dir: String) throws -> String {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw RuleLensError("checkpoint folder \(dir) does not exist",
                                fix: "pass the --out folder of a finished `rulelens train` run, or a Hugging Face model folder (config.json + safetensors)")
        }
        let dict = try Checkpoint.readJSONObject(dir + "/" + Checkpoint.configFile)
        return dict["model_type"] as? String ?? "gpt2"
    }

    /// Loads the model in `dir`; an unknown `model_type` is an error naming it and the supported families.
    /// A language VAE (`rulelens-vae`) loads as a `VAELanguageModel` only with `allowVAE` (the commands that read
    /// activations or intervene on them: dump, ablate, patch, lens); `eval`, `train` and `grad` refuse it with a
    /// pointer to the `rulelens vae` commands (generating from a VAE needs its own z, not a re-encoded prefix).
    /// A checkpoint with a trained rule prior is refused unless `rulePriors` (the caller then sets each batch's rules).
    public static func load(_ dir: String, allowVAE: Bool = false, rulePriors: Bool = false) throws -> any LanguageModel {
        switch try modelType(dir) {
        case "gpt2":
            if rulePriors, try Checkpoint.rulePriorSpec(dir) != nil { return try Checkpoint.loadRulePrior(dir).model }
            return try Checkpoint.load(dir).model
        case "llama", "qwen2": return try LlamaCheckpoint.load(dir)
        case "rulelens-vae" where allowVAE: return VAELanguageModel(try VAECheckpoint.load(dir))
        case "rulelens-vae":
            throw RuleLensError("\(dir) holds a \"rulelens-vae\" model (a language VAE), which this command does not take",
                                fix: "use the VAE commands: rulelens vae eval | encode | decode | interpolate | traverse | logits")
        case let other:
            let archs = (try? Checkpoint.readJSONObject(dir + "/" + Checkpoint.configFile))?["architectures"] as? [String] ?? []
            throw RuleLensError("\(dir)/\(Checkpoint.configFile) describes a \"\(other)\" model\(archs.isEmpty ? "" : " (\(archs.joined(separator: ", ")))"), which RuleLens does not implement",
                                fix: "RuleLens loads \(supported); convert the model or use one of those families")
        }
    }

    /// Writes `model` as a checkpoint folder in its family's Hugging Face form, with `files` (the tokenizer's)
    /// beside it (`Checkpoint.save` / `LlamaCheckpoint.save`). A character tokenizer passes `vocab` instead.
    public static func save(_ model: any LanguageModel, vocab: [String: Int]?, files: [String: Data], bosTokenID: Int?, eosTokenID: Int?,
                            to dir: String, extra: [String: String] = [:], metadata: [String: String] = [:], overwrite: Bool = false) throws {
        // A BPE tokenizer's tokenizer.json gets the post-processor that puts RuleLens's bos first (TokenizerFiles).
        let modelType = (model as? LlamaModel)?.config.family.rawValue ?? "gpt2"
        let files = vocab == nil ? try TokenizerFiles.bpeFiles(files, bosTokenID: bosTokenID, modelType: modelType, nCtx: model.contextLength)
                                 : files
        if let gpt = model as? GPT {
            try Checkpoint.save(gpt, vocab: vocab, files: files, to: dir, extra: extra, metadata: metadata, overwrite: overwrite)
        } else if let prior = model as? RulePriorGPT {
            try Checkpoint.save(prior.gpt, vocab: vocab, files: files, to: dir, extra: extra, metadata: metadata, overwrite: overwrite,
                                configExtra: [RulePriorSpec.configKey: prior.spec.jsonObject])
        } else if let llama = model as? LlamaModel {
            var all = files
            if let vocab {
                all[Checkpoint.vocabFile] = try Checkpoint.sortedJSON(vocab)
                for file in try TokenizerFiles.files(vocab: vocab, nCtx: llama.config.nCtx, modelType: modelType) { all[file.name] = file.data }
            }
            try LlamaCheckpoint.save(llama, files: all, bosTokenID: bosTokenID, eosTokenID: eosTokenID, to: dir,
                                     extra: extra, metadata: metadata, overwrite: overwrite)
        } else {
            throw RuleLensError("a \(model.architecture) model cannot be saved as a checkpoint folder here", fix: "save it with its own family's writer")
        }
    }

    /// A loaded model's configuration by family: the one place that tells the families apart, so callers switch over
    /// a closed set instead of casting to model classes.
    public enum Config {
        case gpt2(GPTConfig)
        /// A GPT-2 trained with a rule prior (its configuration without the prior table).
        case gpt2RulePrior(GPTConfig)
        case llama(LlamaConfig)
        case vae(VAEConfig)
        /// A model of another kind (its `architecture`).
        case other(String)
    }

    /// The configuration of `model` (see `Config`).
    public static func config(of model: any LanguageModel) -> Config {
        if let gpt = model as? GPT { return .gpt2(gpt.config) }
        if let prior = model as? RulePriorGPT { return .gpt2RulePrior(prior.config) }
        if let llama = model as? LlamaModel { return .llama(llama.config) }
        if let vae = model as? VAELanguageModel { return .vae(vae.config) }
        return .other(model.architecture)
    }

    /// The model's shape as sorted JSON with its Hugging Face config keys (recorded with activation dumps).
    public static func configJSON(_ model: any LanguageModel) throws -> String {
        let data: Data
        switch config(of: model) {
        case .gpt2(let c), .gpt2RulePrior(let c): data = try Checkpoint.configJSON(c)
        case .llama(let c): data = try LlamaCheckpoint.configJSON(c)
        case .vae(let c): data = try JSONEncoder().encode(c)
        case .other(let architecture): return "{\"model_type\":\"\(architecture)\"}"
        }
        let object = try JSONSerialization.jsonObject(with: data)
        return String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }
}

extension MemoryEstimate {
    /// Inference memory of any model: exact for GPT-2 (`inference(_: GPTConfig, …)`); for the Llama/Qwen2 family the
    /// GPT-2 figure of the same widths with 1.5× the MLP width (three MLP matrices instead of two) and no position table.
    public static func inference(_ model: any LanguageModel, batch: Int, seqLen: Int, hooks: Bool = false, extraBytes: Int = 0,
                                 extraLabel: String = "outputs held in memory") -> MemoryEstimate {
        inference(comparableConfig(model), batch: batch, seqLen: seqLen, hooks: hooks, extraBytes: extraBytes, extraLabel: extraLabel)
    }

    /// A GPT-2 configuration whose memory figures stand for `model`'s.
    public static func comparableConfig(_ model: any LanguageModel) -> GPTConfig {
        switch ModelFolder.config(of: model) {
        case .gpt2(let c), .gpt2RulePrior(let c): return c
        case .llama(let c): return comparableConfig(c)
        case .vae, .other: return GPTConfig(nLayer: 1, nHead: 1, dModel: 1, nCtx: model.contextLength, vocabSize: model.vocabSize)
        }
    }

    /// See `comparableConfig(_: any LanguageModel)`.
    public static func comparableConfig(_ c: LlamaConfig) -> GPTConfig {
        GPTConfig(nLayer: c.nLayer, nHead: c.nHead, dModel: c.dModel, dMLP: c.dMLP.multipliedSaturating(3) / 2, nCtx: 1, vocabSize: c.vocabSize)
    }
}
