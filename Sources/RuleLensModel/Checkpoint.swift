import Foundation
import RuleLensNumerics

/// Checkpoints in Hugging Face GPT-2 form, so `transformers.GPT2LMHeadModel.from_pretrained(dir)` opens them as
/// they are and real GPT-2 checkpoints load into RuleLens:
///
/// - `model.safetensors` — every parameter under its HF name and layout (Conv1D weights [in, out]); the LM head
///   is tied to `transformer.wte.weight` and not stored;
/// - `config.json` — an HF `GPT2Config` (gelu_new, layer_norm_epsilon, tied embeddings, bos/eos ids);
/// - `vocab.json` — token → id (optional), and with a character vocabulary `tokenizer.json` +
///   `tokenizer_config.json` (see `TokenizerFiles`), so `AutoTokenizer` and TransformerLens open the folder as it is;
/// - `rulelens.json` — RuleLens's own notes: version, the BLAS kernel and thread count in force (results are
///   bitwise reproducible only for the same ones), the caller's `extra` fields, and under `files` the SHA-256 and
///   size of every other file of the checkpoint, which `load` verifies (a flipped byte is an error naming the file,
///   not silent garbage; `verify: false` / `--no-verify` skips it for files edited on purpose).
public enum Checkpoint {
    public static let weightsFile = "model.safetensors"
    public static let configFile = "config.json"
    public static let vocabFile = "vocab.json"
    public static let infoFile = "rulelens.json"

    /// Whether `load` verifies the SHA-256 manifest by default. The CLI's `--no-verify` turns it off for one command.
    nonisolated(unsafe) public static var verifiesByDefault = true

    /// Whether `dir` holds a checkpoint (its weights file, or a sharded index, exists).
    public static func exists(at dir: String) -> Bool {
        WeightFiles.exist(in: dir)
    }

    /// Writes the checkpoint into `dir`.
    ///
    /// A new `dir` is built as a temporary sibling folder and renamed into place, so it appears complete or not at all.
    /// Into an existing folder (e.g. a training run's output), each file is written to a temporary name and renamed,
    /// weights last; an existing checkpoint there is replaced only when `overwrite` is true.
    /// `metadata` goes into the safetensors header (`__metadata__`, alongside `format: pt`).
    /// `files` (name → bytes) are written beside the weights: the tokenizer's files (`TextTokenizer.checkpointFiles`).
    public static func save(_ model: GPT, vocab: [String: Int]?, files extraFiles: [String: Data] = [:], to dir: String,
                            extra: [String: Any] = [:], metadata: [String: String] = [:], overwrite: Bool = false,
                            configExtra: [String: Any] = [:]) throws {
        let files = try encode(model, vocab: vocab, files: extraFiles, extra: extra, metadata: metadata, configExtra: configExtra)

        try writeFolder(files, to: dir, overwrite: overwrite)
    }

    /// Writes `files` as the checkpoint folder `dir`: a new folder is built as a temporary sibling and renamed into
    /// place (complete or not at all); into an existing folder each file goes through a temporary name, in order
    /// (weights last by the callers' convention). An existing checkpoint there is replaced only with `overwrite`.
    public static func writeFolder(_ files: [(name: String, data: Data)], to dir: String, overwrite: Bool) throws {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        let dirExists = fm.fileExists(atPath: dir, isDirectory: &isDir)
        if dirExists && !isDir.boolValue {
            throw RuleLensError("checkpoint path \(dir) exists and is a file, not a folder", fix: "choose another output folder")
        }
        if dirExists && exists(at: dir) && !overwrite {
            throw RuleLensError("\(dir) already holds a checkpoint (\(weightsFile))",
                                fix: "choose another folder, or delete the old checkpoint first")
        }
        if dirExists {
            for file in files { try AtomicFile.write(file.data, to: dir + "/" + file.name) }
            return
        }
        let url = URL(fileURLWithPath: dir).standardizedFileURL
        let parent = url.deletingLastPathComponent().path
        guard fm.fileExists(atPath: parent) else {
            throw RuleLensError("the parent folder \(parent) of checkpoint \(dir) does not exist", fix: "create it first, or choose another path")
        }
        let temp = parent + "/.\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0..<UInt32.max))"
        do {
            do { try fm.createDirectory(atPath: temp, withIntermediateDirectories: false) } catch {
                throw FileSystemError.mapped(error, path: dir, action: "create the checkpoint folder") ?? error
            }
            for file in files { try AtomicFile.write(file.data, to: temp + "/" + file.name) }
            // Renamed into place now, or with the command's other outputs (an open OutputCommit).
            try AtomicFile.publish(temp, at: url.path)
        } catch {
            try? fm.removeItem(atPath: temp)
            throw error
        }
    }

    /// The files of a checkpoint as bytes, in writing order: config.json, vocab.json and the tokenizer files (when a
    /// vocabulary is given), model.safetensors, and last rulelens.json, which records the SHA-256 and size of the others (and the BLAS provenance).
    /// `configExtra` adds keys to config.json (a rule prior's `rulelens_rule_prior`).
    public static func encode(_ model: GPT, vocab: [String: Int]?, files extraFiles: [String: Data] = [:], extra: [String: Any] = [:],
                              metadata: [String: String] = [:], configExtra: [String: Any] = [:]) throws -> [(name: String, data: Data)] {
        var files: [(name: String, data: Data)] = []
        var configData = try configJSON(model.config)
        if !configExtra.isEmpty {
            var object = try JSONSerialization.jsonObject(with: configData) as? [String: Any] ?? [:]
            for (key, value) in configExtra { object[key] = value }
            configData = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        }
        files.append((configFile, configData))
        if let vocab {
            files.append((vocabFile, try sortedJSON(vocab)))
            files += try TokenizerFiles.files(vocab: vocab, nCtx: model.config.nCtx, modelType: "gpt2")   // tokenizer.json for AutoTokenizer
        }
        for name in extraFiles.keys.sorted() { files.append((name, extraFiles[name]!)) }
        var meta = metadata
        meta["format"] = "pt"
        files.append((weightsFile, weightsData(model.params, metadata: meta)))
        var info: [String: Any] = [:]
        for (key, value) in BLASProvenance.current.fields { info[key] = value }
        for (key, value) in extra { info[key] = value }
        info["format"] = "rulelens-checkpoint"
        info["rulelens_version"] = RuleLensVersion.string
        info["files"] = Dictionary(uniqueKeysWithValues: files.map { ($0.name, ["sha256": SHA256.hex($0.data), "bytes": $0.data.count] as [String: Any]) })
        files.append((infoFile, try sortedJSON(info)))
        return files
    }

    /// Checks every file `rulelens.json` lists against its recorded SHA-256 and size. Folders without a
    /// rulelens.json (e.g. saved by `transformers`) or without a `files` list have nothing to check against.
    public static func verify(_ dir: String) throws {
        let infoPath = dir + "/" + infoFile
        guard let data = FileManager.default.contents(atPath: infoPath) else { return }
        guard let object = try? JSONSerialization.jsonObject(with: data), let info = object as? [String: Any] else {
            throw RuleLensError("\(infoPath) is not a JSON object (it holds the checkpoint's SHA-256 manifest)",
                                fix: "restore it from a copy, or pass --no-verify to load the checkpoint without checking its files")
        }
        guard let listed = info["files"] else { return }
        guard let files = listed as? [String: Any] else {
            throw RuleLensError("\(infoPath): \"files\" is not an object of file → {sha256, bytes}",
                                fix: "restore rulelens.json from a copy, or pass --no-verify to skip the check")
        }
        for name in files.keys.sorted() {
            let path = dir + "/" + name
            guard let entry = files[name] as? [String: Any], let expected = entry["sha256"] as? String else {
                throw RuleLensError("\(infoPath) has no SHA-256 for \(name)", fix: "restore rulelens.json from a copy, or pass --no-verify to skip the check")
            }
            let expectedBytes = (entry["bytes"] as? NSNumber)?.intValue
            guard let actual = SHA256.hex(fileAt: path) else {
                throw RuleLensError("\(path) is missing (\(infoPath) lists it as part of the checkpoint)",
                                    fix: "restore the file from a copy; if you removed it on purpose, pass --no-verify")
            }
            if actual != expected {
                let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue
                let sizes = size.map { s in expectedBytes.map { s == $0 ? " (same size, \(s) bytes: changed in place)" : " (\(s) bytes, saved as \($0))" } ?? "" } ?? ""
                throw RuleLensError("\(path) does not match the SHA-256 recorded in \(infoFile) when it was saved\(sizes): the file is damaged or was edited",
                                    fix: "restore it from a copy (a training run's newest save is also in checkpoints/; `rulelens train --out … --resume` republishes it); if you edited it on purpose, pass --no-verify")
            }
        }
    }

    /// Loads a checkpoint folder written by RuleLens or by `transformers` (`save_pretrained` with safetensors).
    ///
    /// Tensor names may carry the `transformer.` prefix or not; the attention-mask buffers (`attn.bias`,
    /// `attn.masked_bias`) and a tied `lm_head.weight` are ignored. Missing, unexpected or misshapen tensors are
    /// errors that name them. With `verify` (the default, `verifiesByDefault`), the files are first checked against
    /// the SHA-256 manifest in rulelens.json (see `verify(_:)`).
    /// A checkpoint with a trained rule prior (`rulelens_rule_prior` in config.json) is refused here with an error
    /// naming the commands that take it; `loadRulePrior` opens it.
    public static func load(_ dir: String, verify: Bool = verifiesByDefault) throws -> (model: GPT, vocab: [String: Int]?) {
        if let spec = try? rulePriorSpec(dir) {
            throw RuleLensError("\(dir) holds a GPT trained with a rule prior (\(spec.inject.rawValue) injection of its \(spec.column) column), which this command does not take",
                                fix: "use `rulelens eval`, `rulelens logits` or `rulelens retrieve` (they select each example's prior by its \(spec.column)); transformers loads the folder as a plain GPT2LMHeadModel without the prior")
        }
        let (model, vocab) = try loadParts(dir, verify: verify) { try GPT(config: $0, seed: 0) }
        return (model, vocab)
    }

    /// The rule-prior spec in `dir`/config.json (nil for a plain checkpoint).
    public static func rulePriorSpec(_ dir: String) throws -> RulePriorSpec? {
        let path = dir + "/" + configFile
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        return try RulePriorSpec.read(config: try readJSONObject(path), path: path)
    }

    /// Loads a checkpoint written by `rulelens train --rule-prior`; a plain checkpoint is an error saying so.
    public static func loadRulePrior(_ dir: String, verify: Bool = verifiesByDefault) throws -> (model: RulePriorGPT, vocab: [String: Int]?) {
        guard let spec = try rulePriorSpec(dir) else {
            throw RuleLensError("\(dir) holds no trained rule prior (its config.json has no \(RulePriorSpec.configKey))",
                                fix: "train with `rulelens train --rule-prior COLUMN --inject SITE`, or drop the prior options for this checkpoint")
        }
        var prior: RulePriorGPT? = nil
        let (_, vocab) = try loadParts(dir, verify: verify) { config in
            prior = try RulePriorGPT(config: config, spec: spec, seed: 0)
            return prior!.gpt
        }
        return (prior!, vocab)
    }

    static func loadParts(_ dir: String, verify: Bool, build: (GPTConfig) throws -> GPT) throws -> (model: GPT, vocab: [String: Int]?) {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw RuleLensError("checkpoint folder \(dir) does not exist",
                                fix: "pass the --out folder of a finished `rulelens train` run (it holds model.safetensors and config.json)")
        }
        if verify { try Self.verify(dir) }
        let config = try readConfig(dir + "/" + configFile)
        let file = try WeightFiles.open(folder: dir)
        // Before anything is allocated: config.json must agree with the tensors and the training options, and fit.
        try checkConfig(config, against: file, configPath: dir + "/" + configFile)
        try checkTrainingOptions(config, dir: dir, configPath: dir + "/" + configFile)
        try MemoryEstimate.model(config).require("loading the model in \(dir)",
                                                 fix: "use a machine with more memory, or a smaller model")
        let model = try build(config)
        try assign(file, to: model.params)
        var vocab: [String: Int]? = nil
        let vocabPath = dir + "/" + vocabFile
        if FileManager.default.fileExists(atPath: vocabPath) {
            guard let data = FileManager.default.contents(atPath: vocabPath),
                  let object = try? JSONSerialization.jsonObject(with: data), let dict = object as? [String: Any] else {
                throw RuleLensError("\(vocabPath) is not a JSON object (token → id)", fix: "re-save the checkpoint, or delete vocab.json")
            }
            var v: [String: Int] = [:]
            for (token, id) in dict {
                guard let n = (id as? NSNumber)?.intValue else {
                    throw RuleLensError("\(vocabPath) maps \"\(token)\" to a non-integer", fix: "re-save the checkpoint, or delete vocab.json")
                }
                v[token] = n
            }
            vocab = v
            try checkSpecialTokens(configPath: dir + "/" + configFile, vocab: v)
        }
        return (model, vocab)
    }

    /// The safetensors bytes of `params`, tensors in HF state-dict order.
    public static func weightsData(_ params: GPTParameters, metadata: [String: String]) -> Data {
        let entries = params.tensors.map {
            Safetensors.Entry(name: $0.name, shape: $0.shape, floats: UnsafePointer(params.storage.ptr + $0.offset))
        }
        return Safetensors.encode(entries, metadata: metadata)
    }

    /// Copies every parameter of `params` from one safetensors file.
    public static func assign(_ file: Safetensors.File, to params: GPTParameters) throws {
        try assign(WeightFiles(file), to: params)
    }

    /// Copies every parameter of `params` from `file` (one file or shards), matching HF names with or without `transformer.`.
    public static func assign(_ file: WeightFiles, to params: GPTParameters) throws {
        var byName: [String: Safetensors.TensorInfo] = [:]
        var ignoredHead: Safetensors.TensorInfo? = nil
        var unexpected: [String] = []
        for info in file.tensors.map(\.info) {
            // Tensors outside the GPT-2 stack (a rule-prior table) keep their own names.
            let name = info.name.hasPrefix("transformer.") || (info.name != "lm_head.weight" && params.tensor(info.name) != nil)
                ? info.name : "transformer." + info.name
            if name.hasSuffix(".attn.bias") || name.hasSuffix(".attn.masked_bias") { continue }
            if info.name == "lm_head.weight" {
                if params.config.tiedHead { ignoredHead = info } else { byName["lm_head.weight"] = info }
                continue
            }
            if params.tensor(name) == nil { unexpected.append(info.name); continue }
            byName[name] = info
        }
        let missing = params.tensors.map(\.name).filter { byName[$0] == nil }
        let filePath = file.description
        if !missing.isEmpty || !unexpected.isEmpty {
            var parts: [String] = []
            if !missing.isEmpty { parts.append("missing tensors: \(missing.prefix(8).joined(separator: ", "))\(missing.count > 8 ? " … (\(missing.count) in all)" : "")") }
            if !unexpected.isEmpty { parts.append("unexpected tensors: \(unexpected.prefix(8).joined(separator: ", "))\(unexpected.count > 8 ? " … (\(unexpected.count) in all)" : "")") }
            throw RuleLensError("\(filePath) does not match the GPT-2 model its config.json describes (\(parts.joined(separator: "; ")))",
                                fix: "make config.json (n_layer, n_embd, …) agree with the weights, or re-save the checkpoint from the model it came from")
        }
        for t in params.tensors {
            let info = byName[t.name]!
            guard info.shape == t.shape else {
                throw RuleLensError("tensor \(info.name) in \(filePath) has shape \(info.shape), but the config needs \(t.shape)",
                                    fix: "make config.json agree with the weights (GPT-2 Conv1D weights are stored [in, out])")
            }
            file.copyFloats(info.name, into: params.storage.ptr + t.offset)
        }
        if let head = ignoredHead, let wte = params.tensor(params.tensors[0].name) {
            // config.json ties the head to the embedding: a stored head that differs would silently change the model.
            guard head.shape == wte.shape else {
                throw RuleLensError("lm_head.weight in \(filePath) has shape \(head.shape), not the embedding's \(wte.shape)",
                                    fix: "set tie_word_embeddings false in config.json only if the head is [vocab_size, n_embd]; otherwise re-save the checkpoint")
            }
            var values = [Float](repeating: 0, count: head.count)
            values.withUnsafeMutableBufferPointer { file.copyFloats(head.name, into: $0.baseAddress!) }
            let embedding = params.storage.ptr + wte.offset
            for i in 0..<head.count where values[i] != embedding[i] {
                throw RuleLensError("lm_head.weight in \(filePath) differs from transformer.wte.weight, but config.json ties them",
                                    fix: "set \"tie_word_embeddings\": false in config.json (the head is a separate matrix)")
            }
        }
    }

    /// The HF GPT2Config JSON for `config`.
    public static func configJSON(_ config: GPTConfig) throws -> Data {
        let object: [String: Any] = [
            "architectures": ["GPT2LMHeadModel"],
            "model_type": "gpt2",
            "vocab_size": config.vocabSize,
            "n_positions": config.nCtx,
            "n_ctx": config.nCtx,
            "n_embd": config.dModel,
            "n_layer": config.nLayer,
            "n_head": config.nHead,
            "n_inner": config.dMLP,
            "activation_function": "gelu_new",
            "layer_norm_epsilon": jsonNumber(config.layerNormEps),
            "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0,
            "initializer_range": 0.02,
            "scale_attn_weights": true,
            "scale_attn_by_inverse_layer_idx": false,
            "reorder_and_upcast_attn": false,
            "tie_word_embeddings": config.tiedHead,
            "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0,
            "use_cache": true,
        ]
        return try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
    }

    /// `value` as the Double of its shortest round-tripping decimal, so JSON says `1e-05` for the Float 1e-5 rather
    /// than the widened `9.999999747378752e-06` (Python reads back the number that was meant).
    public static func jsonNumber(_ value: Float) -> Double { Double("\(value)") ?? Double(value) }

    /// Reads an HF GPT2Config file into a `GPTConfig`, rejecting settings RuleLens's GPT-2 does not implement.
    /// The JSON object in `path` (a config.json), with errors naming the file.
    public static func readJSONObject(_ path: String) throws -> [String: Any] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RuleLensError("\(path) does not exist", fix: "a model folder needs config.json; pass a folder written by `rulelens train` or save_pretrained")
        }
        guard let object = try? JSONSerialization.jsonObject(with: data), let dict = object as? [String: Any] else {
            throw RuleLensError("\(path) is not a JSON object", fix: "re-save the checkpoint; config.json must be a Hugging Face model config")
        }
        return dict
    }

    public static func readConfig(_ path: String) throws -> GPTConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RuleLensError("\(path) does not exist", fix: "a checkpoint folder needs config.json (an HF GPT2Config); pass a folder written by `rulelens train` or save_pretrained")
        }
        guard let object = try? JSONSerialization.jsonObject(with: data), let dict = object as? [String: Any] else {
            throw RuleLensError("\(path) is not a JSON object", fix: "re-save the checkpoint; config.json must be an HF GPT2Config")
        }
        func int(_ key: String, _ fallback: String? = nil) throws -> Int {
            for k in [key] + (fallback.map { [$0] } ?? []) {
                guard let value = dict[k] else { continue }
                // 1e9 is a JSON number too; what matters is that it is a whole number an Int holds.
                guard let n = value as? NSNumber, n.doubleValue.isFinite, n.doubleValue == n.doubleValue.rounded(),
                      abs(n.doubleValue) < 9.2e18 else {
                    throw RuleLensError("\(path): \(k) is \(value), not a whole number", fix: "set \(k) to a positive integer (an HF GPT2Config field)")
                }
                return Int(n.doubleValue)
            }
            throw RuleLensError("\(path) has no integer \"\(key)\"", fix: "config.json must be an HF GPT2Config with n_layer, n_head, n_embd, n_positions and vocab_size")
        }
        if let type = dict["model_type"] as? String, type == "rulelens-vae" {
            throw RuleLensError("\(path) describes a RuleLens language VAE (model_type \"rulelens-vae\"), not a GPT-2",
                                fix: "use the VAE commands for it (`rulelens vae eval|encode|decode …`), or pass a GPT-2 checkpoint")
        }
        if let type = dict["model_type"] as? String, type != "gpt2" {
            throw RuleLensError("\(path) describes a \"\(type)\" model, not gpt2", fix: "load it with ModelFolder.load, which reads \(ModelFolder.supported)")
        }
        let activation = dict["activation_function"] as? String ?? "gelu_new"
        guard ["gelu_new", "gelu_pytorch_tanh"].contains(activation) else {
            throw RuleLensError("\(path) uses activation_function \"\(activation)\"", fix: "RuleLens's GPT-2 uses the tanh GELU (gelu_new); convert or retrain the model")
        }
        for flag in ["scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn"] where (dict[flag] as? Bool) == true {
            throw RuleLensError("\(path) sets \(flag), which RuleLens's GPT-2 does not implement", fix: "use a checkpoint with \(flag) false")
        }
        if (dict["scale_attn_weights"] as? Bool) == false {
            throw RuleLensError("\(path) sets scale_attn_weights false", fix: "RuleLens's attention always scales by 1/sqrt(d_head); use a standard GPT-2 config")
        }
        let dModel = try int("n_embd")
        let dMLP = dict["n_inner"] == nil || dict["n_inner"] is NSNull ? 4 * dModel : try int("n_inner")
        var eps: Float = 1e-5
        if let value = dict["layer_norm_epsilon"] {
            guard let n = value as? NSNumber, n.doubleValue.isFinite, n.doubleValue > 0, n.doubleValue < 1 else {
                throw RuleLensError("\(path): layer_norm_epsilon is \(value), not a small positive number",
                                    fix: "set layer_norm_epsilon to a number such as 1e-05 (GPT-2's value)")
            }
            eps = n.floatValue
        }
        let config = GPTConfig(nLayer: try int("n_layer"), nHead: try int("n_head"), dModel: dModel, dMLP: dMLP,
                               nCtx: try int("n_positions", "n_ctx"), vocabSize: try int("vocab_size"), layerNormEps: eps, tiedHead: (dict["tie_word_embeddings"] as? Bool) ?? true)
        do { try config.validate() } catch let error as RuleLensError {
            throw RuleLensError("\(path): \(error.problem)", fix: error.fix)
        }
        return config
    }

    static func sortedJSON(_ object: Any) throws -> Data {
        var data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        data.append(0x0A)
        return data
    }
}
