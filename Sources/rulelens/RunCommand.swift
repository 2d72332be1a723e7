import ArgumentParser
import Foundation
import RuleLensJobs
import RuleLensRun

/// `rulelens run Probes/NAME.yaml`: a declarative experiment (steps, caching, expectations, report).
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a declarative experiment spec (Probes/NAME.yaml): steps with caching, expectations, an HTML report.",
        discussion: """
        Steps whose options, input files and RuleLens version are unchanged (and whose outputs exist) are skipped; \
        a killed run continues where it stopped. Writes OUT/results.json and OUT/report/index.html. \
        Exit code 1 when an expectation fails (a --quick smoke run fails only when one cannot be evaluated). \
        Spec format: Probes/README.md.
        """)

    @Argument(help: "The spec (YAML).") var spec: String?
    @Option(help: "Run folder (default runs/NAME, runs/NAME-quick with --quick).") var out: String?
    @Option(help: "Run only the step with this id (in every variant); the others must be up to date.") var only: String?
    @Flag(help: "Redo the steps even when up to date (with --only: that step).") var force = false
    @Flag(help: "Shrink every size for a smoke run (seconds, numbers meaningless).") var quick = false
    @Flag(help: "List the specs in --probes and their claims.") var list = false
    @Option(help: "Folder of specs for --list.") var probes: String = "Probes"
    @Option(help: "Threads (default: all cores).") var threads: Int?
    @Flag(help: "No progress lines.") var quiet = false

    func run() throws {
        if list {
            print(SpecCatalog.describe(try SpecCatalog.list(dir: probes)))
            return
        }
        guard let spec else { throw RuleLensError("no spec given", fix: "pass a spec, e.g. `rulelens run Probes/demo.yaml`, or --list") }
        var o = RunOptions(specPath: spec)
        o.outDir = out; o.only = only; o.force = force; o.quick = quick; o.threads = threads; o.progress = !quiet
        let runner = ExperimentRunner(options: o)
        let summary = try runner.run()
        print("results: \(summary.resultsPath)")
        summary.expectationLines.forEach { print($0) }
        let failed = summary.failed
        print(summary.expectations.isEmpty ? "no expectations"
              : "\(summary.expectations.count - failed)/\(summary.expectations.count) expectations passed"
                + (summary.quick && failed > 0 ? " (--quick: a smoke run, failures do not set the exit code)" : ""))
        print("report: \(summary.reportPath)")
        if summary.exitCode != 0 { throw ExitCode(summary.exitCode) }
    }
}
