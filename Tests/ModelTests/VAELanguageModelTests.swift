import XCTest
import RuleLensNumerics
@testable import RuleLensModel

/// The VAE's `LanguageModel` view: its forward equals the VAE's own pass (encoder on the whole row, z = μ), rows given
/// without their <eos> encode as if it were there, the loss's gradient matches finite differences in every stack, and
/// the concatenated parameter/gradient views line up with the three stores.
final class VAELanguageModelTests: XCTestCase {
    override func setUp() { Parallel.configure(threads: 2) }

    /// Right-padded full rows [bos] + … + [eos] of the tiny vocabulary (pad 0).
    let rows: [[Int32]] = [[1, 3, 4, 5, 6, 2], [1, 4, 6, 2]]

    func padded(_ rows: [[Int32]]) -> (tokens: [Int32], T: Int) {
        let T = rows.map(\.count).max()!
        var out = [Int32](repeating: 0, count: rows.count * T)
        for (b, r) in rows.enumerated() { for (t, x) in r.enumerated() { out[b * T + t] = x } }
        return (out, T)
    }

    func testForwardEqualsTheVAEsOwnPass() throws {
        let vae = try tinyVAE(inject: [.memory, .query, .embedding])
        let view = VAELanguageModel(vae)
        let (tokens, T) = padded(rows)
        let viewLogits = Array(UnsafeBufferPointer(start: view.forward(tokens: tokens, batch: 2, seqLen: T, hooks: nil), count: 2 * T * 7))
        let viewMu = vae.lastMu
        // The VAE's own pass: decoder reads row[:-1]; the view's decoder reads the whole row (one more position).
        let batch = VAEBatch(rows: rows, promptLengths: [3, 2], decode: .all)
        let own = vae.forward(batch, epsilon: nil)
        XCTAssertEqual(vae.lastMu, viewMu)
        for b in 0..<2 {
            for t in 0..<(rows[b].count - 1) {
                for v in 0..<7 {
                    XCTAssertEqual(viewLogits[(b * T + t) * 7 + v], own[(b * batch.decLen + t) * 7 + v], accuracy: 1e-5)
                }
            }
        }
        // Rows without their <eos> (the interventions' inputs): the encoder still reads the whole example.
        let (short, S) = padded(rows.map { Array($0.dropLast()) })
        _ = view.forward(tokens: short, batch: 2, seqLen: S, hooks: nil)
        for (a, b) in zip(vae.lastMu, viewMu) { XCTAssertEqual(a, b, accuracy: 1e-5) }
        // An edit of an encoder site reaches the decoder's logits through z.
        let hooks = HookSet()
        try hooks.zero(["encoder.blocks.1.hook_mlp_out"])
        let edited = view.forward(tokens: tokens, batch: 2, seqLen: T, hooks: hooks)
        XCTAssertGreaterThan(zip(vae.lastMu, viewMu).map { abs($0 - $1) }.max()!, 1e-3)
        XCTAssertGreaterThan(abs(edited[0] - viewLogits[0]), 1e-4)
    }

    func testHookShapes() throws {
        let view = VAELanguageModel(try tinyVAE(inject: [.memory]))
        XCTAssertEqual(view.hookShape("latent.hook_mu", batch: 3, seqLen: 5), [3, 3])
        XCTAssertEqual(view.hookDims("latent.hook_z"), ["batch", "d_latent"])
        XCTAssertEqual(view.hookShape("encoder.hook_pooled", batch: 3, seqLen: 5), [3, 8])
        XCTAssertEqual(view.hookShape("encoder.blocks.0.attn.hook_pattern", batch: 1, seqLen: 5), [1, 2, 5, 5])
        XCTAssertEqual(view.hookShape("blocks.0.attn.hook_pattern", batch: 1, seqLen: 5), [1, 2, 5, 6])
        XCTAssertEqual(view.hookShape("blocks.0.attn.hook_mem_kv", batch: 2, seqLen: 5), [2, 8])
        XCTAssertTrue(view.hookSites.contains("latent.hook_logvar"))
        XCTAssertEqual(view.hookDims("latent.hook_nothing"), [])
    }

    /// d(masked mean CE)/dθ by central differences for up to 6 elements of every tensor (decoder, encoder, latent heads,
    /// injection maps); the logvar head and the classifier get exactly zero (z = μ, no KL, no classifier term).
    func testLossGradientMatchesFiniteDifferences() throws {
        let vae = try tinyVAE(inject: [.memory, .query, .embedding], classes: 3)
        let view = VAELanguageModel(vae)
        let (tokens, T) = padded(rows)
        var targets = [Int32](repeating: 0, count: 2 * T), mask = [Float](repeating: 0, count: 2 * T)
        for (b, r) in rows.enumerated() { for t in 0..<(r.count - 1) { targets[b * T + t] = r[t + 1]; mask[b * T + t] = 1 } }
        func objective() -> Double {
            _ = view.forward(tokens: tokens, batch: 2, seqLen: T, hooks: nil)
            return Double(view.loss(targets: targets, lossMask: mask))
        }
        view.zeroGrads()
        _ = objective()
        view.backward()
        let grads = view.gradientStorage, params = view.parameterStorage
        XCTAssertEqual(params.count, vae.parameterCount)
        var checked = 0
        for t in view.parameterTensors {
            // The tensor's values in the concatenated copy equal the store's.
            let (store, local) = vae.checkpointStores.first { $0.1.contains { $0.name == t.name } }!
            let original = local.first { $0.name == t.name }!
            XCTAssertEqual(params.ptr[t.offset + t.count - 1], store.ptr[original.offset + t.count - 1])
            let picks = Array(Set((0..<min(6, t.count)).map { $0 * t.count / min(6, t.count) })).sorted()
            for i in picks {
                let p = store.ptr + original.offset + i
                let saved = p.pointee, eps: Float = 2e-3
                p.pointee = saved + eps; let plus = objective()
                p.pointee = saved - eps; let minus = objective()
                p.pointee = saved
                let numeric = (plus - minus) / Double((saved + eps) - (saved - eps))
                let analytic = Double(grads.ptr[t.offset + i])
                if t.name.hasPrefix("latent.logvar") || t.name.hasPrefix("latent.classifier") {
                    XCTAssertEqual(analytic, 0, "\(t.name)[\(i)]")
                } else if abs(numeric - analytic) > 2e-3 + 3e-2 * abs(numeric) {
                    XCTFail("\(t.name)[\(i)]: analytic \(analytic) vs numeric \(numeric)")
                    return
                }
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 100)
    }
}
