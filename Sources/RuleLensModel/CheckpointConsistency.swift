import Foundation
import RuleLensNumerics

/// Checks that a checkpoint's config.json agrees with its tensors, its vocabulary and the options it was trained
/// with — before any buffer is allocated, so an edited config (`n_positions: 1e9`, a changed `n_head`) is an
/// error naming the field, not an allocator abort or a silently different model.
extension Checkpoint {
    /// The config.json fields the tensor shapes determine, read back from the shapes in `file`, compared with
    /// `config`; the error names every field that disagrees and the tensor that shows it.
    public static func checkConfig(_ config: GPTConfig, against file: WeightFiles, configPath: String) throws {
        func shape(_ name: String) -> [Int]? {
            (file.info("transformer." + name) ?? file.info(name))?.shape
        }
        var contradictions: [String] = []
        func compare(_ field: String, _ said: Int, _ tensor: String, _ seen: Int) {
            if said != seen { contradictions.append("\(field) is \(said) but \(tensor) says \(seen)") }
        }
        if let wte = shape("wte.weight"), wte.count == 2 {
            compare("vocab_size", config.vocabSize, "transformer.wte.weight \(wte)", wte[0])
            compare("n_embd", config.dModel, "transformer.wte.weight \(wte)", wte[1])
        }
        if let wpe = shape("wpe.weight"), wpe.count == 2 {
            compare("n_positions", config.nCtx, "transformer.wpe.weight \(wpe)", wpe[0])
        }
        if let fc = shape("h.0.mlp.c_fc.weight"), fc.count == 2 {
            compare("n_inner", config.dMLP, "transformer.h.0.mlp.c_fc.weight \(fc)", fc[1])
        }
        var layers = Set<Int>()
        for t in file.tensors.map(\.info) {
            let parts = t.name.split(separator: ".")
            if let h = parts.firstIndex(of: "h"), h + 1 < parts.count, let l = Int(parts[h + 1]) { layers.insert(l) }
        }
        if let last = layers.max(), last + 1 != config.nLayer {
            contradictions.append("n_layer is \(config.nLayer) but the weights hold \(last + 1) blocks (transformer.h.0 … h.\(last))")
        }
        if !contradictions.isEmpty {
            throw RuleLensError("\(configPath) contradicts the weights in \(file.description): \(contradictions.joined(separator: "; "))",
                                fix: "restore those fields in config.json to what the tensors say (or re-save the checkpoint from the model it came from)")
        }
    }

    /// The special-token ids of config.json against vocab.json (RuleLens's character vocabulary puts `<pad>`,
    /// `<bos>`, `<eos>` at 0, 1, 2, and every command uses those ids).
    public static func checkSpecialTokens(configPath: String, vocab: [String: Int]) throws {
        guard let data = FileManager.default.contents(atPath: configPath),
              let dict = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { return }
        for (field, token) in [("bos_token_id", "<bos>"), ("eos_token_id", "<eos>"), ("pad_token_id", "<pad>")] {
            guard let value = dict[field], !(value is NSNull), let id = vocab[token] else { continue }
            guard let n = value as? NSNumber, Double(n.intValue) == n.doubleValue else {
                throw RuleLensError("\(configPath): \(field) is \(value), not an integer token id", fix: "set \(field) to \(id), the id of \(token) in vocab.json")
            }
            if n.intValue != id {
                throw RuleLensError("\(configPath): \(field) is \(n.intValue), but vocab.json gives \(token) the id \(id)",
                                    fix: "set \(field) to \(id) in config.json (RuleLens's tokenizer uses the vocab.json ids)")
            }
        }
    }

    /// config.json against `train_config.json` (the options `rulelens train` ran with), when the folder has one:
    /// a field edited afterwards — `n_head` above all, which no tensor shape reveals — is an error naming it.
    public static func checkTrainingOptions(_ config: GPTConfig, dir: String, configPath: String) throws {
        let path = dir + "/train_config.json"
        guard let data = FileManager.default.contents(atPath: path),
              let options = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { return }
        var contradictions: [String] = []
        let fields: [(String, String, Int)] = [("n_layer", "layers", config.nLayer), ("n_head", "heads", config.nHead),
                                               ("n_embd", "dModel", config.dModel), ("n_positions", "ctx", config.nCtx)]
        for (field, option, value) in fields {
            if let trained = (options[option] as? NSNumber)?.intValue, trained != value {
                contradictions.append("\(field) is \(value) but the model was trained with \(option) \(trained)")
            }
        }
        // `rulelens train` always uses GPT-2's LayerNorm epsilon; no tensor shows it, so an edit would pass silently.
        if config.layerNormEps != GPTConfig(nLayer: 1, nHead: 1, dModel: 1, nCtx: 1, vocabSize: 1).layerNormEps {
            contradictions.append("layer_norm_epsilon is \(config.layerNormEps) but `rulelens train` trained with 1e-05")
        }
        if let dModel = (options["dModel"] as? NSNumber)?.intValue {
            let trained = (options["dMLP"] as? NSNumber)?.intValue ?? 4 * dModel
            if trained != config.dMLP { contradictions.append("n_inner is \(config.dMLP) but the model was trained with dMLP \(trained)") }
        }
        if !contradictions.isEmpty {
            throw RuleLensError("\(configPath) contradicts \(path): \(contradictions.joined(separator: "; "))",
                                fix: "restore those fields in config.json to the trained values (config.json was edited after training)")
        }
    }
}
