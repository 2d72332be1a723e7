import ArgumentParser
import RuleLensRun

/// `rulelens reference --out docs/reference`: the per-verb reference pages, generated from the declarations.
struct ReferenceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reference",
        abstract: "Write the command and step reference (one Markdown page per verb, generated from its declaration).")

    @Option(help: "Folder for the pages.") var out: String = "docs/reference"

    func run() throws {
        try ReferencePages.write(to: out)
        print("wrote \(ReferencePages.all().count) pages into \(out)")
    }
}
