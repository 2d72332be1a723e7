import Foundation
import RuleLensModel
import RuleLensNumerics
import RuleLensTasks

/// `rulelens vae logits`: one forward pass over a whole (small) data file with a seeded ε, every intermediate written to
/// a safetensors file, so another implementation (the PyTorch module `Tests/Python/rulelens_vae.py`) can be checked
/// against it: `enc_tokens` [N, Te] and `enc_lengths` [N] (int32), `prompt_lengths` [N], `labels` [N] (supervised),
/// `eps`, `mu`, `logvar`, `z` [N, k], `logits` [N, Td, V], and per example `rec`, `kl`, `kl_fb`, `cls_loss`, `elbo`;
/// the metadata holds `beta` and `loss` (the training objective's batch mean at that β).
public enum VAELogitsJob {
    public static func run(checkpoint: String, data: String, epsSeed: UInt64?, beta: Float?, out: String) throws -> Double {
        let vae = try VAECheckpoint.load(checkpoint)
        let c = vae.config
        if FileManager.default.fileExists(atPath: out) {
            throw RuleLensError("\(out) already exists", fix: "choose another --out or delete it first")
        }
        let items = try VAEItems(path: data, nCtx: c.nPositions, labelColumn: c.supervise, classNames: c.supervised ? c.classNames : nil)
        let batch = items.batch(Array(0..<items.count), decode: c.decode)
        let N = batch.batch, k = c.latentSize
        let eps = epsSeed.map { VAE.epsilon(seed: $0, step: 0, count: N * k) }
        vae.retainsActivationsForBackward = false
        let logits = vae.forward(batch, epsilon: eps)
        let b = beta ?? c.beta
        let terms = vae.loss(batch, beta: b)
        let perExample = vae.perExampleTerms(batch, logits: logits)
        var entries: [Safetensors.Entry] = []
        var keep: [Any] = []
        func floats(_ name: String, _ values: [Float], _ shape: [Int]) {
            let buffer = FloatBuffer(values); keep.append(buffer)
            entries.append(Safetensors.Entry(name: name, shape: shape, floats: buffer.ptr))
        }
        func ints(_ name: String, _ values: [Int32], _ shape: [Int]) {
            let pointer = UnsafeMutablePointer<Int32>.allocate(capacity: max(1, values.count))
            pointer.initialize(from: values, count: values.count)
            keep.append(IntBox(pointer))
            entries.append(Safetensors.Entry(name: name, shape: shape, int32s: pointer))
        }
        ints("enc_tokens", batch.encTokens, [N, batch.encLen])
        ints("enc_lengths", batch.encLengths, [N])
        ints("prompt_lengths", items.promptLengths.map(Int32.init), [N])
        if let labels = batch.labels { ints("labels", labels, [N]) }
        floats("eps", eps ?? [Float](repeating: 0, count: N * k), [N, k])
        floats("mu", vae.lastMu, [N, k]); floats("logvar", vae.lastLogvar, [N, k]); floats("z", vae.lastZ, [N, k])
        floats("logits", Array(UnsafeBufferPointer(start: logits, count: N * batch.decLen * c.vocabSize)), [N, batch.decLen, c.vocabSize])
        floats("rec", perExample.map { Float($0.reconstruction) }, [N])
        floats("kl", perExample.map { Float($0.kl) }, [N])
        floats("kl_fb", perExample.map { Float($0.klFreeBits) }, [N])
        floats("elbo", perExample.map { Float($0.elbo) }, [N])
        if c.supervised { floats("cls_loss", perExample.map { Float($0.classifierLoss ?? .nan) }, [N]) }
        try Safetensors.write(entries, metadata: ["beta": "\(b)", "loss": "\(terms.total)", "sampled": eps == nil ? "false" : "true"], to: out)
        withExtendedLifetime(keep) {}
        return terms.total
    }
}

/// Owns an Int32 allocation until the file is written.
private final class IntBox {
    let pointer: UnsafeMutablePointer<Int32>
    init(_ pointer: UnsafeMutablePointer<Int32>) { self.pointer = pointer }
    deinit { pointer.deallocate() }
}
