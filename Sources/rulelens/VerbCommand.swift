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

    func run() throws {
        arguments.runtime.apply()
        let outcome = try V.run(arguments, VerbContext(progress: ProgressLine(enabled: !arguments.runtime.quiet)))
        // Under mpirun (data-parallel train) rank 0 speaks for all.
        guard Communicator.existing?.isRoot ?? true else { return }
        if arguments.runtime.json { print(try VerbJSON.text(outcome.result)) }
        else { V.lines(outcome.result, arguments).forEach { print($0) } }
    }
}
