import ArgumentParser
import Foundation
import RuleLensJobs
import RuleLensVerbs
import RuleLensNumerics
import RuleLensStudies
import RuleLensTasks

/// `rulelens data`: generate and inspect task data sets.
struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Generate and inspect reasoning-task data (train.jsonl, test.jsonl, meta.json).",
        subcommands: [VerbCommand<DataGenerateVerb>.self, Show.self, Plane.self, VerbCommand<PairsVerb>.self, VerbCommand<DataSubsetVerb>.self])

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print counts, some examples and (operand tasks) a map of the split over the (a, b) plane.")

        @Argument(help: "A directory written by `rulelens data generate`.")
        var dir: String

        @Option(help: "Examples to print from each of train and test.")
        var examples: Int = 3

        @Flag(help: "Print one JSON object: meta.json and the first --examples lines of train and test.")
        var json = false

        func run() throws {
            guard json else { return print(try DataSets.describe(dir: dir, examples: examples), terminator: "") }
            guard let meta = try DataSets.readMeta(dir: dir) else {
                throw RuleLensError("\(dir) has no meta.json", fix: "point at a directory written by `rulelens data generate`")
            }
            var object = try JSONSerialization.jsonObject(with: try meta.encoded()) as? [String: Any] ?? [:]
            for part in [DataPart.train, .test] {
                let rows = try DataSource(file: dir).load(part).examples.prefix(max(0, examples))
                object["examples_\(part.rawValue)"] = try rows.map { try JSONSerialization.jsonObject(with: JSONEncoder().encode($0)) }
            }
            print(try JSONText.string(object, pretty: true))
        }
    }

    struct Plane: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Accuracy over the (a, b) plane from per-example predictions: PREFIX.npy, PREFIX.svg, PREFIX.json.",
            discussion: """
            PREDICTIONS is JSONL with either "correct": true/false or "prediction" (compared with "answer" by the final \
            answer) per line, and integer a and b; lines without a and b are paired in order with the examples of \
            --part (so `rulelens eval --out` files work as they are). The held-out squares come from DIR/meta.json. \
            `rulelens eval` writes the same report for operand tasks.
            """)

        @Argument(help: "A directory written by `rulelens data generate` (for the plane and its squares).")
        var dir: String

        @Option(help: "Predictions JSONL (see above).")
        var predictions: String

        @Option(help: "Output prefix: writes PREFIX.npy, PREFIX.svg, PREFIX.json.")
        var out: String

        @Option(help: "The data part the predictions follow when their lines carry no a and b: train, test or all.")
        var part: String = "test"

        @Flag(help: "Replace existing PREFIX.npy / .svg / .json files.")
        var force = false

        @Flag(help: "Print the summary (PREFIX.json's content: inside, centre, rim, outside, overall, per square) as JSON.")
        var json = false

        func run() throws {
            // Refusals change nothing: an existing output is refused before anything is read or computed.
            if !force { try PlaneAccuracy.refuseExistingOutputs(prefix: out) }
            guard let meta = try DataSets.readMeta(dir: dir) else {
                throw RuleLensError("\(dir) has no meta.json", fix: "point at a directory written by `rulelens data generate`")
            }
            guard let plane = meta.plane else {
                throw RuleLensError("task \(meta.task) has no operand plane", fix: "use an operand task: "
                                    + TaskName.allCases.filter(\.hasPlane).map(\.rawValue).joined(separator: ", "))
            }
            guard let dataPart = DataPart(rawValue: part) else {
                throw RuleLensError("--part \(part) is not train, test or all", fix: "pass --part train, --part test or --part all")
            }
            let examples = try DataSource(file: dir).load(dataPart).examples
            let results = try PlaneAccuracy.readResults(path: predictions, examples: examples)
            let report = PlaneAccuracy.compute(results: results, plane: plane, squares: meta.squares)
            let files = try PlaneAccuracy.write(report, prefix: out, title: "\(meta.task) (\(meta.split), \(part)): accuracy")
            if json { return print(try String(contentsOfFile: out + ".json", encoding: .utf8)) }
            PlaneAccuracy.summaryLines(report).forEach { print($0) }
            print("wrote " + files.joined(separator: ", "))
        }
    }
}
