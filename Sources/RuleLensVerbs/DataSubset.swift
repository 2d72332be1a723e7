import ArgumentParser
import Foundation
import RuleLensJobs
import RuleLensModel
import RuleLensNumerics
import RuleLensTasks

/// `data subset`: nested training subsets of one data folder, with its test part unchanged and a validation part
/// held out of the training part — the design a training-set-size curve needs (one fixed test set; each smaller
/// training set inside every larger one; early stopping on examples no subset trains on).
public enum DataSubsetVerb: Verb {
    public static let commandPath = ["data", "subset"]
    public static let kind = "subset"
    public static let abstract = "A nested training subset of a data folder: the first N of a seeded order of its training part, its test part unchanged, and a validation part held out of training."
    public static let discussion = """
        The training part is put in one order drawn with --seed; the last --validation examples of that order are \
        DIR/validation.jsonl and the first --train are DIR/train.jsonl. With the same --seed and --validation, a \
        smaller --train is always a prefix of a larger one (nested), no subset ever contains a validation example, \
        and DIR/test.jsonl is the source's test part byte for byte. meta.json is the source's, with the counts and \
        the subset recorded (so eval's plane, carry and step readings still apply).
        """

    public struct Arguments: VerbArguments {
        @Option(help: "A `rulelens data generate` folder (train.jsonl, test.jsonl, meta.json).") public var data: InputPath
        @Option(parsing: .unconditional, help: "Training examples to keep (the first N of the seeded order).") public var train: Int
        @Option(parsing: .unconditional, help: "Examples of the training part held out as validation.jsonl (never in any subset).")
        public var validation: Int = 0
        @Option(parsing: .unconditional, help: "Seed of the order (the same seed gives nested subsets).") public var seed: UInt64 = 0
        @Option(help: "Output folder: train.jsonl, test.jsonl, validation.jsonl, meta.json (existing files are kept unless --force).")
        public var out: String
        @OptionGroup(title: "Runtime") public var runtime: RuntimeOptions

        public init() {}

        public func validate() throws {
            if train < 1 { throw ValidationError("--train is \(train); pass a positive number of training examples") }
            if validation < 0 { throw ValidationError("--validation is \(validation); pass 0 or more examples to hold out") }
        }
    }

    public struct Result: Codable, Sendable {
        /// Examples in each part written, and in the source's training part.
        public var train: Int
        public var validation: Int
        public var test: Int
        public var sourceTrain: Int
        public var seed: UInt64
        enum CodingKeys: String, CodingKey { case train, validation, test, seed, sourceTrain = "source_train" }
    }

    public static func quick(_ o: inout QuickOptions) {}

    public static func run(_ a: Arguments, _ ctx: VerbContext) throws -> VerbOutcome<Result> {
        let dir = a.data.path
        guard let meta = try DataSets.readMeta(dir: dir) else {
            throw RuleLensError("\(dir) is not a `rulelens data generate` folder (no meta.json)",
                                fix: "pass the --out folder of `rulelens data generate`")
        }
        let source = try DataSource(file: dir).load(.train).examples
        let test = try DataSource(file: dir).load(.test).examples
        guard a.train + a.validation <= source.count else {
            throw RuleLensError("--train \(a.train) plus --validation \(a.validation) is more than the \(source.count) training examples of \(dir)",
                                fix: "pass at most \(source.count) in all, or generate more data (--count)")
        }
        var order = Array(source.indices)
        var rng = SeededRNG(seed: a.seed, stream: "data-subset")
        rng.shuffle(&order)
        let validation = order.suffix(a.validation).map { source[$0] }
        let train = order.prefix(a.train).map { source[$0] }
        var subsetMeta = meta
        subsetMeta.counts = ["train": train.count, "test": test.count, "validation": validation.count]
        subsetMeta.options["subset"] = "train \(train.count) of \(source.count), validation \(validation.count), seed \(a.seed)"
        let validationPath = (a.out as NSString).appendingPathComponent("validation.jsonl")
        if FileManager.default.fileExists(atPath: validationPath) && !a.runtime.force {
            throw RuleLensError("\(validationPath) already exists", fix: "pass --force to replace it, or choose another --out")
        }
        // validation.jsonl first: meta.json, written last by DataSets.write, marks the folder complete.
        try OutputCommit.createFolder(a.out)
        try AtomicFile.write(try JSONL.encode(validation), to: validationPath)
        try DataSets.write(GeneratedData(train: train, test: test, meta: subsetMeta), to: a.out, force: a.runtime.force)
        return VerbOutcome(Result(train: train.count, validation: validation.count, test: test.count, sourceTrain: source.count, seed: a.seed),
                           files: DataSets.fileNames + ["validation.jsonl"])
    }

    public static func lines(_ r: Result, _ a: Arguments) -> [String] {
        ["wrote \(a.out): train \(r.train) of \(r.sourceTrain), validation \(r.validation), test \(r.test) (seed \(r.seed))"]
    }
}
