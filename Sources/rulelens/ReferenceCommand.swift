import ArgumentParser
import RuleLensRun

/// `rulelens reference --out docs/reference`: the per-verb reference pages, generated from the declarations.
struct ReferenceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reference",
        abstract: "Write the command and step reference (one Markdown page per verb, generated from its declaration).")

    @Option(help: "Folder for the pages.") var out: String = "docs/reference"

    /// The commands that are not verbs, documented from their declarations beside the verbs.
    static var commands: [CommandReference] {
        [CommandReference(InfoCommand.self, path: ["info"]), CommandReference(HooksCommand.self, path: ["hooks"]),
         CommandReference(DumpInfoCommand.self, path: ["dump-info"]), CommandReference(TokenizeCommand.self, path: ["tokenize"]),
         CommandReference(DataCommand.Show.self, path: ["data", "show"]), CommandReference(DataCommand.Plane.self, path: ["data", "plane"]),
         CommandReference(RunCommand.self, path: ["run"]), CommandReference(FindingsCommand.self, path: ["findings"]),
         CommandReference(ReferenceCommand.self, path: ["reference"])]
    }

    func run() throws {
        try ReferencePages.write(to: out, commands: Self.commands)
        print("wrote \(ReferencePages.all(commands: Self.commands).count) pages into \(out)")
    }
}
