import Foundation
import RuleLensJobs

/// One training step of the GPT core (forward + loss + backward + AdamW) on random tokens:
/// `rulelens-bench model-step LAYERS D_MODEL CTX BATCH [STEPS] [THREADS] [HEADS]` (heads default 4). Also times the forward alone.
enum ModelStepBench {
    static func run(_ args: [String]) throws {
        let v = args.compactMap(Int.init)
        guard v.count >= 4 else {
            throw RuleLensError("model-step needs LAYERS D_MODEL CTX BATCH", fix: "e.g. rulelens-bench model-step 4 128 32 64 20 2")
        }
        let (layers, d, ctx, batch) = (v[0], v[1], v[2], v[3])
        let steps = v.count > 4 ? v[4] : 20, threads = v.count > 5 ? v[5] : 2, heads = v.count > 6 ? v[6] : 4
        Parallel.configure(threads: threads)
        let config = GPTConfig(nLayer: layers, nHead: heads, dModel: d, nCtx: ctx, vocabSize: 99)
        let model = try GPT(config: config, seed: 1)
        var rng = SeededRNG(seed: 2)
        let tokens = (0..<(batch * ctx)).map { _ in Int32(rng.int(below: 99)) }
        let targets = (0..<(batch * ctx)).map { _ in Int32(rng.int(below: 99)) }
        let mask = [Float](repeating: 1, count: batch * ctx)
        var optimizer = AdamW()
        func step() {
            model.zeroGrads()
            _ = model.forward(tokens: tokens, batch: batch, seqLen: ctx)
            _ = model.loss(targets: targets, lossMask: mask)
            model.backward()
            _ = clipGradNorm(model.grads, maxNorm: 1)
            optimizer.step(model, lr: 1e-4)
        }
        step()
        let t0 = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<steps { step() }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9 / Double(steps)
        let forwardSeconds = bestTime(repeats: 5) { _ = model.forward(tokens: tokens, batch: batch, seqLen: ctx) }
        // FLOPs: 6·tokens·(matmul parameters) + attention (q·kᵀ and p·v: 4·B·T²·d per layer forward, ×3 with backward).
        let n = Double(batch * ctx)
        let matmulParams = Double(layers * 12 * d * d + 99 * d)
        let flops = 6 * n * matmulParams + 12 * Double(layers * batch * ctx * ctx * d)
        emit(["bench": "model-step", "layers": layers, "d_model": d, "heads": config.nHead, "ctx": ctx, "batch": batch, "threads": threads,
              "ms_per_step": seconds * 1e3, "tokens_per_s": n / seconds, "forward_ms": forwardSeconds * 1e3,
              "gflops": flops / seconds / 1e9, "core": BLAS.coreName])
    }
}
