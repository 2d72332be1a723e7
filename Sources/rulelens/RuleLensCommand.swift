import ArgumentParser
import Foundation
import RuleLensDistributed
import RuleLensJobs
import RuleLensVerbs
import RuleLensNumerics
import RuleLensStore

@main
struct RuleLensCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rulelens",
        abstract: "Train, record and probe transformers on rule-governed reasoning tasks.",
        version: RuleLensVersion.string,
        subcommands: [
            DataCommand.self,
            VerbCommand<TrainVerb>.self, VerbCommand<EvalVerb>.self, VerbCommand<LogitsVerb>.self,
            VerbCommand<DumpVerb>.self, DumpInfoCommand.self, VerbCommand<RelabelVerb>.self,
            VerbCommand<ProbeVerb>.self, ProbeNTKCommand.self, TokenizeCommand.self, VerbCommand<GradVerb>.self, VerbCommand<RetrieveVerb>.self,
            InfoCommand.self, HooksCommand.self, VerbCommand<InitVerb>.self,
            VerbCommand<AblateVerb>.self, VerbCommand<PatchVerb>.self, VerbCommand<LensVerb>.self,
            RunCommand.self, FindingsCommand.self, ReferenceCommand.self,
            VAECommand.self,
        ]
    )

    static func main() {
        BLASEnvironment.ensureCoreTypeOrReexec()
        HDF5.installCrashGuard()   // a crash inside HDF5 (a damaged file) is an error paragraph, not a signal
        signal(SIGXFSZ, SIG_IGN)   // a write past `ulimit -f` fails (EFBIG) and is reported, rather than killing the process
        do {
            var command = try parseAsRoot(ProbeNTKCommand.route(Array(CommandLine.arguments.dropFirst())))
            try command.run()
            // Under mpirun, commands that used MPI end it cleanly (a rank that exits without MPI_Finalize is an error).
            Communicator.existing?.finalize()
        } catch let code as ExitCode {
            // A command's own exit status (`rulelens run`: 1 FAIL, 2 broken, 3 INCONCLUSIVE), not an error paragraph.
            Communicator.existing?.finalize()
            exit(withError: code)
        } catch let error as RuleLensError {
            Communicator.exit(after: FileSystemError.mapped(error) ?? error)
        } catch let error as CollectiveError {
            Communicator.exit(after: error)
        } catch {
            // A file-system error no library code mapped still reaches the user as a problem and a fix.
            if let mapped = FileSystemError.mapped(error) { Communicator.exit(after: mapped) }
            if Communicator.existing != nil { Communicator.exit(after: error) }
            exit(withError: error)
        }
    }
}
