import Foundation
import RuleLensModel
import RuleLensNumerics
import RuleLensStore
import RuleLensTasks

/// `rulelens vae encode`: the latent of every example into an activation store that every `probe` reads.
///
/// `/acts/latent.hook_mu`, `latent.hook_logvar`, `latent.hook_z` [N, k] and `encoder.hook_pooled` [N, d]; with `hooks`,
/// encoder sites too (`encoder.blocks.{l}.hook_attn_out`, `…hook_mlp_out`, …), each averaged over the example's real
/// positions into [N, width] (the same pooling the latent sees; attention scores/patterns are refused). `/meta` as
/// `rulelens dump` (id, tokens, length, prompt, target, rule, rule_id, …; `prediction`/`correct` from the decoder,
/// teacher-forced from z). z = μ unless `sample` (then ε from `seed`, stream per batch).
public struct VAEEncodeOptions {
    public var checkpoint: String
    public var data: String
    public var out: String
    public var hooks: [String] = []
    public var batch = 64
    public var sample = false
    public var seed: UInt64 = 0
    public var force = false
    public var progress = true
    public init(checkpoint: String, data: String, out: String) { self.checkpoint = checkpoint; self.data = data; self.out = out }
}

public enum VAEEncodeJob {
    /// The encoder sites `encode --hooks` may store (everything with a position axis except attention rows).
    static func encodableSites(_ vae: VAE) -> [String] {
        vae.encoder.hookSites.filter { !$0.hasSuffix("hook_attn_scores") && !$0.hasSuffix("hook_pattern") }
    }

    @discardableResult
    public static func run(_ o: VAEEncodeOptions) throws -> (examples: Int, sites: [String]) {
        guard o.batch > 0 else { throw RuleLensError("--batch must be positive (got \(o.batch))", fix: "pass e.g. --batch 64") }
        if FileManager.default.fileExists(atPath: o.out) && !o.force {
            throw RuleLensError("\(o.out) already exists", fix: "pass --force to overwrite it, or choose another --out")
        }
        let vae = try VAECheckpoint.load(o.checkpoint)
        vae.retainsActivationsForBackward = false
        let c = vae.config, k = c.latentSize, d = c.nEmbd
        let encoderSites = o.hooks.isEmpty ? [] : try HookSites.resolve(o.hooks, sites: encodableSites(vae), modelDescription: "this VAE's encoder (for encode)")
        let sites = VAE.latentSites.filter { $0 != "encoder.hook_pooled" } + ["encoder.hook_pooled"] + encoderSites
        func width(_ site: String) -> Int {
            if site.hasPrefix("latent.") { return k }
            let shape = vae.encoder.hookShape(site, batch: 1, seqLen: 1)
            return shape.dropFirst(2).reduce(1, *)     // [1, pos, …] → features
        }
        let examples = try Jobs.loadExamples(path: o.data)
        guard !examples.isEmpty else { throw RuleLensError("\(o.data) holds no examples", fix: "pass a non-empty JSONL file") }
        let tokenizer: any TextTokenizer = CharTokenizer.standard
        let plan = try DumpPlan(examples: examples, tokenizer: tokenizer, contextLength: c.nPositions, positions: "all", source: o.data)
        let items = try VAEItems(path: o.data, nCtx: c.nPositions)
        let configJSON = String(decoding: try JSONEncoder().encode(c), as: UTF8.self)
        let header = ActivationStoreHeader(modelConfigJSON: configJSON, hooks: sites, sourceCheckpoint: o.checkpoint, sourceData: o.data,
                                           seed: Int(o.seed), positions: "all", maxLength: plan.maxLength, nExamples: plan.count,
                                           extra: ["data_fingerprint": plan.fingerprint, "latent": o.sample ? "z sampled (seeded ε)" : "z = mu",
                                                   "encoder_sites": "mean over each example's real positions",
                                                   "prediction": "decoder, teacher-forced from z, argmax after the prompt"])
        let specs = sites.map { ActivationSiteSpec(name: $0, rowShape: [width($0)], rowDims: [$0.hasPrefix("latent.") ? "d_latent" : "feature"]) }
        // Built under a temporary name and published complete (an existing file is replaced only then).
        try AtomicFile.produce(o.out) { temp in
        let writer = try ActivationStoreWriter.create(path: temp, header: header, sites: specs, meta: plan.metaColumns, batch: o.batch,
                                                      gzip: 1, overwrite: false)
        do {
            let staging = Dictionary(uniqueKeysWithValues: sites.map { ($0, FloatBuffer(count: o.batch * width($0))) })
            var lengths: [Int32] = []
            let hooks = HookSet()
            hooks.observe(sites) { name, values, shape in
                guard let rows = staging[name] else { return }
                let w = width(name), B = shape[0]
                if shape.count == 2 { rows.ptr.update(from: values, count: B * w); return }
                let T = shape[1]
                for b in 0..<B {
                    let out = rows.ptr + b * w, n = Int(lengths[b])
                    out.update(repeating: 0, count: w)
                    for t in 0..<n { let row = values + (b * T + t) * w; for i in 0..<w { out[i] += row[i] } }
                    for i in 0..<w { out[i] /= Float(n) }
                }
            }
            let line = ProgressLine(enabled: o.progress)
            let began = ProgressLine.now()
            var start = 0
            while start < plan.count {
                let end = min(plan.count, start + o.batch)
                let batch = items.batch(Array(start..<end), decode: c.decode)
                lengths = batch.encLengths
                let eps = o.sample ? VAE.epsilon(seed: o.seed, step: start, count: batch.batch * k) : nil
                let logits = vae.forward(batch, epsilon: eps, hooks: hooks)
                var verdicts: [(prediction: String, correct: Bool)] = []
                for b in 0..<batch.batch {
                    let rowLogits = UnsafePointer<Float>(logits + b * batch.decLen * c.vocabSize)
                    verdicts.append(plan.predict(example: start + b, logits: rowLogits, vocabSize: c.vocabSize, tokenizer: tokenizer))
                }
                try writer.appendActs(sites.map { ($0, UnsafePointer(staging[$0]!.ptr)) }, count: batch.batch)
                try plan.appendMeta(to: writer, range: start..<end, verdicts: verdicts)
                try writer.endBatch(count: batch.batch, flush: end == plan.count)
                start = end
                let rate = Double(start) / max(1e-9, ProgressLine.now() - began)
                line.update("encode \(start)/\(plan.count) examples | \(ProgressLine.rate(rate)) ex/s", final: start == plan.count)
            }
            try writer.finish()
            _ = d
        } catch {
            writer.abandon()
            throw error
        }
        }
        return (plan.count, sites)
    }
}
