import ArgumentParser
import Foundation
import RuleLensJobs
import RuleLensNumerics
import RuleLensStudies
import RuleLensTasks

/// `relabel`: a copy of a dump with new /meta label columns (any JSONL field, or a derived column such as syllogism
/// figure or mood), so probes can ask about labels the dump was not made with.
public enum RelabelVerb: Verb {
    public static let commandPath = ["relabel"]
    public static let abstract = "Copy a dump and add /meta label columns from any JSONL field or a derived column (figure, mood, carry, digits, answer_length)."
    public static let discussion = """
        The data must be what the dump was made from, in order (its prompts are checked against /meta/prompt). \
        --out DIR writes DIR/acts.h5; --out FILE.h5 names the file itself.
        """
    public static let stepOutput = "acts.h5"

    public struct Arguments: VerbArguments {
        @Option(help: "The dump (a `rulelens dump` file, e.g. a spec's ${dump}).")
        public var file: InputPath
        @Option(help: "The data the dump was made from: a JSONL file, or a `rulelens data generate` folder (its --part).")
        public var data: InputPath
        @Option(help: "Part of a data folder: train, test or all (train then test).")
        public var part: DataPart = .test
        @Option(help: "Columns to add: JSONL field names or derived columns (\(Relabel.derived.keys.sorted().joined(separator: ", "))); repeatable, or comma-separated.")
        public var columns: [String] = []
        @Option(parsing: .unconditional, help: "The dump holds only the first N examples of the data (a dump made with --limit N).")
        public var limit: Int?
        @Option(help: "Folder to write acts.h5 into (created), or the HDF5 file itself (a path ending in .h5).")
        public var out: String
        @OptionGroup(title: "Runtime") public var runtime: RuntimeOptions

        public init() {}

        public var names: [String] {
            columns.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        public var file_: String { out.hasSuffix(".h5") ? out : (out as NSString).appendingPathComponent("acts.h5") }

        public func validate() throws {
            if names.isEmpty { throw ValidationError("--columns is empty; pass the columns to add, e.g. --columns figure --columns mood") }
            if Set(names).count != names.count { throw ValidationError("--columns names a column twice; name each column once") }
            if let limit, limit < 1 { throw ValidationError("--limit is \(limit); pass a positive number of examples (or leave it out for all)") }
        }
    }

    public struct Result: Codable, Sendable {
        public var examples: Int
        /// Per added column, the count of each value.
        public var classes: [String: [String: Int]]
    }

    /// --quick: the first 100 examples (as the quick dump).
    public static func quick(_ o: inout QuickOptions) { o.cap("limit", 100) }

    public static func run(_ a: Arguments, _ ctx: VerbContext) throws -> VerbOutcome<Result> {
        let fm = FileManager.default
        let out = a.file_
        if fm.fileExists(atPath: out) && !a.runtime.force {
            throw RuleLensError("\(out) already exists", fix: "pass --force to replace it, or choose another --out")
        }
        let data = a.data.path
        var isDir: ObjCBool = false
        var lines: [[String: Any]]
        if fm.fileExists(atPath: data, isDirectory: &isDir), isDir.boolValue {
            let parts = a.part == .all ? ["train", "test"] : [a.part.rawValue]
            lines = try parts.flatMap { try Relabel.readLines(path: (data as NSString).appendingPathComponent("\($0).jsonl")) }
        } else {
            lines = try Relabel.readLines(path: data)
        }
        if let limit = a.limit, limit < lines.count { lines = Array(lines.prefix(limit)) }
        var columns: [String: [String]] = [:]
        var counts: [String: [String: Int]] = [:]
        for name in a.names {
            let values = try Relabel.column(name, lines: lines, source: data)
            columns[name] = values
            counts[name] = Dictionary(grouping: values, by: { $0 }).mapValues(\.count)
        }
        if !a.out.hasSuffix(".h5") { try OutputCommit.createFolder(a.out) }
        try Relabel.write(source: a.file.path, out: out, columns: columns, lines: lines)
        return VerbOutcome(Result(examples: lines.count, classes: counts), files: a.out.hasSuffix(".h5") ? [] : ["acts.h5"])
    }

    public static func lines(_ r: Result, _ a: Arguments) -> [String] {
        ["wrote \(a.file_): \(r.examples) examples, columns added: "
            + r.classes.keys.sorted().map { "\($0) (\(r.classes[$0]!.count) values)" }.joined(separator: ", ")]
    }
}

/// `grad`: the gradient of a checkpoint's mean target loss on a data file with respect to every parameter.
public enum GradVerb: Verb {
    public static let commandPath = ["grad"]
    public static let abstract = "Write the gradient of the mean target loss on --data with respect to every parameter (safetensors, Hugging Face names)."
    public static let discussion = """
        Loads gpt2, llama and qwen2 checkpoints. --out DIR writes DIR/grad.safetensors (one F32 tensor per parameter); \
        --out FILE.safetensors names the file itself.
        """
    public static let stepOutput = "grad.safetensors"

    public struct Arguments: VerbArguments {
        @Option(help: "Checkpoint folder (gpt2, llama or qwen2).") public var checkpoint: InputPath
        @Option(help: "JSONL examples (prompt, target).") public var data: InputPath
        @Option(help: "Loss positions: target (target tokens and eos) or all.") public var lossOn: LossOn = .target
        @Option(help: "Folder to write grad.safetensors into (created), or the file itself (a path ending in .safetensors).")
        public var out: String
        @OptionGroup(title: "Runtime") public var runtime: RuntimeOptions

        public init() {}

        public var file: String { out.hasSuffix(".safetensors") ? out : (out as NSString).appendingPathComponent("grad.safetensors") }
    }

    public struct Result: Codable, Sendable {
        public var file: String
    }

    public static func run(_ a: Arguments, _ ctx: VerbContext) throws -> VerbOutcome<Result> {
        if FileManager.default.fileExists(atPath: a.file) && !a.runtime.force {
            throw RuleLensError("\(a.file) already exists", fix: "pass --force to overwrite it, or choose another --out")
        }
        if !a.out.hasSuffix(".safetensors") { try OutputCommit.createFolder(a.out) }
        try GradientJob.run(checkpoint: a.checkpoint.path, data: a.data.path, out: a.file, lossOn: a.lossOn)
        return VerbOutcome(Result(file: (a.file as NSString).lastPathComponent), files: a.out.hasSuffix(".safetensors") ? [] : ["grad.safetensors"])
    }

    public static func lines(_ r: Result, _ a: Arguments) -> [String] { ["wrote \(a.file)"] }
}
