import ArgumentParser
import Foundation
import RuleLensJobs
import RuleLensVerbs
import RuleLensRun
import RuleLensNumerics

/// `rulelens run Probes/NAME.yaml`: a declarative experiment (steps, caching, expectations, report).
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a declarative experiment spec (Probes/NAME.yaml): steps with caching, expectations, an HTML report.",
        discussion: """
        Steps whose options, input files and RuleLens version are unchanged (and whose outputs exist) are skipped; \
        a killed run continues where it stopped. Writes OUT/results.json and OUT/report/index.html. \
        Exit codes: 0 every expectation PASS, 1 one FAILs, 2 the spec is broken or could not run (an error before \
        the checks, or a check that cannot be evaluated), 3 none fails but one is INCONCLUSIVE (a precondition it \
        needs failed). A --quick smoke run exits 0 unless it is broken. Spec format: Probes/README.md.
        """)

    @Argument(help: "The spec (YAML).") var spec: String?
    @Option(help: "Run folder (default runs/NAME, runs/NAME-quick with --quick).") var out: String?
    @Option(help: "Run only the step with this id (in every variant); the others must be up to date.") var only: String?
    @Flag(help: "Redo the steps even when up to date (with --only: that step).") var force = false
    @Flag(help: "Shrink every size for a smoke run (seconds, numbers meaningless).") var quick = false
    @Flag(help: "Read the spec and plan the run, print each variant's folder and each step's command line, and stop: nothing is run or written.")
    var dryRun = false
    @Flag(help: "List the specs in --probes and their claims.") var list = false
    @Option(help: "Folder of specs for --list.") var probes: String = "Probes"
    @Flag(help: "List the step kinds a spec may use, with the command each runs and its options (--json: as JSON).")
    var listSteps = false
    @Flag(help: "With --list-steps: print JSON.") var json = false
    @Flag(help: "Print the JSON Schema of specs (generated from every verb's declaration; Probes/rulelens-spec.schema.json is this output).")
    var schema = false
    @Option(help: "Threads (default: all cores; with --jobs, shared among the jobs).") var threads: Int?
    @Option(help: """
        Run up to N of the sweep's variants at once, each in its own process (default 1: in turn). Faster for sweeps \
        of small models, which barely use a second thread; results can differ in the last bits from a run with other \
        thread counts.
        """) var jobs: Int = 1
    @Option(help: ArgumentHelp(SpecLimits.help, valueName: "name=n")) var limit: [String] = []
    @Option(help: .hidden) var variant: Int?
    @Flag(help: "No progress lines.") var quiet = false

    func run() throws {
        // A broken spec or a run that could not finish exits 2, apart from a failed expectation (1).
        do { try runOrList() } catch let e as RuleLensError {
            FileHandle.standardError.write(Data((e.description + "\n").utf8))
            throw ExitCode(Verdict.brokenExitCode)
        } catch let e where !(e is ExitCode) && !(e is CleanExit) && !(e is ValidationError) {
            FileHandle.standardError.write(Data("error: \(e)\n".utf8))
            throw ExitCode(Verdict.brokenExitCode)
        }
    }

    func runOrList() throws {
        if listSteps {
            print(json ? try StepRegistry.listingJSON() : StepRegistry.listing())
            return
        }
        if schema {
            print(try SpecSchema.json(), terminator: "")
            return
        }
        if list {
            print(SpecCatalog.describe(try SpecCatalog.list(dir: probes)))
            return
        }
        guard let spec else { throw RuleLensError("no spec given", fix: "pass a spec, e.g. `rulelens run Probes/demo.yaml`, or --list") }
        guard jobs >= 1 else { throw RuleLensError("--jobs \(jobs) is not a number of processes", fix: "give --jobs 1 or more (e.g. the number of cores)") }
        var o = RunOptions(specPath: spec)
        o.outDir = out; o.only = only; o.force = force; o.quick = quick; o.threads = threads; o.progress = !quiet
        o.limits = try SpecLimits(settings: limit)
        o.jobs = jobs; o.executable = FileManager.default.fileExists(atPath: "/proc/self/exe")
            ? URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path : CommandLine.arguments[0]
        let runner = ExperimentRunner(options: o)
        if let variant { return try runner.runVariant(variant) }
        if dryRun {
            try runner.plan().outline.forEach { print($0) }
            return
        }
        let summary = try runner.run()
        print("results: \(summary.resultsPath)")
        summary.expectationLines.forEach { print($0) }
        print(summary.expectations.isEmpty ? "no expectations"
              : "\(summary.passed)/\(summary.expectations.count) expectations passed"
                + (summary.inconclusive > 0 ? ", \(summary.inconclusive) inconclusive" : "")
                + " — \(summary.verdict.rawValue)"
                + (summary.quick && summary.verdict != .pass ? " (--quick: a smoke run, only errors set the exit code)" : ""))
        print("report: \(summary.reportPath)")
        if summary.exitCode != 0 { throw ExitCode(summary.exitCode) }
    }
}
