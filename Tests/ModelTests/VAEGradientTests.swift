import Foundation
import XCTest
import RuleLensNumerics
@testable import RuleLensModel

/// A tiny VAE with large random parameters (every path carries gradient).
func tinyVAE(inject: [Injection], pooling: PoolMode = .mean, decode: DecodeMode = .all, classes: Int = 0, freeBits: Float = 0,
             seed: UInt64 = 5) throws -> VAE {
    var c = VAEConfig(nLayer: 2, nEncLayer: 2, nHead: 2, dModel: 8, dMLP: 16, nCtx: 8, vocabSize: 7, latentSize: 3)
    c.inject = inject; c.pooling = pooling; c.decode = decode; c.freeBits = freeBits
    if classes > 0 { c.supervise = "rule"; c.nClasses = classes; c.classNames = (0..<classes).map { "r\($0)" }; c.superviseWeight = 0.8 }
    let vae = try VAE(config: c, seed: seed)
    var rng = SeededRNG(seed: seed &+ 100)
    for (store, tensors) in vae.checkpointStores {
        for t in tensors {
            let p = store.ptr + t.offset
            let isLNWeight = t.name.hasSuffix("ln_1.weight") || t.name.hasSuffix("ln_2.weight") || t.name.hasSuffix("ln_f.weight")
            for i in 0..<t.count { p[i] = isLNWeight ? 1 + 0.2 * rng.normal() : (t.shape.count == 2 ? 0.4 : 0.1) * rng.normal() }
        }
    }
    return vae
}

/// Two rows of different lengths (padding inside the batch) for the tiny vocabulary: [bos] + prompt + target + [eos].
func tinyVAEBatch(decode: DecodeMode, labels: [Int32]? = nil) -> VAEBatch {
    VAEBatch(rows: [[1, 3, 4, 5, 6, 2], [1, 4, 6, 2]], promptLengths: [3, 2], decode: decode, labels: labels)
}

/// Finite differences of the whole objective (rec + β·KL_fb + γ·CE) with respect to every parameter tensor (up to 12
/// elements each, spread over the tensor), for each injection mode alone, all combined, both poolings and both decode
/// modes. The large random parameters make the loss strongly curved (step 1e-2 leaves a 10–20% truncation error on some
/// encoder weights), so the step is 2e-3: truncation then ≲ 1%, and the Float rounding of an O(10) loss (≈ 1e-6
/// relative) adds ≲ 5e-3/2e-3·1e-3 ≈ 5e-4; atol 3e-3 + 3% relative sits above both, while a missing or wrong backward
/// term is the size of the gradient itself.
final class VAEGradientTests: XCTestCase {
    override func setUp() { Parallel.configure(threads: 2) }

    func checkWholeLoss(_ vae: VAE, batch: VAEBatch, beta: Float, file: StaticString = #filePath, line: UInt = #line) {
        let k = vae.config.latentSize
        let epsilon = randomFloats(batch.batch * k, seed: 77)
        func objective() -> Double {
            vae.forward(batch, epsilon: epsilon)
            return vae.loss(batch, beta: beta).total
        }
        vae.zeroGrads()
        vae.forward(batch, epsilon: epsilon)
        _ = vae.loss(batch, beta: beta)
        vae.backward()
        let gradStores = [vae.decoder.grads.storage, vae.encoder.grads.storage, vae.latentGrads.storage]
        var checked = 0
        for ((store, tensors), grads) in zip(vae.checkpointStores, gradStores) {
            for t in tensors {
                let picks = Array(Set((0..<min(12, t.count)).map { $0 * t.count / min(12, t.count) })).sorted()
                let eps: Float = 2e-3
                for i in picks {
                    let p = store.ptr + t.offset + i
                    let saved = p.pointee
                    p.pointee = saved + eps; let plus = objective()
                    p.pointee = saved - eps; let minus = objective()
                    p.pointee = saved
                    let numeric = (plus - minus) / Double((saved + eps) - (saved - eps))
                    let analytic = Double(grads.ptr[t.offset + i])
                    if abs(numeric - analytic) > 3e-3 + 3e-2 * abs(numeric) {
                        XCTFail("\(t.name)[\(i)]: analytic \(analytic) vs numeric \(numeric)", file: file, line: line)
                        return
                    }
                    checked += 1
                }
            }
        }
        XCTAssertGreaterThan(checked, 100, file: file, line: line)
    }

    func testEachInjectionModeAlone() throws {
        for mode in InjectMode.allowed {
            checkWholeLoss(try tinyVAE(inject: [mode]), batch: tinyVAEBatch(decode: .all), beta: 0.7)
        }
    }

    func testAllInjectionsClassifierMeanPooling() throws {
        let vae = try tinyVAE(inject: [.memory, .query, .embedding], classes: 3)
        checkWholeLoss(vae, batch: tinyVAEBatch(decode: .all, labels: [2, 0]), beta: 0.7)
    }

    func testClsPoolingDecodeTarget() throws {
        let vae = try tinyVAE(inject: [.memory, .query], pooling: .cls, decode: .target, classes: 2)
        checkWholeLoss(vae, batch: tinyVAEBatch(decode: .target, labels: [1, 0]), beta: 1.3)
    }

    /// Padding must not leak into the encoder: a row's μ is the same alone and in a batch with a longer row.
    func testEncoderIgnoresPadding() throws {
        let vae = try tinyVAE(inject: [.memory])
        let both = tinyVAEBatch(decode: .all)
        vae.forward(both, epsilon: nil)
        let muBoth = vae.lastMu
        vae.forward(VAEBatch(rows: [[1, 4, 6, 2]], promptLengths: [2], decode: .all), epsilon: nil)
        let muAlone = vae.lastMu
        for j in 0..<3 { XCTAssertEqual(muBoth[3 + j], muAlone[j], accuracy: 1e-5) }
    }

    /// The VAE's hook sites: encoder (prefixed), latent, decoder with its injection sites; observed values equal the
    /// read-outs, and an edit of latent.hook_z flows into the decoder exactly as decoding from that z.
    func testHookSites() throws {
        let vae = try tinyVAE(inject: [.memory, .query, .embedding])
        for site in ["encoder.blocks.1.hook_resid_post", "encoder.blocks.0.attn.hook_pattern", "encoder.hook_pooled", "latent.hook_mu",
                     "latent.hook_logvar", "latent.hook_z", "blocks.1.attn.hook_mem_kv", "blocks.0.attn.hook_q_inject", "hook_latent_embed",
                     "unembed.hook_out"] {
            XCTAssertTrue(vae.hookSites.contains(site), site)
        }
        XCTAssertFalse(vae.hookSites.contains("encoder.unembed.hook_out"))
        let batch = tinyVAEBatch(decode: .all)
        let hooks = HookSet()
        let cache = hooks.cache(["latent.hook_mu", "encoder.hook_pooled", "blocks.0.attn.hook_mem_kv", "encoder.blocks.0.attn.hook_pattern"])
        hooks.edit(["latent.hook_z"]) { _, values, shape in for i in 0..<shape.reduce(1, *) { values[i] = 0.25 } }
        let logits = vae.forward(batch, epsilon: nil, hooks: hooks)
        let edited = Array(UnsafeBufferPointer(start: logits, count: batch.batch * batch.decLen * 7))
        XCTAssertEqual(cache["latent.hook_mu"]!.values, vae.lastMu)
        XCTAssertEqual(cache["encoder.hook_pooled"]!.shape, [2, 8])
        XCTAssertEqual(cache["blocks.0.attn.hook_mem_kv"]!.shape, [2, 8])
        // Bidirectional encoder: row 1 (length 4 of 6) puts no attention on its padding keys.
        let (shape, pattern) = cache["encoder.blocks.0.attn.hook_pattern"]!
        XCTAssertEqual(shape, [2, 2, 6, 6])
        for h in 0..<2 { for q in 0..<6 { for key in 4..<6 { XCTAssertEqual(pattern[((1 * 2 + h) * 6 + q) * 6 + key], 0) } } }
        vae.setLatent([Float](repeating: 0.25, count: 6), batch: 2)
        let direct = vae.decode(decInputs: batch.decInputs, seqLen: batch.decLen)
        for i in 0..<edited.count { XCTAssertEqual(edited[i], direct[i]) }
    }
}
