import ArgumentParser
import Foundation
import RuleLensJobs
import RuleLensTasks

/// `init`: a randomly initialised checkpoint of any family — the untrained baseline for probes. The spec step kind is
/// `random-init`.
public enum InitVerb: Verb {
    public static let commandPath = ["init"]
    public static var kind: String { "random-init" }
    public static let abstract = "Write a randomly initialised checkpoint (gpt2, llama or qwen2; the weights `train --seed S` starts from), shape copied from --like or given."
    public static let discussion = """
        The random-initialisation baseline: a probe that separates rules in an untrained network measures the input, \
        not learning. --like copies the family, shape and tokenizer of a checkpoint (e.g. a spec's ${train}); the shape \
        options override it. Without --like the defaults are `train`'s.
        """

    public struct Arguments: VerbArguments {
        @Option(help: "Copy the family, shape (config.json) and tokenizer of this checkpoint folder.")
        public var like: InputPath?
        @OptionGroup(title: "Model shape") public var shape: ModelShapeOptions
        @Option(parsing: .unconditional, help: "Initialisation seed (as train --seed).")
        public var seed: UInt64 = 0
        @Option(help: "Output folder (must not hold a checkpoint unless --force).")
        public var out: String
        @OptionGroup(title: "Runtime") public var runtime: RuntimeOptions

        public init() {}
    }

    public struct Result: Encodable {
        public var parameters: Int
        public var seed: UInt64
        public var family: String
        public var layers: Int
        public var dModel: Int
        enum CodingKeys: String, CodingKey { case parameters, seed, family, layers, dModel = "d_model" }
    }

    public static func run(_ a: Arguments, _ ctx: VerbContext) throws -> VerbOutcome<Result> {
        var options = TrainOptions(data: "")
        var vocabSize = CharTokenizer.standard.count
        if let like = a.like {
            (options, vocabSize) = try RandomInit.shape(of: like.path)
            // Another family keeps only the shape every family has.
            if let arch = a.shape.arch, arch.rawValue != options.family {
                options.kvHeads = nil; options.ropeTheta = nil; options.positions = nil; options.tiedHead = nil
            }
            // A new width without a new MLP width takes the default 4 × d-model.
            if a.shape.dModel != nil && a.shape.dMLP == nil { options.dMLP = nil }
        }
        a.shape.apply(to: &options)
        options.seed = a.seed
        let parameters = try RandomInit.write(options, vocabSize: vocabSize, tokenizerFrom: a.like?.path, to: a.out, overwrite: a.runtime.force)
        return VerbOutcome(Result(parameters: parameters, seed: a.seed, family: options.family, layers: options.layers, dModel: options.dModel),
                           files: ["model.safetensors", "config.json"])
    }

    public static func lines(_ r: Result, _ a: Arguments) -> [String] {
        ["wrote \(a.out): random initialisation (\(r.family)), \(r.parameters) parameters, seed \(r.seed)"]
    }
}
