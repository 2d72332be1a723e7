import ArgumentParser
import Foundation
import RuleLensJobs
import RuleLensNumerics

/// `logits`: a checkpoint's raw logits on a data file, for comparing with other implementations.
public enum LogitsVerb: Verb {
    public static let commandPath = ["logits"]
    public static let abstract = "Write a checkpoint's logits on a data file to safetensors (tokens, lengths, logits)."
    public static let discussion = """
        Runs [bos] + prompt + target of each example, right-padded; used by the transformers interop tests. Loads every \
        family (gpt2, llama, qwen2, and checkpoints trained with a rule prior, whose prior is selected by each example's \
        rule). Writes --out DIR/logits.safetensors: tokens I32 [N, T], lengths I32 [N], logits F32 [N, T, vocab]. \
        --add SITE=FILE.json adds a vector at every position of SITE; its width is checked against the site first.
        """
    public static let stepOutput = "logits.safetensors"
    public static let file = "logits.safetensors"

    public struct Arguments: VerbArguments {
        @Option(help: "Checkpoint folder (a `rulelens train` run, or a Hugging Face gpt2/llama/qwen2 folder).")
        public var checkpoint: InputPath
        @Option(help: "Examples (JSON Lines).") public var data: InputPath
        @Option(name: .customLong("add"), help: ArgumentHelp("SITE=FILE.json: add a vector (a JSON array, one value per element of a position, e.g. d_model values for blocks.1.attn.hook_q) at every position of SITE (repeatable).", valueName: "site=file"),
                transform: SiteFile.init(parsing:))
        public var add: [SiteFile] = []
        @Option(help: "Folder for logits.safetensors (created; an existing file is kept unless --force).") public var out: String
        @OptionGroup(title: "Runtime") public var runtime: RuntimeOptions

        public init() {}
    }

    /// `SITE=FILE`: a hook site and the file it reads (an input of the step, found by the spec runner's cache).
    public struct SiteFile: Sendable, Hashable {
        public var site: String
        public var file: InputPath
        init(parsing argument: String) throws {
            guard let eq = argument.firstIndex(of: "="), eq != argument.startIndex, argument.index(after: eq) != argument.endIndex else {
                throw ValidationError("--add \(argument) is not SITE=FILE.json; pass e.g. --add blocks.1.attn.hook_q=shift.json")
            }
            site = String(argument[..<eq]); file = InputPath(String(argument[argument.index(after: eq)...]))
        }
    }

    public struct Result: Codable, Sendable {
        /// Examples (rows of the file), their padded length, and the vocabulary size.
        public var examples: Int
        public var seqLen: Int
        public var vocabSize: Int
        /// The file inside --out.
        public var file: String
        /// The sites a vector was added at.
        public var added: [String]
        enum CodingKeys: String, CodingKey { case examples, seqLen = "seq_len", vocabSize = "vocab_size", file, added }
    }

    public static func run(_ a: Arguments, _ ctx: VerbContext) throws -> VerbOutcome<Result> {
        try inOutFolder(a.out) { try run(a, ctx, inFolder: ()) }
    }

    static func run(_ a: Arguments, _ ctx: VerbContext, inFolder: Void) throws -> VerbOutcome<Result> {
        let path = try outputFile(a.out, file, force: a.runtime.force)
        let additions: [(site: String, vector: [Float])] = try a.add.map { addition in
            let site = addition.site, file = addition.file.path
            guard let data = FileManager.default.contents(atPath: file),
                  let vector = (try? JSONSerialization.jsonObject(with: data)) as? [Double], !vector.isEmpty else {
                throw RuleLensError("--add: \(file) is not a JSON array of finite numbers", fix: "write the vector as [0.1, -0.2, …]")
            }
            // The model adds it in float32: a value float32 cannot hold (1e39 becomes infinity) would give NaN logits.
            if let i = vector.firstIndex(where: { !Float($0).isFinite }) {
                throw RuleLensError("--add: value \(i) of \(file) is \(vector[i]), which float32 cannot hold (finite values up to ±3.4e38)",
                                    fix: "write finite values of a size the model's activations have, e.g. [0.1, -0.2, …]")
            }
            return (site, vector.map { Float($0) })
        }
        let s = try LogitsJob.run(checkpoint: a.checkpoint.path, data: a.data.path, out: path, additions: additions, progress: ctx.progress)
        return VerbOutcome(Result(examples: s.examples, seqLen: s.seqLen, vocabSize: s.vocabSize, file: file, added: additions.map(\.site)),
                           files: [file])
    }

    public static func lines(_ r: Result, _ a: Arguments) -> [String] {
        ["wrote \((a.out as NSString).appendingPathComponent(r.file)): logits [\(r.examples), \(r.seqLen), \(r.vocabSize)]"
            + (r.added.isEmpty ? "" : " with vectors added at " + r.added.joined(separator: ", "))]
    }
}
