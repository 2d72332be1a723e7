import Foundation
import RuleLensAnalysis
import RuleLensModel
import RuleLensNumerics
import RuleLensTasks

/// Generation from chosen latents: `vae decode`, `vae interpolate`, `vae traverse`.
public enum VAEGenerateJob {
    /// One generated text with the latent it came from.
    public struct Line: Codable, Sendable {
        public var label: String
        public var z: [Float]
        public var text: String
        public init(label: String, z: [Float], text: String) { self.label = label; self.z = z; self.text = text }
    }

    /// Greedy texts from latents [n·k]; `prompt` is the decoder's prompt with decode `target` (ignored otherwise).
    public static func decode(_ vae: VAE, latents: [Float], count n: Int, prompt: String?) throws -> [String] {
        let c = vae.config, tokenizer = CharTokenizer.standard
        var start: [Int32] = [CharTokenizer.bos]
        if c.decode == .target {
            guard let prompt else {
                throw RuleLensError("this VAE decodes the target given the prompt (--decode target)", fix: "pass --prompt TEXT (the premises)")
            }
            start += try tokenizer.encode(prompt, context: "--prompt")
        }
        var out: [String] = []
        var i = 0
        while i < n {
            let m = min(64, n - i)
            let generated = vae.greedy(z: Array(latents[(i * c.latentSize)..<((i + m) * c.latentSize)]), prompts: Array(repeating: start, count: m),
                                       maxNewTokens: c.nPositions - start.count)
            out += generated.map { tokenizer.decode($0) }
            i += m
        }
        return out
    }

    /// μ of the examples in `path` [N·k] (z = μ, batches of 64), with the examples.
    public static func encodeMeans(_ vae: VAE, path: String) throws -> (mu: [Float], items: VAEItems) {
        let items = try VAEItems(path: path, nCtx: vae.config.nPositions)
        vae.retainsActivationsForBackward = false
        var mu: [Float] = []
        var s = 0
        while s < items.count {
            let e = min(items.count, s + 64)
            let b = items.batch(Array(s..<e), decode: vae.config.decode)
            vae.encode(encTokens: b.encTokens, encLengths: b.encLengths, batch: b.batch, seqLen: b.encLen)
            mu += vae.lastMu
            s = e
        }
        return (mu, items)
    }

    /// Latents read from an activation store site ([N, k], e.g. `latent.hook_mu` of `vae encode`), rows `rows` (all if nil).
    public static func latents(fromStore path: String, site: String, rows: [Int]?, k: Int) throws -> (values: [Float], count: Int) {
        let file = try ActivationFile(path)
        let m = try file.matrix(site)
        guard m.cols == k else {
            throw RuleLensError("\(site) in \(path) has \(m.cols) columns, but this VAE's latent has k = \(k)", fix: "pass latents written by this VAE's `vae encode`")
        }
        let picks = rows ?? Array(0..<m.rows)
        var out: [Float] = []
        for r in picks {
            guard r >= 0 && r < m.rows else { throw RuleLensError("row \(r) is outside \(path) (\(m.rows) rows)", fix: "pass --rows below \(m.rows)") }
            for j in 0..<k { out.append(m[r, j]) }
        }
        return (out, picks.count)
    }
}
