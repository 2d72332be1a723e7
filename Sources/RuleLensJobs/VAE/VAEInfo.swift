import Foundation
import RuleLensModel

/// `rulelens info` and `rulelens hooks` for a VAE checkpoint.
public enum VAEInfo {
    /// Lines describing the VAE: options, parameters per stack, training step, parameter blocks.
    public static func lines(dir: String) throws -> [String] {
        let c = try VAEConfig.load(URL(fileURLWithPath: dir + "/" + Checkpoint.configFile))
        let vae = try VAE(config: c, seed: 0)
        var out = ["\(dir): RuleLens language VAE (model_type rulelens-vae)",
                   "encoder: \(c.nEncLayer) bidirectional blocks, pooling \(c.pooling.rawValue); decoder: \(c.nLayer) GPT-2 blocks; d_model \(c.nEmbd), \(c.nHead) heads, d_mlp \(c.nInner), context \(c.nPositions), vocab \(c.vocabSize)",
                   "latent k = \(c.latentSize); inject \(c.inject.map(\.rawValue).joined(separator: ",")); decode \(c.decode.rawValue)",
                   "objective: rec + β·KL (free bits λ = \(c.freeBits), β = \(c.beta), \(c.betaCycles) cycle(s), ratio-zero \(c.ratioZero), ratio-increase \(c.ratioIncrease))"
                   + (c.supervised ? " + \(c.superviseWeight)·CE(classifier on z → \(c.supervise!), \(c.nClasses) classes)" : ""),
                   "parameters: encoder \(vae.encoder.params.storage.count), latent \(vae.latent.storage.count), decoder \(vae.decoder.params.storage.count) (total \(vae.parameterCount))"]
        if let data = FileManager.default.contents(atPath: dir + "/" + Checkpoint.infoFile),
           let notes = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any], let step = notes["step"] {
            out.append("trained steps: \(step) of \(notes["steps"] ?? "?") (seed \(notes["seed"] ?? "?"), data \(notes["data"] ?? "?"))")
        }
        out.append("latent tensors: " + vae.latent.tensors.map { "\($0.name) \($0.shape)" }.joined(separator: ", "))
        out.append("gradient-kernel blocks (probe ntk): encoder.blocks.{0..\(c.nEncLayer - 1)}.{attn_qkv,attn_out,ffn_in,ffn_out}, latent.heads, blocks.{0..\(c.nLayer - 1)}.…")
        return out
    }

    /// The same as one JSON object: config.json's fields, parameters per stack, the training notes, latent tensors.
    public static func json(dir: String) throws -> [String: Any] {
        let c = try VAEConfig.load(URL(fileURLWithPath: dir + "/" + Checkpoint.configFile))
        let vae = try VAE(config: c, seed: 0)
        var object: [String: Any] = [
            "checkpoint": dir, "model_type": "rulelens-vae",
            "config": try JSONSerialization.jsonObject(with: JSONEncoder().encode(c)),
            "parameters": ["encoder": vae.encoder.params.storage.count, "latent": vae.latent.storage.count,
                           "decoder": vae.decoder.params.storage.count, "total": vae.parameterCount],
            "latent_tensors": vae.latent.tensors.map { ["name": $0.name, "shape": $0.shape] as [String: Any] },
        ]
        if let data = FileManager.default.contents(atPath: dir + "/" + Checkpoint.infoFile),
           let notes = try? JSONSerialization.jsonObject(with: data) {
            object["training"] = notes
        }
        return object
    }

    /// Every hook site of the VAE with its per-example shape (positions as `pos`; the decoder's key axis as `pos+1`
    /// with memory injection, whose slot is one more key), filtered by `patterns`.
    public static func hooks(dir: String, patterns: [String]) throws -> [(name: String, shape: String, dims: String)] {
        let c = try VAEConfig.load(URL(fileURLWithPath: dir + "/" + Checkpoint.configFile))
        let vae = try VAE(config: c, seed: 0)
        let names = patterns.isEmpty ? vae.hookSites : try HookSites.resolve(patterns, sites: vae.hookSites, modelDescription: "this VAE")
        return names.map { name in
            if name == "encoder.hook_pooled" { return (name, "[\(c.nEmbd)]", "d_model") }
            if name.hasPrefix("latent.") { return (name, "[\(c.latentSize)]", "d_latent") }
            let stack = name.hasPrefix("encoder.") ? vae.encoder : vae.decoder
            let dims = Array(stack.hookDims(name).dropFirst())
            let sizes = Array(stack.hookShape(name, batch: 1, seqLen: c.nPositions).dropFirst())
            let shape = zip(dims, sizes).map { dim, size -> String in
                guard DumpSiteLayout.isPosition(dim) else { return String(size) }
                let extra = size - c.nPositions    // prefix slots (the memory key) beyond the positions
                return extra > 0 ? "pos+\(extra)" : "pos"
            }
            return (name, "[" + shape.joined(separator: ", ") + "]", dims.joined(separator: ","))
        }
    }
}
