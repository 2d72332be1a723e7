import Foundation
import RuleLensJobs
import RuleLensModel
import RuleLensNumerics

/// Training-step throughput of the RuleLens GPT: `rulelens-bench train --layers 4 --d-model 128 --heads 4
/// --ctx 32 --batch 64 --steps 30 --threads 2`. Random tokens, loss on every position, AdamW + clipping —
/// the same work `Benchmarks/reference_gpt2.py` does in PyTorch.
enum TrainBench {
    static func run(_ args: [String]) throws {
        var o: [String: Int] = ["layers": 4, "d-model": 128, "heads": 4, "ctx": 32, "batch": 64, "steps": 20,
                                "warmup-steps": 3, "threads": 2, "vocab": 99, "seed": 0]
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
        let config = GPTConfig(nLayer: o["layers"]!, nHead: o["heads"]!, dModel: o["d-model"]!, nCtx: o["ctx"]!, vocabSize: o["vocab"]!)
        let model = try GPT(config: config, seed: UInt64(o["seed"]!))
        var adam = AdamW(weightDecay: 0.01)
        let batch = o["batch"]!, ctx = o["ctx"]!
        var rng = SeededRNG(seed: UInt64(o["seed"]!), stream: "bench-tokens")
        let total = o["steps"]! + o["warmup-steps"]!
        // data: [steps, batch, ctx + 1] random tokens; inputs are [:, :-1], targets [:, 1:].
        let data: [[Int32]] = (0..<total).map { _ in (0..<(batch * (ctx + 1))).map { _ in Int32(rng.int(below: config.vocabSize)) } }
        let mask = [Float](repeating: 1, count: batch * ctx)
        func step(_ s: Int) -> Float {
            var inputs = [Int32](), targets = [Int32]()
            inputs.reserveCapacity(batch * ctx); targets.reserveCapacity(batch * ctx)
            for b in 0..<batch {
                let row = data[s][(b * (ctx + 1))..<((b + 1) * (ctx + 1))]
                inputs += row.dropLast(); targets += row.dropFirst()
            }
            model.zeroGrads()
            _ = model.forward(tokens: inputs, batch: batch, seqLen: ctx)
            let loss = model.loss(targets: targets, lossMask: mask)
            model.backward()
            _ = clipGradNorm(model.grads, maxNorm: 1.0)
            adam.step(model, lr: 1e-3)
            return loss
        }
        for s in 0..<o["warmup-steps"]! { _ = step(s) }
        let t0 = DispatchTime.now().uptimeNanoseconds
        var loss: Float = 0
        for s in o["warmup-steps"]!..<total { loss = step(s) }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        emit(["bench": "train", "tokens_per_s": Double(o["steps"]! * batch * ctx) / seconds, "seconds": seconds,
              "steps": o["steps"]!, "loss": Double(loss), "threads": Parallel.threads, "params": model.params.storage.count])
    }
}
