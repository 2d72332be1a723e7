import Foundation
import RuleLensJobs
import RuleLensModel
import RuleLensNumerics
import RuleLensTasks

/// `rulelens-bench generate CHECKPOINT PROMPTS.jsonl NEW_TOKENS BATCH cached|uncached [THREADS]`: greedy decoding of
/// every prompt ([bos] + prompt) for exactly NEW_TOKENS tokens (no end token), BATCH rows at a time; prints tokens/s
/// and the generated ids of the first prompt (for comparison with the reference's).
enum GenerateBench {
    static func run(_ args: [String]) throws {
        guard args.count >= 5, let newTokens = Int(args[2]), let batch = Int(args[3]), ["cached", "uncached"].contains(args[4]) else {
            throw RuleLensError("usage: rulelens-bench generate CHECKPOINT PROMPTS.jsonl NEW_TOKENS BATCH cached|uncached [THREADS]",
                                fix: "see Benchmarks/bench_generate.py")
        }
        if args.count > 5, let threads = Int(args[5]) { Parallel.configure(threads: threads) }
        let (model, vocab) = try Checkpoint.load(args[0])
        let tokenizer = try vocab.map { try CharTokenizer(vocab: $0) } ?? CharTokenizer.standard
        let prompts = try JSONL.readExamples(path: args[1]).map { [CharTokenizer.bos] + (try tokenizer.encode($0.prompt)) }
        let cached = args[4] == "cached"
        let t0 = DispatchTime.now().uptimeNanoseconds
        let outputs = Generate.greedy(model, prompts: prompts, maxNewTokens: newTokens, eos: -1, batchSize: batch, cached: cached)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        let generated = outputs.map(\.count).reduce(0, +)
        emit(["bench": "generate", "mode": args[4], "prompts": prompts.count, "new_tokens": newTokens, "batch": batch,
              "seconds": seconds, "tokens_per_s": Double(generated) / seconds, "generated": generated,
              "threads": Parallel.threads, "first": outputs.first.map { $0.map(Int.init) } ?? []])
    }
}
