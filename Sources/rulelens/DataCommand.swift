import ArgumentParser
import Foundation
import RuleLensJobs

/// `rulelens data`: generate and inspect task data sets.
struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Generate and inspect reasoning-task data (train.jsonl, test.jsonl, meta.json).",
        subcommands: [Generate.self, Show.self, Plane.self])

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

    struct Plane: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Accuracy over the (a, b) plane from per-example predictions: PREFIX.npy, PREFIX.svg, PREFIX.json.",
            discussion: """
            PREDICTIONS is JSONL with integer a and b per line and either "correct": true/false or "prediction" and \
            "answer" strings (compared by their final answer). The held-out squares come from DIR/meta.json. \
            `rulelens eval` writes the same report for operand tasks.
            """)

        @Argument(help: "A directory written by `rulelens data generate` (for the plane and its squares).")
        var dir: String

        @Option(help: "Predictions JSONL (see above).")
        var predictions: String

        @Option(help: "Output prefix: writes PREFIX.npy, PREFIX.svg, PREFIX.json.")
        var out: String

        func run() throws {
            guard let meta = try DataSets.readMeta(dir: dir) else {
                throw RuleLensError("\(dir) has no meta.json", fix: "point at a directory written by `rulelens data generate`")
            }
            guard let plane = meta.plane else {
                throw RuleLensError("task \(meta.task) has no operand plane", fix: "use an operand task: "
                                    + TaskName.allCases.filter(\.hasPlane).map(\.rawValue).joined(separator: ", "))
            }
            let results = try PlaneAccuracy.readResults(path: predictions)
            let report = PlaneAccuracy.compute(results: results, plane: plane, squares: meta.squares)
            let files = try PlaneAccuracy.write(report, prefix: out, title: "\(meta.task) (\(meta.split)): accuracy")
            PlaneAccuracy.summaryLines(report).forEach { print($0) }
            print("wrote " + files.joined(separator: ", "))
        }
    }
}
