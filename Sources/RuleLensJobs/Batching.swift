import Foundation

/// Which positions the training loss counts.
public enum LossOn: String, Codable, Sendable, CaseIterable {
    /// Positions that predict a target character or the final eos (the default).
    case target
    /// Every real (non-padding) position, prompt included.
    case all
}

/// One example as model tokens: `[bos] + prompt + target + [eos]`.
public struct TokenizedExample: Sendable, Equatable {
    /// The full sequence; the model reads `tokens[0..<n-1]` and predicts `tokens[1..<n]`.
    public let tokens: [Int32]
    /// Length of `[bos] + prompt`: the first target token sits at this index.
    public let promptLength: Int
    /// Number of positions the model reads (tokens.count - 1).
    public var inputLength: Int { tokens.count - 1 }
    /// `[bos] + prompt`, what greedy decoding starts from.
    public var prompt: [Int32] { Array(tokens[0..<promptLength]) }
}

/// A right-padded training/eval batch.
public struct Batch {
    public let batch: Int, seqLen: Int
    /// inputs: [batch, seqLen] token ids, padded with `pad`.
    public var inputs: [Int32]
    /// targets: [batch, seqLen] next-token ids (`pad` where masked).
    public var targets: [Int32]
    /// lossMask: [batch, seqLen], 1 where the loss counts.
    public var lossMask: [Float]
    /// Number of real (non-padding) input tokens.
    public var realTokens: Int
}

/// Tokenizing examples and packing them into batches.
public enum Batching {
    /// Tokenizes `examples` as `[bos] + prompt + target + [eos]`; throws naming the first example that does not
    /// fit a context of `nCtx` positions (when given) or holds a character outside the vocabulary.
    public static func tokenize(_ examples: [Example], tokenizer: any TextTokenizer = CharTokenizer.standard, nCtx: Int?,
                                source: String) throws -> [TokenizedExample] {
        var out: [TokenizedExample] = []
        out.reserveCapacity(examples.count)
        for (index, e) in examples.enumerated() {
            let label = "example \(index + 1)\(e.id.map { " (id \($0))" } ?? "") of \(source)"
            let prompt = try tokenizer.encode(e.prompt, context: "the prompt of \(label)")
            let target = try tokenizer.encode(e.target, context: "the target of \(label)")
            let tokens = [tokenizer.bos] + prompt + target + [tokenizer.eos]
            if let nCtx, tokens.count - 1 > nCtx {
                throw RuleLensError("\(label) needs \(tokens.count - 1) positions ([bos] + \(prompt.count) prompt + \(target.count) target tokens), more than the context of \(nCtx)",
                                    fix: "raise --ctx to at least \(tokens.count - 1), or shorten or drop that example")
            }
            out.append(TokenizedExample(tokens: tokens, promptLength: 1 + prompt.count))
        }
        return out
    }

    /// Packs `items` into one batch, right-padded with `pad` to the longest input (or to `seqLen` when given).
    public static func makeBatch(_ items: [TokenizedExample], lossOn: LossOn, seqLen fixed: Int? = nil, pad: Int32 = CharTokenizer.pad) -> Batch {
        let seqLen = fixed ?? items.map(\.inputLength).max() ?? 1
        let b = items.count
        var inputs = [Int32](repeating: pad, count: b * seqLen)
        var targets = [Int32](repeating: pad, count: b * seqLen)
        var mask = [Float](repeating: 0, count: b * seqLen)
        var real = 0
        for (row, item) in items.enumerated() {
            let n = min(item.inputLength, seqLen)
            real += n
            let firstCounted = lossOn == .all ? 0 : item.promptLength - 1
            for t in 0..<n {
                inputs[row * seqLen + t] = item.tokens[t]
                targets[row * seqLen + t] = item.tokens[t + 1]
                if t >= firstCounted { mask[row * seqLen + t] = 1 }
            }
        }
        return Batch(batch: b, seqLen: seqLen, inputs: inputs, targets: targets, lossMask: mask, realTokens: real)
    }

    /// The example indices of training step `step` (0-based): the concatenation of per-epoch permutations, cut into
    /// consecutive runs of `batchSize`. Depends only on (seed, count, batchSize, step), so a resumed run sees exactly
    /// the batches an uninterrupted run would.
    public static func indices(step: Int, batchSize: Int, count: Int, seed: UInt64) -> [Int] {
        var out: [Int] = []
        out.reserveCapacity(batchSize)
        var position = step * batchSize
        var epoch = -1
        var order: [Int] = []
        while out.count < batchSize {
            let e = position / count
            if e != epoch { epoch = e; order = epochOrder(epoch: e, count: count, seed: seed) }
            out.append(order[position % count])
            position += 1
        }
        return out
    }

    /// The shuffled example order of epoch `epoch`.
    public static func epochOrder(epoch: Int, count: Int, seed: UInt64) -> [Int] {
        var rng = SeededRNG(seed: seed, stream: "data-order-epoch-\(epoch)")
        var order = Array(0..<count)
        rng.shuffle(&order)
        return order
    }
}
