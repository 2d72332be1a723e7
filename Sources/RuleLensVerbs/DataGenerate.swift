import ArgumentParser
import Foundation
import RuleLensJobs
import RuleLensNumerics
import RuleLensTasks

/// `data generate`: a task, format and split from a seed, written as train.jsonl, test.jsonl and meta.json.
/// The spec step kind is `data`.
public enum DataGenerateVerb: Verb {
    public static let commandPath = ["data", "generate"]
    public static var kind: String { "data" }
    public static let abstract = "Generate a task, format and split from a seed into --out DIR (train.jsonl, test.jsonl, meta.json)."
    public static let discussion = """
        The same options and seed give byte-identical files (and the same examples `train --task` and `eval --task` \
        generate). Existing files in --out are refused unless --force.
        """

    public struct Arguments: VerbArguments {
        @OptionGroup public var task: TaskOptions
        @Option(help: "Output folder (train.jsonl, test.jsonl, meta.json).")
        public var out: String
        @OptionGroup(title: "Runtime") public var runtime: RuntimeOptions

        public init() {}

        public func validate() throws {
            if task.task == nil {
                throw ValidationError("--task is missing; pass --task, one of: " + TaskName.allCases.map(\.rawValue).joined(separator: ", "))
            }
        }
    }

    public struct Square: Codable, Sendable {
        public var centerA: Int, centerB: Int, half: Int
        enum CodingKeys: String, CodingKey { case centerA = "center_a", centerB = "center_b", half }
    }

    public struct Result: Encodable {
        public var train: Int
        public var test: Int
        public var task: String
        public var format: String
        public var split: String
        public var seed: UInt64
        /// The held-out squares (leave-square-out and holes splits only).
        public var squares: [Square]?
        /// The number of distinct rules (rule tasks only).
        public var rules: Int?
    }

    /// --quick: sampled tasks generate at most 300 examples; length splits 20 test examples per digit count.
    public static func quick(_ o: inout QuickOptions) {
        if let task = o.values["task"].flatMap(TaskName.init(rawValue:)), !task.hasPlane { o.cap("count", 300) }
        o.cap("test-per-digit", 20, orSet: false)
    }

    public static func run(_ a: Arguments, _ ctx: VerbContext) throws -> VerbOutcome<Result> {
        guard let spec = try a.task.spec() else {
            throw RuleLensError("--task is missing", fix: "give --task, one of: " + TaskName.allCases.map(\.rawValue).joined(separator: ", "))
        }
        let data = try spec.generateChecked(outDir: a.out, log: ctx.progress.message)
        try DataSets.write(data, to: a.out, force: a.runtime.force)
        ctx.log("  wrote \(a.out): train \(data.train.count), test \(data.test.count)")
        let squares = data.meta.squares.map { Square(centerA: $0.centerA, centerB: $0.centerB, half: $0.half) }
        return VerbOutcome(Result(train: data.train.count, test: data.test.count, task: spec.task.rawValue, format: spec.format.rawValue,
                                  split: spec.split.rawValue, seed: spec.seed, squares: squares.isEmpty ? nil : squares,
                                  rules: data.meta.rules?.count),
                           files: DataSets.fileNames)
    }

    public static func lines(_ r: Result, _ a: Arguments) -> [String] {
        ["wrote \(a.out): train \(r.train), test \(r.test) (\(r.task), \(r.format), \(r.split), seed \(r.seed))"]
    }
}
