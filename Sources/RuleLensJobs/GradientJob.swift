import Foundation
import RuleLensModel
import RuleLensNumerics

/// `rulelens grad`: the gradient of a checkpoint's mean training loss on a data file, per parameter tensor.
///
/// The loss is the token-weighted mean cross-entropy over the positions `lossOn` selects (target tokens and eos by
/// default) of every example, each run alone as `[bos] + prompt + target + [eos]` (no padding). The result is a
/// safetensors file with one F32 tensor per parameter under its Hugging Face name and layout, so it compares
/// directly with `torch` autograd on the same checkpoint (`model.named_parameters()`), or serves as a saliency map.
public enum GradientJob {
    public static func run(checkpoint: String, data: String, out: String, lossOn: LossOn = .target) throws {
        let model = try Jobs.loadModel(checkpoint)
        let tokenizer = try Jobs.tokenizer(checkpoint: checkpoint, vocabSize: model.vocabSize)
        let items = try Batching.tokenize(try Jobs.loadExamples(path: data), tokenizer: tokenizer, nCtx: model.contextLength, source: data)
        guard !items.isEmpty else { throw RuleLensError("\(data) holds no examples", fix: "pass a file with at least one example") }
        model.retainsActivationsForBackward = true
        model.zeroGrads()
        // Each example's loss is a mean over its counted positions; weighting it by that count makes the sum over
        // examples the token-weighted mean over all of them.
        let batches = items.map { Batching.makeBatch([$0], lossOn: lossOn, pad: tokenizer.pad) }
        let total = batches.reduce(0) { $0 + $1.lossMask.reduce(0, +) }
        guard total > 0 else { throw RuleLensError("no position of \(data) counts toward the loss", fix: "use --loss-on all, or examples with targets") }
        let grads = model.gradientStorage
        let accumulated = FloatBuffer(count: grads.count)
        for batch in batches {
            let weight = batch.lossMask.reduce(0, +) / total
            guard weight > 0 else { continue }
            model.zeroGrads()
            _ = model.forward(tokens: batch.inputs, batch: 1, seqLen: batch.seqLen, hooks: nil)
            _ = model.loss(targets: batch.targets, lossMask: batch.lossMask)
            model.backward()
            for i in 0..<grads.count { accumulated.ptr[i] += weight * grads.ptr[i] }
        }
        let entries = model.parameterTensors.map {
            Safetensors.Entry(name: $0.name, shape: $0.shape, floats: UnsafePointer(accumulated.ptr + $0.offset))
        }
        try Safetensors.write(entries, metadata: ["checkpoint": checkpoint, "data": data, "loss_on": lossOn.rawValue,
                                                 "loss": "token-weighted mean cross-entropy"], to: out)
    }
}
