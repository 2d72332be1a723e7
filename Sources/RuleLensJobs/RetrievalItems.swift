import Foundation
import RuleLensInterventions
import RuleLensNumerics
import RuleLensTasks

/// The jobs' side of the retrieval test (the measurement itself is `Retrieval` in RuleLensInterventions): the
/// test's items from examples, and the progress line.
extension Retrieval {
    /// Tokenizes examples and maps their source keys to token positions. Throws when no example carries `sources`.
    public static func items(_ examples: [Example], tokenizer: CharTokenizer, nCtx: Int, source: String) throws -> [Item] {
        guard examples.contains(where: { $0.sources != nil }) else {
            throw RuleLensError("no example in \(source) has source keys (the `sources` field)",
                                fix: "generate the data with `rulelens data generate` (every task records sources), or add `sources` to each line")
        }
        let tokenized = try Batching.tokenize(examples, tokenizer: tokenizer, nCtx: nCtx, source: source)
        return try zip(examples, tokenized).enumerated().map { i, pair in
            let (e, t) = pair
            let sources = e.sources ?? []
            let promptLength = t.promptLength - 1
            guard sources.isEmpty || sources.count == e.target.unicodeScalars.count else {
                throw RuleLensError("example \(i + 1) of \(source) has \(sources.count) source lists for a \(e.target.unicodeScalars.count)-character target",
                                    fix: "give one list per target character (see Data/README.md, Source keys)")
            }
            for keys in sources { for j in keys where j < 0 || j >= promptLength {
                throw RuleLensError("example \(i + 1) of \(source) names source position \(j), outside its \(promptLength)-character prompt",
                                    fix: "source positions are 0-based character indices into the prompt")
            } }
            return Item(tokens: t, keys: sources.map { $0.map { $0 + 1 } })
        }
    }

    /// The progress line after `done` of `total` conditions (started at `t0`), with the ETA.
    static func reportCondition(_ progress: ProgressLine?, done: Int, of total: Int, label: String, examples: Int, since t0: Double) {
        let elapsed = ProgressLine.now() - t0
        progress?.update("retrieve: condition \(done)/\(total) (\(label)) | \(examples) examples | ETA "
                         + ProgressLine.duration(elapsed / Double(done) * Double(total - done)), final: done == total)
    }
}
