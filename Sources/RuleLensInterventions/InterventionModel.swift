import RuleLensModel
import RuleLensNumerics

/// The model the interventions run on: any family behind the `LanguageModel` protocol (GPT-2, the Llama/Qwen2
/// family, and any other model that conforms). Ablation and patching use only `forward(tokens:batch:seqLen:hooks:)`
/// and the hook sites (`InterventionGeometry` reads layers and heads from them); the logit lens and direct logit
/// attribution also need the model's final norm and unembedding (`LensReadable`).
public typealias InterventionModel = any LanguageModel

/// One example as the interventions see it: `[bos] + prompt + target + [eos]` and where the prompt ends.
public struct InterventionItem: Sendable, Equatable {
    /// The full sequence; the model reads `tokens[0..<count-1]`.
    public let tokens: [Int32]
    /// Length of `[bos] + prompt`: the first answer token sits at this index.
    public let promptLength: Int
    public init(tokens: [Int32], promptLength: Int) {
        precondition(promptLength >= 1 && promptLength < tokens.count, "InterventionItem: prompt length \(promptLength) for \(tokens.count) tokens")
        self.tokens = tokens; self.promptLength = promptLength
    }
    /// Positions the model reads in a teacher-forced pass.
    public var inputLength: Int { tokens.count - 1 }
    /// The position whose logits predict the first answer token (the last prompt position).
    public var answerPosition: Int { promptLength - 1 }
    /// The first answer token.
    public var firstAnswerToken: Int32 { tokens[promptLength] }
    /// `[bos] + prompt`.
    public var prompt: [Int32] { Array(tokens[0..<promptLength]) }
}

/// Runs the model without keeping activations for backward (inference only), restoring the setting after.
func inference<T>(_ model: InterventionModel, _ body: () throws -> T) rethrows -> T {
    let retained = model.retainsActivationsForBackward
    model.retainsActivationsForBackward = false
    defer { model.retainsActivationsForBackward = retained }
    return try body()
}

/// Which rows of the next forward hold which examples; editors read it to find per-example data.
final class RowContext {
    var rows: [Int] = []
    /// False while decoding (observers that want the teacher-forced pass only skip then).
    var teacherForced = true
}

/// Right-padded [batch, seqLen] inputs (pad 0) of `items[indices]`, each the item's first `inputLength` tokens
/// (or `lengthOf` tokens when given).
func paddedInputs(_ items: [InterventionItem], _ indices: [Int], lengthOf: ((InterventionItem) -> Int)? = nil) -> (tokens: [Int32], seqLen: Int) {
    let lengths = indices.map { lengthOf?(items[$0]) ?? items[$0].inputLength }
    let seqLen = lengths.max() ?? 1
    var tokens = [Int32](repeating: 0, count: indices.count * seqLen)
    for (row, i) in indices.enumerated() {
        for t in 0..<lengths[row] { tokens[row * seqLen + t] = items[i].tokens[t] }
    }
    return (tokens, seqLen)
}

/// Chunks 0..<n into runs of at most `size`.
func chunks(_ n: Int, _ size: Int) -> [[Int]] {
    stride(from: 0, to: n, by: max(1, size)).map { Array($0..<min(n, $0 + max(1, size))) }
}
