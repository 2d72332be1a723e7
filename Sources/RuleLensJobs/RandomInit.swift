import Foundation
import RuleLensModel
import RuleLensNumerics
import RuleLensTasks

/// Untrained checkpoints of every family (`rulelens init`, the spec step `random-init`): the weights `train --seed S`
/// starts from, the baseline that shows what training added.
public enum RandomInit {
    /// The shape of the checkpoint in `dir` (gpt2, llama or qwen2; a rule-prior GPT-2 gives its plain GPT-2 shape) as
    /// training options, and its vocabulary size. Reads config.json only.
    public static func shape(of dir: String) throws -> (options: TrainOptions, vocabSize: Int) {
        var o = TrainOptions(data: "")
        let configPath = (dir as NSString).appendingPathComponent(Checkpoint.configFile)
        switch try ModelFolder.modelType(dir) {
        case "gpt2":
            let c = try Checkpoint.readConfig(configPath)
            o.layers = c.nLayer; o.heads = c.nHead; o.dModel = c.dModel; o.dMLP = c.dMLP; o.ctx = c.nCtx
            return (o, c.vocabSize)
        case "llama", "qwen2":
            let c = try LlamaCheckpoint.readConfig(try Checkpoint.readJSONObject(configPath), path: configPath)
            o.arch = c.family.rawValue; o.layers = c.nLayer; o.heads = c.nHead; o.kvHeads = c.nKVHead; o.dModel = c.dModel
            o.dMLP = c.dMLP; o.ctx = c.nCtx; o.ropeTheta = c.ropeTheta; o.positions = c.positions.rawValue
            o.tiedHead = c.tiedEmbeddings
            return (o, c.vocabSize)
        case let other:
            throw RuleLensError("\(dir) holds a \"\(other)\" model; a random initialisation copies the shape of \(ModelFolder.supported) checkpoints",
                                fix: "pass --like a gpt2, llama or qwen2 checkpoint folder, or give the shape (--arch, --layers, …) instead")
        }
    }

    /// Writes a randomly initialised model of `options`' family and shape (initialisation depends only on
    /// `options.seed`) into `dir`, with the tokenizer of `tokenizerFrom` (default: the character vocabulary).
    /// Returns the number of parameters.
    @discardableResult
    public static func write(_ options: TrainOptions, vocabSize: Int = CharTokenizer.standard.count, tokenizerFrom: String? = nil,
                             to dir: String, overwrite: Bool) throws -> Int {
        if !overwrite && Checkpoint.exists(at: dir) {
            throw RuleLensError("\(dir) already holds a checkpoint", fix: "choose another --out folder, or pass --force to replace it")
        }
        try options.validate()
        if let c = options.llamaConfig(vocabSize: vocabSize) { try c.validate() } else { try options.modelConfig(vocabSize: vocabSize).validate() }
        let comparable = options.llamaConfig(vocabSize: vocabSize).map(MemoryEstimate.comparableConfig) ?? options.modelConfig(vocabSize: vocabSize)
        try MemoryEstimate.model(comparable).require("a \(MemoryEstimate.parameterCount(comparable))-parameter model",
                                                     fix: "choose a smaller model (--layers, --d-model, --d-mlp, --ctx)")
        let tokenizer: any TextTokenizer = try tokenizerFrom.map { try Jobs.tokenizer(checkpoint: $0, vocabSize: vocabSize) } ?? CharTokenizer.standard
        let model = try options.buildModel(vocabSize: vocabSize)
        let chars = tokenizer as? CharTokenizer
        try ModelFolder.save(model, vocab: chars?.vocab, files: chars == nil ? try tokenizer.checkpointFiles() : [:],
                             bosTokenID: Int(tokenizer.bos), eosTokenID: Int(tokenizer.eos), to: dir,
                             extra: ["init": "random", "seed": "\(options.seed)", "step": "0"],
                             metadata: ["step": "0", "init": "random", "random_init_seed": "\(options.seed)"], overwrite: overwrite)
        return model.parameterStorage.count
    }
}
