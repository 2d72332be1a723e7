import ArgumentParser
import Foundation
import RuleLensJobs

@main
struct RuleLensCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rulelens",
        abstract: "Train, record and probe transformers on rule-governed reasoning tasks.",
        version: RuleLensVersion.string,
        subcommands: [
            DataCommand.self,
            TrainCommand.self, EvalCommand.self, LogitsCommand.self,
            DumpCommand.self, DumpInfoCommand.self,
            ProbeCommand.self, TokenizeCommand.self,
            RunCommand.self,
        ]
    )

    static func main() {
        BLASEnvironment.ensureCoreTypeOrReexec()
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as RuleLensError {
            FileHandle.standardError.write(Data((error.description + "\n").utf8))
            Foundation.exit(1)
        } catch {
            exit(withError: error)
        }
    }
}
