import Foundation
import RuleLensModel
import RuleLensNumerics
import RuleLensStore
import RuleLensTasks

/// The examples of a dump, tokenized, with their positions and /meta columns.
///
/// Sequence of example i: `[bos] + prompt + target + [eos]`, length L_i; all L_i tokens are fed (teacher forcing).
/// `answer_pos` = len(prompt): the last prompt position, whose logits predict the first target character.
struct DumpPlan {
    let examples: [Example]
    let sequences: [[Int32]]
    let answerPositions: [Int]
    /// T: the longest sequence; every pos axis in the file is padded to it.
    let maxLength: Int
    /// nil for --positions all.
    let selector: PositionSelector?
    /// FNV-1a of every token sequence: identifies the data for --resume.
    let fingerprint: String
    let metaColumns: [MetaColumnSpec]
    /// The tokenizer's padding and end ids.
    let pad: Int32, eos: Int32
    private let hasRule, hasRuleId, hasA, hasB, hasSources: Bool

    var count: Int { examples.count }

    init(examples: [Example], tokenizer: any TextTokenizer, contextLength: Int, positions: String, source: String = "the data") throws {
        pad = tokenizer.pad
        eos = tokenizer.eos
        self.examples = examples
        var seqs: [[Int32]] = [], answers: [Int] = []
        seqs.reserveCapacity(examples.count)
        var f = Fingerprint()
        for (i, ex) in examples.enumerated() {
            let prompt = try tokenizer.encode(ex.prompt, context: "example \(i) (id \(ex.id ?? i)), field prompt")
            let target = try tokenizer.encode(ex.target, context: "example \(i) (id \(ex.id ?? i)), field target")
            let seq = [tokenizer.bos] + prompt + target + [tokenizer.eos]
            seq.withUnsafeBytes { f.add($0) }
            f.add("|")
            seqs.append(seq)
            answers.append(prompt.count)
        }
        try Batching.checkContext(seqs.map(\.count), examples: examples, nCtx: contextLength, source: source, use: .dump)
        sequences = seqs
        answerPositions = answers
        maxLength = seqs.map(\.count).max() ?? 1
        fingerprint = f.hex
        switch positions {
        case "all": selector = nil
        case "last": selector = .last
        case "answer": selector = .answer
        default:
            guard let k = Int(positions) else {
                throw RuleLensError("--positions \(positions) is not all, last, answer or an integer",
                                    fix: "pass --positions all, last, answer, or a position such as 3 or -2")
            }
            selector = .index(k)
            for (i, s) in seqs.enumerated() where (k >= 0 ? k : s.count + k) < 0 || (k >= 0 ? k : s.count + k) >= s.count {
                throw RuleLensError("--positions \(k) is outside example \(i) (id \(examples[i].id ?? i)), which has \(s.count) tokens",
                                    fix: "choose a position below every example's length (the shortest has \(seqs.map(\.count).min()!)), or use last/answer")
            }
        }
        hasRule = examples.contains { $0.rule != nil }
        hasRuleId = examples.contains { $0.ruleId != nil }
        hasA = examples.contains { $0.a != nil }
        hasB = examples.contains { $0.b != nil }
        hasSources = examples.contains { $0.sources != nil }
        var columns = [MetaColumnSpec(name: "id", type: .int64),
                       MetaColumnSpec(name: "tokens", type: .int32, width: maxLength, widthDim: "pos"),
                       MetaColumnSpec(name: "length", type: .int32),
                       MetaColumnSpec(name: "answer_pos", type: .int32),
                       // Strings are variable-length UTF-8: netCDF tools read them (fixed-length ones crash ncdump).
                       MetaColumnSpec(name: "prompt", type: .string),
                       MetaColumnSpec(name: "target", type: .string),
                       MetaColumnSpec(name: "prediction", type: .string),
                       MetaColumnSpec(name: "correct", type: .int32)]
        if hasRule { columns.append(MetaColumnSpec(name: "rule", type: .string)) }
        if hasRuleId { columns.append(MetaColumnSpec(name: "rule_id", type: .int32)) }
        if hasA { columns.append(MetaColumnSpec(name: "a", type: .int64)) }
        if hasB { columns.append(MetaColumnSpec(name: "b", type: .int64)) }
        if hasSources {
            columns.append(MetaColumnSpec(name: "sources", type: .string))
        }
        metaColumns = columns
    }

    /// An example's source keys as compact JSON (`[[0,3],[1,4]]`: per target character, prompt character positions),
    /// "" when the example has none.
    static func sourcesJSON(_ sources: [[Int]]?) -> String {
        guard let sources else { return "" }
        return "[" + sources.map { "[" + $0.map(String.init).joined(separator: ",") + "]" }.joined(separator: ",") + "]"
    }

    /// The kept position of example i (nil for --positions all).
    func pick(_ i: Int) -> Int? {
        switch selector {
        case nil, .mean?: return nil
        case .last?: return sequences[i].count - 1
        case .answer?: return answerPositions[i]
        case .index(let k)?: return k >= 0 ? k : sequences[i].count + k
        }
    }

    /// Teacher-forced greedy verdict of example i from its logits [S, V]: the argmax at answer_pos … L-2
    /// (which predict the target characters and <eos>). `correct` iff every one matches — exactly when greedy
    /// decoding from the prompt would reproduce the target. `prediction` is the argmax text up to the first <eos>.
    func predict(example i: Int, logits: UnsafePointer<Float>, vocabSize V: Int, tokenizer: any TextTokenizer) -> (prediction: String, correct: Bool) {
        let seq = sequences[i]
        var predicted: [Int32] = []
        var correct = true
        var stopped = false
        for p in answerPositions[i]..<(seq.count - 1) {
            let row = logits + p * V
            var best = 0
            for v in 1..<V where row[v] > row[best] { best = v }
            if Int32(best) != seq[p + 1] { correct = false }
            if !stopped {
                if Int32(best) == eos { stopped = true } else { predicted.append(Int32(best)) }
            }
        }
        return (tokenizer.decode(predicted), correct)
    }

    /// Appends the /meta rows of examples `range`.
    func appendMeta(to writer: ActivationStoreWriter, range: Range<Int>, verdicts: [(prediction: String, correct: Bool)]) throws {
        let exs = examples[range]
        try writer.appendMeta("id", ints: range.map { examples[$0].id ?? $0 })
        var tokens = [Int](repeating: Int(pad), count: range.count * maxLength)
        for (row, i) in range.enumerated() { for (p, t) in sequences[i].enumerated() { tokens[row * maxLength + p] = Int(t) } }
        try writer.appendMeta("tokens", ints: tokens)
        try writer.appendMeta("length", ints: range.map { sequences[$0].count })
        try writer.appendMeta("answer_pos", ints: range.map { answerPositions[$0] })
        try writer.appendMeta("prompt", strings: exs.map(\.prompt))
        try writer.appendMeta("target", strings: exs.map(\.target))
        try writer.appendMeta("prediction", strings: verdicts.map(\.prediction))
        try writer.appendMeta("correct", ints: verdicts.map { $0.correct ? 1 : 0 })
        // Missing optional fields: "" for strings, -1 for integers.
        if hasRule { try writer.appendMeta("rule", strings: exs.map { $0.rule ?? "" }) }
        if hasRuleId { try writer.appendMeta("rule_id", ints: exs.map { $0.ruleId ?? -1 }) }
        if hasA { try writer.appendMeta("a", ints: exs.map { $0.a ?? -1 }) }
        if hasB { try writer.appendMeta("b", ints: exs.map { $0.b ?? -1 }) }
        if hasSources { try writer.appendMeta("sources", strings: exs.map { Self.sourcesJSON($0.sources) }) }
    }
}
