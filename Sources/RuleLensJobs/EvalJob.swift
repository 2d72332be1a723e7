import Foundation
import RuleLensModel
import RuleLensNumerics
import RuleLensStudies
import RuleLensTasks

extension Jobs {
    /// Loads the examples of a data file. Every job reads data through here, so new sources (generated tasks,
    /// other formats, splits) are added in one place.
    public static func loadExamples(path: String) throws -> [Example] {
        try JSONL.readExamples(path: path)
    }

    /// The model in a checkpoint folder, whatever its family (`ModelFolder.load`: gpt2, llama, qwen2).
    /// `allowVAE`: a language VAE loads as its `VAELanguageModel` view (dump and the interventions), else it is refused.
    public static func loadModel(_ dir: String, allowVAE: Bool = false) throws -> any LanguageModel { try ModelFolder.load(dir, allowVAE: allowVAE) }

    /// As `loadModel`, and with `rulePriors` a checkpoint trained with a rule prior opens as a `RulePriorGPT` (the
    /// caller selects each example's prior: `RulePriorData.select`).
    public static func loadModel(_ dir: String, rulePriors: Bool) throws -> any LanguageModel { try ModelFolder.load(dir, rulePriors: rulePriors) }

    /// The tokenizer stored in a checkpoint folder (`TokenizerFolder.load`: tokenizer.json, vocab.json + merges.txt,
    /// RuleLens's vocab.json, or the standard character vocabulary), checked against the model's vocabulary size.
    public static func tokenizer(checkpoint: String, vocabSize: Int) throws -> any TextTokenizer {
        let tokenizer = try TokenizerFolder.load(folder: checkpoint)
        guard tokenizer.count <= vocabSize else {
            let file = tokenizer is CharTokenizer ? "vocab.json" : "tokenizer"
            throw RuleLensError("the \(file) in \(checkpoint) has \(tokenizer.count) ids, but the model's vocabulary (vocab_size in config.json) has only \(vocabSize)",
                                fix: "put the tokenizer the model was trained with into \(checkpoint) (tokenizer.json, or vocab.json + merges.txt)")
        }
        return tokenizer
    }

    /// The tokenizer a checkpoint was trained with: its vocab.json, or the standard character vocabulary.
    public static func tokenizer(vocab: [String: Int]?, checkpoint: String) throws -> CharTokenizer {
        guard let vocab else { return .standard }
        do { return try CharTokenizer(vocab: vocab) } catch let error as RuleLensError {
            throw RuleLensError("the vocab.json of \(checkpoint) is not a RuleLens character vocabulary (\(error.problem))",
                                fix: "evaluate checkpoints trained by `rulelens train`; models with BPE vocabularies need their own tokenizer")
        }
    }
}

/// One evaluated example (a line of `rulelens eval --out`).
public struct EvalPrediction: Codable, Sendable {
    public var id: Int?
    public var prompt: String
    public var target: String
    public var prediction: String
    public var correct: Bool
    /// Mean cross-entropy (nats) over the example's target tokens and eos.
    public var loss: Double

    public init(id: Int?, prompt: String, target: String, prediction: String, correct: Bool, loss: Double) {
        self.id = id; self.prompt = prompt; self.target = target; self.prediction = prediction; self.correct = correct; self.loss = loss
    }
}

/// Accuracy and loss of a model on a data set.
public struct EvalResult: Sendable {
    /// Share of examples whose greedy continuation is exactly the target followed by eos.
    public let accuracy: Double
    /// Mean cross-entropy over all target tokens (and eos) of all examples.
    public let loss: Double
    public let n: Int
    public let predictions: [EvalPrediction]

    /// `{"accuracy":…,"loss":…,"n":…}`. A non-finite loss (a diverged model) is written as `null`, since JSON has no NaN.
    public var jsonLine: String {
        (try? JSONText.string(["accuracy": accuracy, "loss": loss, "n": n])) ?? "{}"
    }
}

/// Greedy-decoding evaluation: exact-match accuracy of the target and teacher-forced loss on it.
public enum EvalJob {
    /// Evaluates the checkpoint in `checkpoint` on the examples in `data`.
    public static func run(checkpoint: String, data: String, batchSize: Int = 64, progress: ProgressLine? = nil) throws -> EvalResult {
        let model = try Jobs.loadModel(checkpoint)
        let tokenizer = try Jobs.tokenizer(checkpoint: checkpoint, vocabSize: model.vocabSize)
        return try run(model, tokenizer: tokenizer, examples: try Jobs.loadExamples(path: data), source: data, batchSize: batchSize,
                       progress: progress)
    }

    /// Evaluates `model` on `examples` (tokenized with `tokenizer`; `source` names them in errors). With `progress`,
    /// both phases (teacher-forced loss, then greedy decoding) show examples done, throughput and ETA on stderr.
    public static func run(_ model: any LanguageModel, tokenizer: any TextTokenizer = CharTokenizer.standard, examples: [Example], source: String,
                           batchSize: Int = 64, progress: ProgressLine? = nil) throws -> EvalResult {
        let items = try Batching.tokenize(examples, tokenizer: tokenizer, nCtx: model.contextLength, source: source)
        let batchSize = max(1, min(batchSize, items.count))   // never more rows than examples
        try MemoryEstimate.inference(model, batch: batchSize, seqLen: items.map(\.inputLength).max() ?? 1)
            .require("evaluating \(items.count) examples", fix: "evaluate in smaller batches (EvalJob.run(batchSize:)) or on a machine with more memory")
        let lossCounter = progress.map { ProgressCounter($0, label: "eval: loss", total: items.count) }
        let losses = targetLoss(model, items: items, batchSize: batchSize, pad: tokenizer.pad) { lossCounter?.update($0) }
        // Decode a little past the longest target, enough to see whether eos follows it.
        let longest = items.map { $0.tokens.count - $0.promptLength }.max() ?? 1
        let decodeCounter = progress.map { ProgressCounter($0, label: "eval: decoding", total: items.count) }
        let outputs = Generate.greedy(model, prompts: items.map(\.prompt), maxNewTokens: longest + 1, eos: tokenizer.eos,
                                      batchSize: batchSize, progress: { decodeCounter?.update($0) })
        var predictions: [EvalPrediction] = []
        var correct = 0
        for (i, e) in examples.enumerated() {
            let item = items[i]
            let expected = Array(item.tokens[item.promptLength..<(item.tokens.count - 1)])
            let ok = outputs[i] == expected
            if ok { correct += 1 }
            predictions.append(EvalPrediction(id: e.id, prompt: e.prompt, target: e.target, prediction: tokenizer.decode(outputs[i]),
                                              correct: ok, loss: losses.perExample[i]))
        }
        return EvalResult(accuracy: Double(correct) / Double(max(1, items.count)), loss: losses.mean, n: items.count, predictions: predictions)
    }

    /// Teacher-forced cross-entropy on the target tokens and eos: per example (mean over its tokens) and the
    /// token-weighted mean over all. Computed from the logits in Double, independently of `GPT.loss`.
    /// `progress(done)` is called after each batch with the number of examples done.
    public static func targetLoss(_ model: any LanguageModel, items: [TokenizedExample], batchSize: Int, pad: Int32 = CharTokenizer.pad,
                                  progress: ((Int) -> Void)? = nil) -> (perExample: [Double], mean: Double) {
        let vocab = model.vocabSize
        let retained = model.retainsActivationsForBackward
        model.retainsActivationsForBackward = false   // forward only
        defer { model.retainsActivationsForBackward = retained }
        var perExample = [Double](repeating: 0, count: items.count)
        var total = 0.0, count = 0
        for start in stride(from: 0, to: items.count, by: max(1, batchSize)) {
            let chunk = Array(items[start..<min(items.count, start + max(1, batchSize))])
            let batch = Batching.makeBatch(chunk, lossOn: .target, pad: pad)
            // logits: [batch, seqLen, vocab]
            let logits = model.forward(tokens: batch.inputs, batch: batch.batch, seqLen: batch.seqLen, hooks: nil)
            for row in 0..<batch.batch {
                var sum = 0.0, n = 0
                for t in 0..<batch.seqLen where batch.lossMask[row * batch.seqLen + t] > 0 {
                    let z = logits + (row * batch.seqLen + t) * vocab
                    var maxValue = z[0]
                    for v in 1..<vocab where z[v] > maxValue { maxValue = z[v] }
                    var sumExp = 0.0
                    for v in 0..<vocab { sumExp += exp(Double(z[v] - maxValue)) }
                    let target = Int(batch.targets[row * batch.seqLen + t])
                    sum += log(sumExp) - Double(z[target] - maxValue)
                    n += 1
                }
                perExample[start + row] = sum / Double(max(1, n))
                total += sum; count += n
            }
            progress?(start + batch.batch)
        }
        return (perExample, total / Double(max(1, count)))
    }

    /// Writes predictions as JSONL (sorted keys; a non-finite loss as null) atomically.
    public static func writePredictions(_ predictions: [EvalPrediction], to path: String) throws {
        var data = Data()
        for p in predictions { data.append(try JSONText.encode(p)); data.append(0x0A) }
        try AtomicFile.write(data, to: path)
    }
}

/// Raw logits of a checkpoint on a data file (the `rulelens logits` helper, used to compare with `transformers`).
public enum LogitsJob {
    /// Adds `vector` (one value per element of a position: d_model for `hook_q`/`hook_k`/`hook_v`/`hook_z` taken
    /// whole, [head, d_head] flattened) at every position of `site` — activation addition / a steering vector, and the
    /// training-free rule prior of `rulelens retrieve`.
    public static func addAtEveryPosition(_ hooks: HookSet, site: String, vector: [Float]) {
        hooks.edit([site]) { name, values, shape in
            let width = shape.count >= 3 ? shape.dropFirst(2).reduce(1, *) : shape.last!
            precondition(vector.count == width, "\(name): \(vector.count) values for a position of width \(width)")
            for row in 0..<(shape.reduce(1, *) / width) {
                let x = values + row * width
                for c in 0..<width { x[c] += vector[c] }
            }
        }
    }

    /// The width of one position at each of `sites` (d_model for `hook_q`/`hook_k`/`hook_v`/`hook_z` taken whole),
    /// read from one forward pass over `tokens`.
    /// A site may be a pattern (`blocks.*.attn.hook_q`): its widths are those of every site it matches.
    public static func widths(_ model: any LanguageModel, sites: [String], tokens: [Int32]) throws -> [String: Set<Int>] {
        let hooks = HookSet()
        var widths: [String: Set<Int>] = [:]
        for site in sites {
            hooks.observe([site]) { _, _, shape in widths[site, default: []].insert(shape.count >= 3 ? shape.dropFirst(2).reduce(1, *) : shape.last!) }
        }
        try hooks.validate(sites: model.hookSites)
        _ = model.forward(tokens: tokens, batch: 1, seqLen: tokens.count, hooks: hooks)
        return widths
    }

    /// What `run` wrote: examples, padded length and vocabulary size.
    public struct Summary: Sendable { public var examples: Int; public var seqLen: Int; public var vocabSize: Int }

    /// Runs the model on `[bos] + prompt + target` of each example (right-padded to the longest) and writes a
    /// safetensors file with `tokens` I32 [N, T], `lengths` I32 [N] and `logits` F32 [N, T, vocab]. `additions` (optional)
    /// add a vector at every position of a site on every forward pass (a steering vector; its width is checked first). With `progress`, shows examples done,
    /// throughput and ETA on stderr.
    public static func run(checkpoint: String, data: String, out: String, additions: [(site: String, vector: [Float])] = [],
                           progress: ProgressLine? = nil) throws -> Summary {
        let model = try Jobs.loadModel(checkpoint, rulePriors: true)
        let tokenizer = try Jobs.tokenizer(checkpoint: checkpoint, vocabSize: model.vocabSize)
        let examples = try Jobs.loadExamples(path: data)
        let items = try Batching.tokenize(examples, tokenizer: tokenizer, nCtx: model.contextLength, source: data)
        if let prior = model as? any RuleConditionedModel {   // each example's prior is selected by its rule column
            try RulePriorData.select(prior, examples: examples, tokenizer: tokenizer, path: data, source: data)
        }
        var hooks: HookSet? = nil
        if !additions.isEmpty {
            let retained = model.retainsActivationsForBackward
            model.retainsActivationsForBackward = false
            let widths = try self.widths(model, sites: additions.map(\.site), tokens: [tokenizer.bos])
            model.retainsActivationsForBackward = retained
            for (site, vector) in additions {
                guard let found = widths[site], !found.isEmpty else {
                    throw RuleLensError("--add \(site): no such hook site fired", fix: "list the sites with `rulelens hooks --checkpoint \(checkpoint)`")
                }
                guard found == [vector.count] else {
                    let width = found.sorted().map(String.init).joined(separator: " or ")
                    throw RuleLensError("--add \(site): the vector has \(vector.count) values, but a position of \(site) has \(width)",
                                        fix: "write \(width) values (one per element of a position at \(site))")
                }
            }
            hooks = HookSet()
            for (site, vector) in additions { addAtEveryPosition(hooks!, site: site, vector: vector) }
        }
        model.retainsActivationsForBackward = false   // forward only
        // Every logit is kept for the file (and copied once more when the file is encoded): N × T × V floats, twice.
        let longest = items.map(\.inputLength).max() ?? 1, v = model.vocabSize
        let logitBytes = items.count.multipliedReportingOverflow(by: longest).partialValue.multipliedReportingOverflow(by: v * 8).partialValue
        try MemoryEstimate.inference(model, batch: min(64, items.count), seqLen: longest,
                                     extraBytes: logitBytes < 0 ? Int.max : logitBytes, extraLabel: "the logits [\(items.count), \(longest), \(v)] and their file")
            .require("writing the logits of \(items.count) examples", fix: "split --data into smaller files and run `rulelens logits` on each")
        let full = Batching.makeBatch(items, lossOn: .all, pad: tokenizer.pad)
        let n = full.batch, t = full.seqLen
        let logits = FloatBuffer(count: n * t * v)
        let counter = progress.map { ProgressCounter($0, label: "logits", total: n) }
        for start in stride(from: 0, to: n, by: 64) {
            let rows = min(64, n - start)
            let tokens = Array(full.inputs[(start * t)..<((start + rows) * t)])
            let out = model.forward(tokens: tokens, batch: rows, seqLen: t, hooks: hooks)
            (logits.ptr + start * t * v).update(from: out, count: rows * t * v)
            counter?.update(start + rows)
        }
        // Logits that are not numbers are no result: refuse them rather than write them (e.g. an added vector so
        // large that the activations overflow float32).
        let bad = logits.nonFiniteCount()
        if bad > 0 {
            let cause = additions.isEmpty ? "the model's weights" : "the vector added at \(additions.map(\.site).joined(separator: ", "))"
            throw RuleLensError("\(bad) of \(logits.count) logits are NaN or infinite: \(cause) drives the activations beyond float32's range",
                                fix: additions.isEmpty ? "check the checkpoint (`rulelens info`); retrain it if it diverged"
                                                       : "add a smaller vector (of the size of the site's activations)")
        }
        let lengths = items.map { Int32($0.inputLength) }
        try full.inputs.withUnsafeBufferPointer { tok in
            try lengths.withUnsafeBufferPointer { len in
                try Safetensors.write([Safetensors.Entry(name: "tokens", shape: [n, t], int32s: tok.baseAddress!),
                                       Safetensors.Entry(name: "lengths", shape: [n], int32s: len.baseAddress!),
                                       Safetensors.Entry(name: "logits", shape: [n, t, v], floats: logits.ptr)],
                                      metadata: ["checkpoint": checkpoint, "data": data], to: out)
            }
        }
        return Summary(examples: n, seqLen: t, vocabSize: v)
    }
}
