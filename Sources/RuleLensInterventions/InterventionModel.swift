import RuleLensModel
import RuleLensNumerics

/// The model the interventions run on. This alias is the one seam to the model: when the model protocol
/// (GPT, the Llama/Qwen2 family, the VAE decoder) lands, point it there. Everything here uses only
/// `forward(tokens:batch:seqLen:hooks:)`, `config`, the hook names and `ModelWeights` below.
public typealias InterventionModel = GPT

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

/// Read access to the weights the lens and direct logit attribution need (HF names of GPT-2).
struct ModelWeights {
    let model: InterventionModel
    var config: GPTConfig { model.config }
    /// The unembedding [V, d] (logits = ln_f(x) · Wᵀ): `transformer.wte.weight` when tied, else `lm_head.weight`.
    var wte: UnsafeMutablePointer<Float> {
        model.params.pointer(config.tiedHead ? "transformer.wte.weight" : "lm_head.weight")
    }
    var lnfWeight: UnsafeMutablePointer<Float> { model.params.pointer("transformer.ln_f.weight") }
    var lnfBias: UnsafeMutablePointer<Float> { model.params.pointer("transformer.ln_f.bias") }
    /// attn.c_proj weight of layer l, [d (in = head-major z), d (out)].
    func attnProjWeight(_ l: Int) -> UnsafeMutablePointer<Float> { model.params.pointer("transformer.h.\(l).attn.c_proj.weight") }
    func attnProjBias(_ l: Int) -> UnsafeMutablePointer<Float> { model.params.pointer("transformer.h.\(l).attn.c_proj.bias") }
    /// The constant part of layer l's values, head-major [H·dh]: the value bias c_attn.bias[2d..<3d] plus ln_1's
    /// bias through the value weights (ln_1.bias · c_attn.weight[:, 2d..<3d]). Attention weights sum to 1, so each
    /// head passes this on whatever it attends to; TransformerLens (fold_ln + fold_value_biases) moves it into b_O.
    func constantValue(_ l: Int) -> [Double] {
        let d = config.dModel
        let bias = model.params.pointer("transformer.h.\(l).attn.c_attn.bias") + 2 * d
        let weight = model.params.pointer("transformer.h.\(l).attn.c_attn.weight")   // [d, 3d]
        let lnBias = model.params.pointer("transformer.h.\(l).ln_1.bias")
        return (0..<d).map { j in
            var v = Double(bias[j])
            for k in 0..<d { v += Double(lnBias[k]) * Double(weight[k * 3 * d + 2 * d + j]) }
            return v
        }
    }
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
