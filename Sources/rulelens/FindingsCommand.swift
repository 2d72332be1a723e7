import ArgumentParser
import RuleLensRun

/// `rulelens findings RUN… --out docs/findings-generated.md`: the findings page from runs' results.json.
struct FindingsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "findings",
        abstract: "Write the findings page (Markdown) from spec runs' results.json: each claim, the study's number, this run's number with its interval, the verdict and the deviations.")

    @Argument(help: "Run folders (the --out of `rulelens run`) or their results.json files.") var runs: [String] = []
    @Option(help: "Markdown file to write (default: print the page).") var out: String?

    func run() throws {
        let page = try FindingsPage.write(runs: runs, to: out)
        if let out { print("wrote \(out) (\(runs.count) run\(runs.count == 1 ? "" : "s"))") } else { print(page, terminator: "") }
    }
}
