import RuleLensNumerics

/// What every model family offers the jobs (dump, eval, probe ntk, ablate, patch, lens, retrieve): GPT-2, the
/// Llama/Qwen2 family and the language VAE's decoder plug into every command through this one interface.
///
/// Buffers returned by `forward` stay valid until the next forward. Not thread-safe: one pass at a time per instance.
public protocol LanguageModel: AnyObject {
    /// Hugging Face `model_type` (`gpt2`, `llama`, `qwen2`) or `rulelens-vae`.
    var architecture: String { get }
    var vocabSize: Int { get }
    /// Longest sequence the model accepts.
    var contextLength: Int { get }
    /// Every hook site (TransformerLens names), in the order the forward pass reaches them.
    var hookSites: [String] { get }
    /// Dimension names of a site, batch first (empty for an unknown name).
    func hookDims(_ site: String) -> [String]
    /// Full shape of a site's values for one forward pass (batch first).
    func hookShape(_ site: String, batch: Int, seqLen: Int) -> [Int]
    /// See `GPT.retainsActivationsForBackward`.
    var retainsActivationsForBackward: Bool { get set }
    /// Throws a `RuleLensError` naming the problem and the fix when `forward` would trap on this batch.
    func checkInput(tokens: [Int32], batch: Int, seqLen: Int) throws
    /// Logits [batch, seqLen, vocab] for right-padded token rows; `hooks` observe or edit sites on the way.
    func forward(tokens: [Int32], batch: Int, seqLen: Int, hooks: HookSet?) -> UnsafeMutablePointer<Float>
    /// Masked mean cross-entropy of the last forward (stores the gradient for `backward`).
    func loss(targets: [Int32], lossMask: [Float]) -> Float
    /// Accumulates the gradient of the last loss into `gradientStorage`.
    func backward()
    func zeroGrads()
    /// Every parameter tensor (Hugging Face names and layouts), views into `parameterStorage`.
    var parameterTensors: [ParameterTensor] { get }
    var parameterStorage: FloatBuffer { get }
    /// Gradients, same layout as `parameterStorage`.
    var gradientStorage: FloatBuffer { get }
}

/// The checks every model runs before `forward` (which traps on bad input), with errors naming the problem and the fix.
enum ModelInput {
    /// `contextField` names where the context comes from in the model's config (shown in the error).
    static func check(tokens: [Int32], batch: Int, seqLen: Int, contextLength: Int, vocabSize: Int, contextField: String = "") throws {
        guard batch > 0, seqLen > 0 else {
            throw RuleLensError("empty batch (batch \(batch), sequence length \(seqLen))", fix: "pass at least one non-empty sequence")
        }
        guard seqLen <= contextLength else {
            throw RuleLensError("sequence length \(seqLen) exceeds the model's context of \(contextLength) tokens\(contextField.isEmpty ? "" : " (\(contextField))")",
                                fix: "shorten the examples or use a model with a larger context (--ctx \(seqLen) or more)")
        }
        guard tokens.count == batch * seqLen else {
            throw RuleLensError("\(tokens.count) tokens given for batch \(batch) × length \(seqLen)", fix: "pad every sequence to the same length")
        }
        if let bad = tokens.firstIndex(where: { $0 < 0 || Int($0) >= vocabSize }) {
            throw RuleLensError("token id \(tokens[bad]) at position \(bad) is outside the vocabulary 0..<\(vocabSize)",
                                fix: "tokenize with the model's own tokenizer")
        }
    }
}

extension LanguageModel {
    /// Expands hook names and globs against this model's sites (closest-match error for a typo).
    public func resolveHooks(_ patterns: [String]) throws -> [String] {
        try HookSites.resolve(patterns, sites: hookSites, modelDescription: "this \(architecture) model")
    }
}

extension GPT: LanguageModel {
    public var architecture: String { "gpt2" }
    public var vocabSize: Int { config.vocabSize }
    public var contextLength: Int { config.nCtx }
    public func hookDims(_ site: String) -> [String] { HookSites.dims(of: site) }
    public func hookShape(_ site: String, batch: Int, seqLen: Int) -> [Int] {
        HookSites.shape(of: site, config: config, batch: batch, seqLen: seqLen, wiring: wiring)
    }
    public func forward(tokens: [Int32], batch: Int, seqLen: Int, hooks: HookSet?) -> UnsafeMutablePointer<Float> {
        forward(tokens: tokens, batch: batch, seqLen: seqLen, hooks: hooks, keyLengths: nil, conditioning: Conditioning())
    }
    public func backward() { backward(conditioningGradients: ConditioningGradients()) }
    public var parameterTensors: [ParameterTensor] { params.tensors }
    public var parameterStorage: FloatBuffer { params.storage }
    public var gradientStorage: FloatBuffer { grads.storage }
}
