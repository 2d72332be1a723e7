import Foundation
import RuleLensJobs
import RuleLensModel
import RuleLensNumerics

/// Training-step throughput of the language VAE: `rulelens-bench vae --layers 2 --enc-layers 2 --d-model 128 --heads 4
/// --ctx 32 --batch 32 --latent 32 --steps 20 --threads 2`. Random full-length rows (encoder reads ctx + 1 tokens, the
/// decoder ctx), memory injection, loss rec + β·KL with free bits 0.5 and β 1, AdamW + clipping — the same work
/// `Benchmarks/bench_vae.py` does with the PyTorch module `Tests/Python/rulelens_vae.py`. Tokens = decoder positions.
enum VAEBench {
    static func run(_ args: [String]) throws {
        var o: [String: Int] = ["layers": 2, "enc-layers": 2, "d-model": 128, "heads": 4, "ctx": 32, "batch": 32, "latent": 32,
                                "steps": 20, "warmup-steps": 3, "threads": 2, "vocab": 99, "seed": 0]
        var i = 0
        while i + 1 < args.count {
            let key = String(args[i].drop { $0 == "-" })
            guard o[key] != nil, let value = Int(args[i + 1]) else {
                throw RuleLensError("unknown or malformed option \(args[i]) \(args[i + 1])", fix: "options: \(o.keys.sorted().map { "--" + $0 }.joined(separator: " "))")
            }
            o[key] = value
            i += 2
        }
        Parallel.configure(threads: o["threads"]!)
        let ctx = o["ctx"]!, batch = o["batch"]!, k = o["latent"]!
        let config = VAEConfig(nLayer: o["layers"]!, nEncLayer: o["enc-layers"]!, nHead: o["heads"]!, dModel: o["d-model"]!,
                               nCtx: ctx + 1, vocabSize: o["vocab"]!, latentSize: k)
        let vae = try VAE(config: config, seed: UInt64(o["seed"]!))
        var adams = [AdamW(weightDecay: 0.01), AdamW(weightDecay: 0.01), AdamW(weightDecay: 0.01)]
        var rng = SeededRNG(seed: UInt64(o["seed"]!), stream: "bench-tokens")
        let total = o["steps"]! + o["warmup-steps"]!
        let batches: [VAEBatch] = (0..<total).map { _ in
            let rows = (0..<batch).map { _ in (0...ctx).map { _ in Int32(3 + rng.int(below: config.vocabSize - 3)) } }
            return VAEBatch(rows: rows, promptLengths: [Int](repeating: 1, count: batch), decode: .all)
        }
        var loss = 0.0
        func step(_ s: Int) {
            vae.zeroGrads()
            vae.forward(batches[s], epsilon: VAE.epsilon(seed: 0, step: s, count: batch * k))
            loss = vae.loss(batches[s], beta: 1).total
            vae.backward()
            _ = clipGradNorm(vae.stores.map(\.grads), maxNorm: 1.0)
            for (j, store) in vae.stores.enumerated() { adams[j].step(params: store.params, grads: store.grads, tensors: store.tensors, lr: 1e-3) }
        }
        for s in 0..<o["warmup-steps"]! { step(s) }
        let t0 = DispatchTime.now().uptimeNanoseconds
        for s in o["warmup-steps"]!..<total { step(s) }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        emit(["bench": "vae", "tokens_per_s": Double(o["steps"]! * batch * ctx) / seconds, "seconds": seconds, "steps": o["steps"]!,
              "loss": loss, "threads": Parallel.threads, "params": vae.parameterCount])
    }
}
