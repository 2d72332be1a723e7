import ArgumentParser
import Foundation
import RuleLensJobs

/// `rulelens data`: generate and inspect task data sets.
struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Generate and inspect reasoning-task data (train.jsonl, test.jsonl, meta.json).",
        subcommands: [Generate.self, Show.self])

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Generate a task, format and split from a seed into --out DIR.")

        @OptionGroup var options: TaskOptions

        @Option(help: "Output directory (train.jsonl, test.jsonl, meta.json).")
        var out: String

        @Flag(help: "Replace existing files in --out.")
        var force = false

        func run() throws {
            guard let spec = try options.spec() else {
                throw RuleLensError("--task is missing", fix: "give --task, one of: " + TaskName.allCases.map(\.rawValue).joined(separator: ", "))
            }
            let data = try spec.generate()
            try DataSets.write(data, to: out, force: force)
            print("wrote \(out): train \(data.train.count), test \(data.test.count) (\(spec.task.rawValue), \(spec.format.rawValue), \(spec.split.rawValue), seed \(spec.seed))")
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print counts, some examples and (operand tasks) a map of the split over the (a, b) plane.")

        @Argument(help: "A directory written by `rulelens data generate`.")
        var dir: String

        @Option(help: "Examples to print from each of train and test.")
        var examples: Int = 3

        func run() throws {
            print(try DataSets.describe(dir: dir, examples: examples), terminator: "")
        }
    }
}
