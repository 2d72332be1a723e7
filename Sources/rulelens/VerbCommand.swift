import ArgumentParser
import RuleLensDistributed
import RuleLensJobs
import RuleLensVerbs

/// A command generated from a verb's one declaration: parse, run, print the result (`--json`: the spec's keys).
struct VerbCommand<V: Verb>: ParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: V.commandPath.last!, abstract: V.abstract, discussion: V.discussion)
    }

    @OptionGroup var arguments: V.Arguments

    /// The checks every verb shares beyond its own `validate()` (finite numbers), as a spec step runs them too.
    func validate() throws { try FiniteNumbers.check(arguments) }

    func run() throws { try Self.run(arguments) }

    static func run(_ arguments: V.Arguments) throws {
        arguments.runtime.apply()
        let outcome = try V.execute(arguments, VerbContext(progress: ProgressLine(enabled: !arguments.runtime.quiet)))
        // Under mpirun, rank 0 speaks for the run.
        if let world = Communicator.existing, !world.isRoot { return }
        if arguments.runtime.json { print(try VerbJSON.text(outcome.result)) }
        else { V.lines(outcome.result, arguments).forEach { print($0) } }
    }
}

/// `rulelens probe ntk …`: the `ntk` verb. `probe`'s method is a positional, which swift-argument-parser reads before
/// it would route to a subcommand, so `main` sends `probe ntk` here (the command stays `rulelens probe ntk`).
struct ProbeNTKCommand: ParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: "probe-ntk", abstract: NTKVerb.abstract, discussion: NTKVerb.discussion, shouldDisplay: false)
    }

    @OptionGroup var arguments: NTKVerb.Arguments

    func validate() throws { try FiniteNumbers.check(arguments) }

    func run() throws { try VerbCommand<NTKVerb>.run(arguments) }

    /// The argument list with `probe ntk` as this command's name.
    static func route(_ arguments: [String]) -> [String] {
        arguments.count >= 2 && arguments[0] == "probe" && arguments[1] == "ntk" ? ["probe-ntk"] + arguments.dropFirst(2) : arguments
    }
}
