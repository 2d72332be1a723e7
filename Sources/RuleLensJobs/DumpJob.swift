import Foundation
import RuleLensModel
import RuleLensNumerics
import RuleLensStore
import RuleLensTasks

/// Options of `rulelens dump` (see Data/ACTIVATIONS.md for what is written).
public struct DumpOptions {
    /// Checkpoint directory (model.safetensors + config.json + vocab.json).
    public var checkpoint: String
    /// The examples to run.
    public var examples: [Example]
    /// Where the examples came from (a path or a task/split description), stored in `source_data`.
    public var sourceData: String
    /// Seed that generated the examples (0 for files).
    public var seed: Int = 0
    /// Hook names or glob patterns.
    public var hooks: [String]
    /// "all", "last", "answer" or an integer position (negative counts back from each example's end).
    public var positions: String = "all"
    /// Examples per forward pass (and per HDF5 chunk).
    public var batch: Int = 32
    /// Output HDF5 path.
    public var out: String
    /// Replace an existing output.
    public var force = false
    /// Continue an incomplete output.
    public var resume = false
    /// How /acts chunks are stored (`none`, or shuffle + deflate at a level).
    public var compression = ChunkCompression.default
    /// The deflate level of `compression`, 0 for none (setting 0 selects none).
    public var gzip: Int {
        get { compression.gzipLevel }
        set { compression = newValue <= 0 ? .none : .gzip(level: newValue) }
    }
    /// Print a progress line on stderr.
    public var progress = true
    /// Debug/verification: also write each site's stored rows to DIR/<hook>.npy, exactly as handed to HDF5.
    public var exportNPY: String? = nil
    /// Under mpirun: write only this shard's examples (the plan — T, string widths, fingerprints — still covers all
    /// of `examples`, so every shard has the same layout). nil: the whole dump.
    public var shard: DumpShard? = nil

    public init(checkpoint: String, examples: [Example], sourceData: String, hooks: [String], out: String) {
        self.checkpoint = checkpoint; self.examples = examples; self.sourceData = sourceData
        self.hooks = hooks; self.out = out
    }
}

/// One rank's part of a sharded dump: the contiguous examples `examples` of `count` shards.
public struct DumpShard: Sendable, Equatable {
    public var index: Int, count: Int
    public var examples: Range<Int>
    public init(index: Int, count: Int, examples: Range<Int>) { self.index = index; self.count = count; self.examples = examples }
}

/// What a dump did.
public struct DumpSummary {
    public let out: String
    public let examples: Int
    /// Examples computed by this run (fewer than `examples` after --resume).
    public let examplesThisRun: Int
    public let sites: [String]
    public let accuracy: Double
    public let seconds: Double
    /// Activation bytes (uncompressed float32) produced this run.
    public let activationBytes: Int
}

extension Jobs {
    /// Refuses contradictory or unsafe output options before any work is done.
    static func checkOutput(_ options: DumpOptions) throws {
        if options.force && options.resume {
            throw RuleLensError("--force and --resume contradict each other", fix: "pass --resume to continue the file, or --force to start over")
        }
        guard options.batch > 0 else { throw RuleLensError("--batch must be positive (got \(options.batch))", fix: "pass e.g. --batch 32") }
        guard (0...9).contains(options.gzip) else {
            throw RuleLensError("gzip level \(options.gzip) is outside 1…9", fix: "pass --compression none, gzip or gzip:LEVEL with LEVEL 1–9")
        }
        let exists = FileManager.default.fileExists(atPath: options.out)
        if exists && !options.force && !options.resume {
            throw RuleLensError("\(options.out) already exists", fix: "pass --force to overwrite it, --resume to continue an incomplete dump, or choose another --out")
        }
        guard !options.examples.isEmpty else { throw RuleLensError("there are no examples to dump", fix: "give a non-empty --data file") }
    }

    /// `dump` on a model already in memory (`vocab`: the checkpoint's token → id map, nil for the standard one).
    public static func dump(model: GPT, vocab: [String: Int]?, _ options: DumpOptions) throws -> DumpSummary {
        try dump(model: model, tokenizer: try vocab.map { try CharTokenizer(vocab: $0) } ?? CharTokenizer.standard, options)
    }

    /// `dump` on a model already in memory, tokenizing with `tokenizer`.
    public static func dump(model: any LanguageModel, tokenizer: any TextTokenizer, _ options: DumpOptions) throws -> DumpSummary {
        let started = Date()
        // The writer lock first: while another dump writes the file, it is neither complete nor damaged, and neither
        // --resume nor --force may touch it.
        let lock = try OutputLock(file: options.out, command: "rulelens dump")
        defer { withExtendedLifetime(lock) {} }
        try checkOutput(options)
        let exists = FileManager.default.fileExists(atPath: options.out)
        let hookNames = try model.resolveHooks(options.hooks)
        let plan = try DumpPlan(examples: options.examples, tokenizer: tokenizer, contextLength: model.contextLength, positions: options.positions, source: options.sourceData)

        // The examples this run writes: all, or this rank's shard.
        let range = options.shard?.examples ?? 0..<plan.count
        var shardAttributes: [String: String] = [:]
        if let shard = options.shard {
            shardAttributes = ["shard_index": "\(shard.index)", "shard_count": "\(shard.count)", "shard_first_example": "\(range.lowerBound)"]
        }
        let layouts = hookNames.map { DumpSiteLayout(name: $0, model: model, maxLength: plan.maxLength, singlePosition: plan.selector != nil) }
        // Never more rows per forward pass than examples; then check the pass, the staging rows and the chunk
        // buffers fit before anything is allocated or created.
        var options = options
        options.batch = min(options.batch, plan.count)
        let rowBytes = layouts.reduce(0) { $0.addingReportingOverflow($1.spec.rowElements * 4).partialValue }
        let staging = options.batch.multipliedReportingOverflow(by: rowBytes)
        try MemoryEstimate.inference(model, batch: options.batch, seqLen: plan.maxLength, hooks: true,
                                     extraBytes: staging.overflow ? Int.max : staging.partialValue.multipliedReportingOverflow(by: 3).partialValue,
                                     extraLabel: "staging and chunk buffers of \(layouts.count) site\(layouts.count == 1 ? "" : "s")")
            .require("dumping with --batch \(options.batch)",
                     fix: "lower --batch (each example stores \(MemoryEstimate.format(rowBytes)) of activations), or dump fewer sites (--hooks) or --positions last/answer")
        let header = ActivationStoreHeader(
            modelConfigJSON: try modelConfigJSON(model), hooks: hookNames,
            sourceCheckpoint: options.checkpoint, sourceData: options.sourceData, seed: options.seed,
            positions: options.positions, maxLength: plan.maxLength, nExamples: range.count,
            extra: ["checkpoint_fingerprint": checkpointFingerprint(model), "data_fingerprint": plan.fingerprint,
                    "sequence": "[bos] + prompt + target + [eos], teacher-forced", "tokenizer": tokenizer.kind,
                    "prediction": "teacher-forced argmax from answer_pos, cut at the first <eos>"].merging(shardAttributes) { a, _ in a })
        let columns = plan.metaColumns
        let writer: ActivationStoreWriter
        if options.resume && exists {
            writer = try ActivationStoreWriter.resume(path: options.out, header: header, sites: layouts.map(\.spec), meta: columns)
        } else {
            writer = try ActivationStoreWriter.create(path: options.out, header: header, sites: layouts.map(\.spec), meta: columns,
                                                      batch: options.batch, gzip: options.gzip, overwrite: options.force)
        }
        let firstExample = range.lowerBound + writer.examplesWritten
        var npys: [String: NPYWriter] = [:]
        var correctCount = 0, done = firstExample, producedBytes = 0
        do {
            if let dir = options.exportNPY {
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                for l in layouts {
                    npys[l.name] = try NPYWriter(path: "\(dir)/\(l.name).npy", shape: [range.upperBound - firstExample] + l.spec.rowShape)
                }
            }
            // Staging rows for one batch per site: [batch] + stored row shape. Reused, so memory is flat in N.
            let staging = Dictionary(uniqueKeysWithValues: layouts.map { ($0.name, FloatBuffer(count: options.batch * $0.spec.rowElements)) })
            let layoutByName = Dictionary(uniqueKeysWithValues: layouts.map { ($0.name, $0) })
            var batchLengths: [Int] = [], batchPicks: [Int?] = []
            let hooks = HookSet()
            hooks.observe(hookNames) { name, values, shape in
                guard let layout = layoutByName[name], let rows = staging[name] else { return }
                let srcRow = Array(shape.dropFirst())
                let srcElements = srcRow.reduce(1, *)
                let (lengths, picks) = (batchLengths, batchPicks)
                Parallel.forRanges(shape[0], minPerThread: max(1, 16_384 / max(1, srcElements))) { e0, e1 in
                    for e in e0..<e1 {
                        layout.copyRow(from: values + e * srcElements, srcRow: srcRow, to: rows.ptr + e * layout.spec.rowElements,
                                       length: lengths[e], pick: picks[e])
                    }
                }
            }
            let progress = DumpProgress(total: range.count, start: firstExample - range.lowerBound, enabled: options.progress)
            var start = firstExample
            var lastFlush = -Double.infinity
            while start < range.upperBound {
                let end = min(range.upperBound, start + options.batch)
                let b = end - start
                batchLengths = (start..<end).map { plan.sequences[$0].count }
                batchPicks = (start..<end).map { plan.pick($0) }
                let S = batchLengths.max()!
                var tokens = [Int32](repeating: plan.pad, count: b * S)
                for (i, ex) in (start..<end).enumerated() {
                    for (p, t) in plan.sequences[ex].enumerated() { tokens[i * S + p] = t }
                }
                let logits = model.forward(tokens: tokens, batch: b, seqLen: S, hooks: hooks)
                let verdicts = (0..<b).map { plan.predict(example: start + $0, logits: logits + $0 * S * model.vocabSize,
                                                          vocabSize: model.vocabSize, tokenizer: tokenizer) }
                try writer.appendActs(layouts.map { ($0.name, UnsafePointer(staging[$0.name]!.ptr)) }, count: b)
                for l in layouts {
                    npys[l.name]?.append(staging[l.name]!.ptr, count: b * l.spec.rowElements)
                    producedBytes += 4 * b * l.spec.rowElements
                }
                try plan.appendMeta(to: writer, range: start..<end, verdicts: verdicts)
                // Flush after the first batch, then at most once a second: a kill loses at most ~1 s of work,
                // and small batches do not pay a flush each.
                let now = ProgressLine.now()
                let flush = now - lastFlush >= 1 || end == range.upperBound
                try writer.endBatch(count: b, flush: flush)
                if flush { lastFlush = now }
                correctCount += verdicts.filter(\.correct).count
                start = end
                done = end
                progress.update(done: done - range.lowerBound, bytes: producedBytes)
            }
            progress.finish(done: done - range.lowerBound, bytes: producedBytes)
            for (_, n) in npys { try n.close() }
            try writer.finish()
        } catch {
            writer.abandon()
            // A fresh file that failed part-way is removed (never left looking like a result); a resumed one is kept.
            if !(options.resume && exists) { try? FileManager.default.removeItem(atPath: options.out) }
            throw error
        }
        let thisRun = range.upperBound - firstExample
        return DumpSummary(out: options.out, examples: range.count, examplesThisRun: thisRun, sites: hookNames,
                           accuracy: thisRun > 0 ? Double(correctCount) / Double(thisRun) : .nan,
                           seconds: Date().timeIntervalSince(started), activationBytes: producedBytes)
    }

    /// The model shape as JSON with Hugging Face GPT2Config keys, sorted (stored in `model_config`; compared on --resume).
    static func modelConfigJSON(_ model: any LanguageModel) throws -> String {
        guard case .gpt2(let config) = ModelFolder.config(of: model) else { return try ModelFolder.configJSON(model) }
        return try modelConfigJSON(config)
    }

    static func modelConfigJSON(_ config: GPTConfig) throws -> String {
        let fields: [String: Any] = ["model_type": "gpt2", "n_layer": config.nLayer, "n_head": config.nHead,
                                     "n_embd": config.dModel, "n_inner": config.dMLP, "n_positions": config.nCtx,
                                     "vocab_size": config.vocabSize, "layer_norm_epsilon": Double("\(config.layerNormEps)") ?? 1e-5]
        let data = try JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    /// FNV-1a over every parameter's bits: the same weights give the same fingerprint.
    static func checkpointFingerprint(_ model: any LanguageModel) -> String {
        var f = Fingerprint()
        f.add(UnsafeRawBufferPointer(start: model.parameterStorage.ptr, count: model.parameterStorage.count * 4))
        return f.hex
    }
}

/// "dump 1200/20000 examples | 312 ex/s | 45.1 MB/s | ETA 1m02s" on stderr (the shared ProgressLine).
struct DumpProgress {
    let total: Int, start: Int
    let line: ProgressLine
    let began = ProgressLine.now()

    init(total: Int, start: Int, enabled: Bool) {
        self.total = total; self.start = start
        line = ProgressLine(enabled: enabled)
    }

    func update(done: Int, bytes: Int, final: Bool = false) {
        let elapsed = max(1e-9, ProgressLine.now() - began)
        let rate = Double(done - start) / elapsed
        let eta = rate > 0 ? Double(total - done) / rate : .nan
        line.update("dump \(done)/\(total) examples | \(ProgressLine.rate(rate)) ex/s | "
                    + String(format: "%.1f MB/s", Double(bytes) / elapsed / 1e6)
                    + (final ? " | \(ProgressLine.duration(elapsed))" : " | ETA \(ProgressLine.duration(eta))"), final: final)
    }

    func finish(done: Int, bytes: Int) { update(done: done, bytes: bytes, final: true) }
}
