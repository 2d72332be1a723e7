import RuleLensModel
import RuleLensNumerics

extension Jobs {
    /// Runs `options.examples` through the checkpoint's model with observe hooks and streams the chosen sites
    /// to an activation file. Sequences are `[bos] + prompt + target + [eos]`, teacher-forced.
    public static func dump(_ options: DumpOptions) throws -> DumpSummary {
        try OutputLock.checkFree(file: options.out, command: "rulelens dump")
        try checkOutput(options)
        let model = try Jobs.loadModel(options.checkpoint, allowVAE: true)
        let tokenizer = try Jobs.tokenizer(checkpoint: options.checkpoint, vocabSize: model.vocabSize)
        return try dump(model: model, tokenizer: tokenizer, options)
    }
}
