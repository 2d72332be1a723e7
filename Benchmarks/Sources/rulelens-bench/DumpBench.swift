import Foundation
import RuleLensJobs
import RuleLensNumerics
import RuleLensStore
import RuleLensTasks

/// `rulelens-bench dump CHECKPOINT DATA.jsonl HOOKS OUT.h5 [BATCH] [COMPRESSION]`: the same examples through a plain
/// forward pass (no hooks) and through `Jobs.dump` with HOOKS, timed; prints one JSON line.
enum DumpBench {
    static func run(_ args: [String]) throws {
        guard args.count >= 4 else {
            throw RuleLensError("usage: rulelens-bench dump CHECKPOINT DATA.jsonl HOOKS OUT.h5 [BATCH] [COMPRESSION]", fix: "pass the arguments")
        }
        let (checkpoint, dataPath, hooks, out) = (args[0], args[1], args[2], args[3])
        let batch = args.count > 4 ? Int(args[4]) ?? 32 : 32
        // COMPRESSION: none, gzip, gzip:LEVEL, or a bare level (0 = none).
        let compression: ChunkCompression = try args.count > 5 ? (Int(args[5]).map { $0 == 0 ? ChunkCompression.none : .gzip(level: $0) } ?? ChunkCompression(parsing: args[5])) : .default
        // Any family (gpt2, llama, qwen2) with the folder's own tokenizer; sequences as the dump builds them.
        let model = try Jobs.loadModel(checkpoint)
        model.retainsActivationsForBackward = false
        let examples = try JSONL.readExamples(path: dataPath)
        let tokenizer = try Jobs.tokenizer(checkpoint: checkpoint, vocabSize: model.vocabSize)
        let sequences = try examples.map { [tokenizer.bos] + (try tokenizer.encode($0.prompt)) + (try tokenizer.encode($0.target)) + [tokenizer.eos] }

        // Plain forward: the dump's batching and padding, no hooks, no file. Each side runs once (the runs are
        // seconds long); one batch first warms up the thread pools.
        func forwardAll(limit: Int) {
            var start = 0
            while start < min(limit, sequences.count) {
                let end = min(sequences.count, start + batch)
                let S = sequences[start..<end].map(\.count).max()!
                var tokens = [Int32](repeating: tokenizer.pad, count: (end - start) * S)
                for (i, s) in sequences[start..<end].enumerated() { for (p, t) in s.enumerated() { tokens[i * S + p] = t } }
                _ = model.forward(tokens: tokens, batch: end - start, seqLen: S, hooks: nil)
                start = end
            }
        }
        forwardAll(limit: batch)
        let t0 = DispatchTime.now().uptimeNanoseconds
        forwardAll(limit: sequences.count)
        let forwardSeconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        var options = DumpOptions(checkpoint: checkpoint, examples: examples, sourceData: dataPath,
                                  hooks: hooks.split(separator: ",").map(String.init), out: out)
        options.batch = batch; options.compression = compression; options.force = true; options.progress = false
        var summary: DumpSummary? = nil
        let t1 = DispatchTime.now().uptimeNanoseconds
        summary = try Jobs.dump(model: model, tokenizer: tokenizer, options)
        let dumpSeconds = Double(DispatchTime.now().uptimeNanoseconds - t1) / 1e9
        let fileBytes = (try FileManager.default.attributesOfItem(atPath: out)[.size] as? NSNumber)?.intValue ?? 0
        emit(["bench": "dump", "hooks": hooks, "examples": examples.count, "tokens": sequences.map(\.count).reduce(0, +), "sites": summary!.sites.count, "batch": batch,
              "compression": compression.description, "forward_s": forwardSeconds, "dump_s": dumpSeconds,
              "forward_examples_per_s": Double(examples.count) / forwardSeconds,
              "dump_examples_per_s": Double(examples.count) / dumpSeconds,
              "activation_mb": Double(summary!.activationBytes) / 1e6,
              "dump_mb_per_s": Double(summary!.activationBytes) / 1e6 / dumpSeconds,
              "file_mb": Double(fileBytes) / 1e6])
    }
}
