import Foundation
import RuleLensNumerics

/// VAE checkpoints: a folder with
/// - `model.safetensors` — decoder under Hugging Face GPT-2 names (`transformer.wte.weight`, `transformer.h.{l}.…`,
///   Conv1D [in, out], LM head tied to `transformer.wte.weight`), encoder under `encoder.wte.weight`, `encoder.wpe.weight`,
///   `encoder.h.{l}.…`, `encoder.ln_f.…` (same per-block names and layouts), latent tensors `latent.…` (see `LatentParameters`);
/// - `config.json` — `VAEConfig` (`model_type: "rulelens-vae"`, every option);
/// - `vocab.json`, `rulelens.json` as GPT checkpoints.
/// `Tests/Python/rulelens_vae.py` (`RuleLensVAE.from_pretrained`) loads it in PyTorch.
public enum VAECheckpoint {
    /// Writes the checkpoint into `dir` (a new folder appears complete or not at all; files in an existing folder are
    /// replaced one by one atomically, weights last, and only with `overwrite`).
    public static func save(_ vae: VAE, vocab: [String: Int]?, to dir: String, extra: [String: String] = [:],
                            metadata: [String: String] = [:], overwrite: Bool = false) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var files: [(name: String, data: Data)] = [(Checkpoint.configFile, try encoder.encode(vae.config))]
        if let vocab { files.append((Checkpoint.vocabFile, try Checkpoint.sortedJSON(vocab))) }
        var info = extra
        info["format"] = "rulelens-vae-checkpoint"
        info["rulelens_version"] = RuleLensVersion.string
        files.append((Checkpoint.infoFile, try Checkpoint.sortedJSON(info)))
        var meta = metadata
        meta["format"] = "pt"
        var entries: [Safetensors.Entry] = []
        for (store, tensors) in vae.checkpointStores {
            for t in tensors { entries.append(Safetensors.Entry(name: t.name, shape: t.shape, floats: UnsafePointer(store.ptr + t.offset))) }
        }
        files.append((Checkpoint.weightsFile, Safetensors.encode(entries, metadata: meta)))
        try Checkpoint.writeFolder(files, to: dir, overwrite: overwrite)
    }

    /// Loads a VAE checkpoint folder. A GPT-2 checkpoint is refused with a pointer to the GPT commands; missing,
    /// unexpected or misshapen tensors are named.
    public static func load(_ dir: String) throws -> VAE {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw RuleLensError("checkpoint folder \(dir) does not exist", fix: "pass the --out folder of a `rulelens vae train` run")
        }
        let config = try VAEConfig.load(URL(fileURLWithPath: dir + "/" + Checkpoint.configFile))
        guard Checkpoint.exists(at: dir) else {
            throw RuleLensError("\(dir) has a config.json but no \(Checkpoint.weightsFile)", fix: "the checkpoint is incomplete; train again")
        }
        let file = try Safetensors.read(path: dir + "/" + Checkpoint.weightsFile)
        let vae = try VAE(config: config, seed: 0)
        var expected: [String: (UnsafeMutablePointer<Float>, [Int])] = [:]
        for (store, tensors) in vae.checkpointStores {
            for t in tensors { expected[t.name] = (store.ptr + t.offset, t.shape) }
        }
        let present = Set(file.tensors.map(\.name))
        let missing = expected.keys.filter { !present.contains($0) }.sorted()
        let unexpected = file.tensors.map(\.name).filter { expected[$0] == nil }
        if !missing.isEmpty || !unexpected.isEmpty {
            var parts: [String] = []
            if !missing.isEmpty { parts.append("missing tensors: \(missing.prefix(8).joined(separator: ", "))\(missing.count > 8 ? " … (\(missing.count) in all)" : "")") }
            if !unexpected.isEmpty { parts.append("unexpected tensors: \(unexpected.prefix(8).joined(separator: ", "))\(unexpected.count > 8 ? " … (\(unexpected.count) in all)" : "")") }
            throw RuleLensError("\(file.path) does not match the VAE its config.json describes (\(parts.joined(separator: "; ")))",
                                fix: "make config.json (inject, supervise, n_layer, latent_size, …) agree with the weights, or train again")
        }
        for info in file.tensors {
            let (pointer, shape) = expected[info.name]!
            guard info.shape == shape else {
                throw RuleLensError("tensor \(info.name) in \(file.path) has shape \(info.shape), but the config needs \(shape)",
                                    fix: "make config.json agree with the weights")
            }
            file.copyFloats(info, into: pointer)
        }
        return vae
    }
}

extension VAE {
    /// Parameter stores in checkpoint order: decoder (HF GPT-2 names), encoder, latent.
    var checkpointStores: [(FloatBuffer, [ParameterTensor])] {
        [(decoder.params.storage, decoder.params.tensors), (encoder.params.storage, encoder.params.tensors), (latent.storage, latent.tensors)]
    }
}
