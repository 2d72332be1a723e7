import Foundation
import RuleLensNumerics

/// The injection modes a VAE decoder takes (`--inject`, a comma list combines them): `Injection.memory`, `.query`,
/// `.embedding` (the shared wiring also knows `.key` and `.value`, which the VAE does not offer).
public enum InjectMode {
    public static let allowed: [Injection] = [.memory, .query, .embedding]

    /// Parses "memory,query" in that order, without repeats; errors name the unknown mode.
    public static func parseList(_ text: String) throws -> [Injection] {
        var out: [Injection] = []
        for part in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !part.isEmpty {
            guard let mode = Injection(rawValue: part), allowed.contains(mode) else {
                throw RuleLensError("unknown injection mode \"\(part)\" in --inject \(text)",
                                    fix: "use memory, query or embedding, or a comma list of them (e.g. --inject memory,query)")
            }
            if !out.contains(mode) { out.append(mode) }
        }
        guard !out.isEmpty else {
            throw RuleLensError("--inject is empty", fix: "use memory, query or embedding, or a comma list of them")
        }
        return out
    }
}

/// What the decoder reconstructs (`--decode`).
public enum DecodeMode: String, Codable, Sendable, CaseIterable {
    /// Autoencoding: the loss counts every position of [bos] + prompt + target + [eos] (the default).
    case all
    /// Conditional: the decoder reads the prompt and the loss counts only the target and eos (premises → conclusion).
    case target
}

/// How the encoder's outputs become one vector per example (`--pool`).
public enum PoolMode: String, Codable, Sendable, CaseIterable {
    /// Mean of the final-LayerNorm outputs over the example's real positions.
    case mean
    /// The output at position 0, the leading <bos>, which serves as the [cls] token.
    case cls
}

/// Shape and options of a RuleLens language VAE; written as `config.json` (`model_type: "rulelens-vae"`) with
/// snake_case keys the PyTorch reference (`Tests/Python/rulelens_vae.py`) reads.
public struct VAEConfig: Codable, Equatable, Sendable {
    public var modelType = "rulelens-vae"
    public var vocabSize: Int
    public var nPositions: Int
    public var nEmbd: Int
    public var nHead: Int
    /// Decoder blocks.
    public var nLayer: Int
    public var nInner: Int
    /// Encoder blocks (same width, heads and MLP width as the decoder's).
    public var nEncLayer: Int
    /// k, the size of μ, log σ² and z.
    public var latentSize: Int
    public var layerNormEpsilon: Float = 1e-5
    public var pooling: PoolMode = .mean
    public var inject: [Injection] = [.memory]
    public var decode: DecodeMode = .all
    /// λ of per-dimension free bits (nats).
    public var freeBits: Float = 0.5
    public var beta: Float = 1.0
    public var betaCycles: Int = 1
    public var ratioZero: Float = 0.5
    public var ratioIncrease: Float = 0.25
    /// The JSONL column the classifier on z predicts (nil: no supervision).
    public var supervise: String?
    /// γ, the classifier loss weight.
    public var superviseWeight: Float = 1.0
    public var nClasses: Int = 0
    /// Label names by class id.
    public var classNames: [String] = []
    public var bosTokenId: Int = 1
    public var eosTokenId: Int = 2
    public var padTokenId: Int = 0

    enum CodingKeys: String, CodingKey {
        case modelType = "model_type", vocabSize = "vocab_size", nPositions = "n_positions", nEmbd = "n_embd", nHead = "n_head"
        case nLayer = "n_layer", nInner = "n_inner", nEncLayer = "n_enc_layer", latentSize = "latent_size"
        case layerNormEpsilon = "layer_norm_epsilon", pooling, inject, decode, freeBits = "free_bits", beta
        case betaCycles = "beta_cycles", ratioZero = "ratio_zero", ratioIncrease = "ratio_increase", supervise
        case superviseWeight = "supervise_weight", nClasses = "n_classes", classNames = "class_names"
        case bosTokenId = "bos_token_id", eosTokenId = "eos_token_id", padTokenId = "pad_token_id"
    }

    public init(nLayer: Int, nEncLayer: Int, nHead: Int, dModel: Int, dMLP: Int? = nil, nCtx: Int, vocabSize: Int, latentSize: Int) {
        self.nLayer = nLayer; self.nEncLayer = nEncLayer; self.nHead = nHead; self.nEmbd = dModel
        self.nInner = dMLP ?? 4 * dModel; self.nPositions = nCtx; self.vocabSize = vocabSize; self.latentSize = latentSize
    }

    /// The decoder's (and, with nEncLayer blocks, the encoder's) GPT-2 shape.
    public var decoderConfig: GPTConfig {
        GPTConfig(nLayer: nLayer, nHead: nHead, dModel: nEmbd, dMLP: nInner, nCtx: nPositions, vocabSize: vocabSize, layerNormEps: layerNormEpsilon)
    }
    public var encoderConfig: GPTConfig {
        GPTConfig(nLayer: nEncLayer, nHead: nHead, dModel: nEmbd, dMLP: nInner, nCtx: nPositions, vocabSize: vocabSize, layerNormEps: layerNormEpsilon)
    }
    public var supervised: Bool { supervise != nil }

    /// The β schedule of a run of `totalSteps` steps.
    public func betaSchedule(totalSteps: Int) -> BetaSchedule {
        BetaSchedule(beta: beta, cycles: betaCycles, ratioZero: ratioZero, ratioIncrease: ratioIncrease, totalSteps: totalSteps)
    }

    /// Checks every option; errors name the flag and the fix.
    public func validate() throws {
        guard modelType == "rulelens-vae" else {
            throw RuleLensError("model_type is \"\(modelType)\", not \"rulelens-vae\"", fix: "pass a checkpoint written by `rulelens vae train`")
        }
        try decoderConfig.validate()
        guard nEncLayer > 0 else { throw RuleLensError("--enc-layers is \(nEncLayer), but it must be positive", fix: "pass --enc-layers 1 or more") }
        guard latentSize > 0 else {
            throw RuleLensError("--latent (k) is \(latentSize), but the latent needs at least one dimension", fix: "pass --latent 32 (Optimus's size) or another positive k")
        }
        guard freeBits >= 0, freeBits.isFinite else {
            throw RuleLensError("--free-bits is \(freeBits), but free bits are a non-negative KL threshold per dimension", fix: "pass --free-bits 0 (off) or a positive λ such as 0.5")
        }
        guard !inject.isEmpty, inject.allSatisfy(InjectMode.allowed.contains) else {
            throw RuleLensError("injection modes \(inject.map(\.rawValue)) are not all of memory, query, embedding",
                                fix: "pass --inject memory, query, embedding or a comma list of them")
        }
        try betaSchedule(totalSteps: 1).validate()
        guard superviseWeight >= 0, superviseWeight.isFinite else {
            throw RuleLensError("--supervise-weight is \(superviseWeight), but it must be ≥ 0", fix: "pass a non-negative γ such as 1")
        }
        if supervised {
            guard nClasses >= 2, classNames.count == nClasses else {
                throw RuleLensError("the supervised column \"\(supervise!)\" has \(nClasses) class(es)", fix: "supervise a column with at least two different values")
            }
        }
    }

    /// Reads and validates `config.json`. A GPT-2 checkpoint's config is refused with a pointer to the right command.
    public static func load(_ url: URL) throws -> VAEConfig {
        guard let data = try? Data(contentsOf: url) else {
            throw RuleLensError("cannot read \(url.path)", fix: "pass a folder written by `rulelens vae train`")
        }
        let raw = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
        guard let raw else { throw RuleLensError("\(url.path) is not a JSON object", fix: "pass a folder written by `rulelens vae train`") }
        let type = raw["model_type"] as? String ?? "?"
        guard type == "rulelens-vae" else {
            throw RuleLensError("\(url.deletingLastPathComponent().path) holds a \(type) checkpoint, not a RuleLens VAE (model_type \"rulelens-vae\")",
                                fix: type == "gpt2" ? "use `rulelens train/eval` for GPT-2 checkpoints, or train a VAE with `rulelens vae train`"
                                                    : "pass a folder written by `rulelens vae train`")
        }
        let config: VAEConfig
        do { config = try JSONDecoder().decode(VAEConfig.self, from: data) } catch {
            throw RuleLensError("\(url.path) is not a valid RuleLens VAE config (\(error))", fix: "pass a folder written by `rulelens vae train`")
        }
        try config.validate()
        return config
    }

    /// Whether a checkpoint folder holds a VAE (config.json model_type "rulelens-vae").
    public static func isVAE(_ dir: URL) -> Bool {
        guard let data = try? Data(contentsOf: dir.appendingPathComponent("config.json")),
              let raw = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { return false }
        return raw["model_type"] as? String == "rulelens-vae"
    }
}
