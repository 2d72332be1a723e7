import Foundation
import RuleLensNumerics
import RuleLensTasks

/// Which positions the training loss counts.
public enum LossOn: String, Codable, Sendable, CaseIterable {
    /// Positions that predict a target character or the final eos (the default).
    case target
    /// Every real (non-padding) position, prompt included.
    case all
}

/// What a command does with each `[bos] + prompt + target + [eos]` sequence, which fixes how many positions of the
/// model's context it needs.
public enum ContextUse: Sendable, Equatable {
    /// Training: the model reads all but the last token, but the whole sequence must fit, so that `rulelens dump`
    /// (which runs the whole sequence) works on the model's own training data.
    case training
    /// Evaluation and logits: the model reads all but the last token.
    case evaluation
    /// `rulelens dump`: the whole sequence, `<eos>` included.
    case dump

    /// Whether the whole sequence is run (or must fit).
    var runsAll: Bool { self != .evaluation }

    /// Positions needed by a sequence of `n` tokens.
    public func positions(sequenceLength n: Int) -> Int { runsAll ? n : n - 1 }
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
    /// Tokenizes `examples` as `[bos] + prompt + target + [eos]`; throws when an example holds a character outside
    /// the vocabulary, or (with `nCtx`) when an example does not fit the context as `use` needs it. The length
    /// error names the first example that does not fit, the longest example, how many are too long, and the
    /// context that fits them all — in the words of the command (`use`).
    public static func tokenize(_ examples: [Example], tokenizer: any TextTokenizer = CharTokenizer.standard, nCtx: Int?,
                                source: String, use: ContextUse = .evaluation) throws -> [TokenizedExample] {
        var out: [TokenizedExample] = []
        out.reserveCapacity(examples.count)
        for (index, e) in examples.enumerated() {
            let label = exampleLabel(index, e, source: source)
            let prompt = try tokenizer.encode(e.prompt, context: "the prompt of \(label)")
            let target = try tokenizer.encode(e.target, context: "the target of \(label)")
            let tokens = [tokenizer.bos] + prompt + target + [tokenizer.eos]
            out.append(TokenizedExample(tokens: tokens, promptLength: 1 + prompt.count))
        }
        if let nCtx { try checkContext(out.map { $0.tokens.count }, examples: examples, nCtx: nCtx, source: source, use: use) }
        return out
    }

    /// "example 3 (id 7) of FILE".
    static func exampleLabel(_ index: Int, _ e: Example, source: String) -> String {
        "example \(index + 1)\(e.id.map { " (id \($0))" } ?? "") of \(source)"
    }

    /// Throws unless every sequence (lengths of `[bos] + prompt + target + [eos]`) fits `nCtx` as `use` needs it.
    public static func checkContext(_ sequenceLengths: [Int], examples: [Example], nCtx: Int, source: String, use: ContextUse) throws {
        let needed = sequenceLengths.map { use.positions(sequenceLength: $0) }
        guard let first = needed.firstIndex(where: { $0 > nCtx }) else { return }
        let longest = needed.indices.max { needed[$0] < needed[$1] }!
        let trainCtx = sequenceLengths.max() ?? 1   // what `rulelens train --ctx` must be to fit them all
        let tooLong = needed.filter { $0 > nCtx }.count
        let n = sequenceLengths[first]
        // Character tokens: count the characters; multi-character (BPE) tokens: the token total only.
        let charCount = examples[first].prompt.count + examples[first].target.count + 2 == n
        let parts = charCount ? "\(examples[first].prompt.count) prompt + \(examples[first].target.count) target characters" : "prompt + target"
        let what = "\(exampleLabel(first, examples[first], source: source)) needs \(needed[first]) positions "
            + "([bos] + \(parts) + [eos] = \(n) tokens\(use.runsAll ? "" : ", of which the model reads all but the last"))"
        let summary = "\(tooLong) of \(needed.count) example\(needed.count == 1 ? "" : "s") \(tooLong == 1 ? "is" : "are") too long; the longest is "
            + "\(exampleLabel(longest, examples[longest], source: source)) with \(needed[longest]) positions"
        switch use {
        case .training:
            throw RuleLensError("\(what), more than --ctx \(nCtx) (training reserves room for the whole sequence, as `rulelens dump` runs it); \(summary)",
                                fix: "pass --ctx \(needed[longest]) (fits every example), or drop the \(tooLong) example\(tooLong == 1 ? "" : "s") longer than \(nCtx) positions")
        case .evaluation, .dump:
            let command = use == .dump ? "dump" : "evaluate"
            throw RuleLensError("\(what), more than the model's context of \(nCtx) positions (n_positions in its config.json); \(summary)",
                                fix: "\(command) only examples of at most \(nCtx) positions (drop the \(tooLong) longer one\(tooLong == 1 ? "" : "s") from the data), or train a model that fits them with `rulelens train … --ctx \(trainCtx)`")
        }
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
