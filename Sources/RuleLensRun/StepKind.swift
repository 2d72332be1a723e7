import Foundation
import RuleLensJobs
import RuleLensVerbs
import RuleLensNumerics

/// A kind of spec step. A verb's step is generated from its declaration (`StepKind(verb:)`): the spec's mapping
/// becomes the verb's argument list, parsed by the same type as the command line, and the step's folder is its `--out`.
public struct StepKind {
    public let kind: String
    public let summary: String
    /// What `${ID}` names, relative to the step's folder ("" = the folder itself).
    public let output: String
    public let options: [StepOption]
    /// The verb it runs (nil for a step that is not a verb).
    public let verb: AnyVerb?
    let quick: (inout StepOptions) -> Void
    let prepare: (StepOptions, _ dir: String) throws -> StepInvocation
    /// Whether `dir` holds a killed attempt this step can continue.
    let canContinue: (String) -> Bool

    /// The step of a verb: every option of the command, with its name, default and validation.
    public init(verb: AnyVerb) {
        kind = verb.kind; summary = verb.abstract; output = verb.stepOutput; self.verb = verb
        options = verb.options.filter { $0.name != verb.outputOption }.map { o in
            let type: StepOptionType
            if o.kind == .flag { type = .bool }
            else if let values = o.allValues, !values.isEmpty, !o.isRepeating { type = .choice(values) }
            else if o.isRepeating { type = .list }
            else { type = .string }
            return StepOption(o.name, type, o.help, required: !o.isOptional && o.defaultValue == nil && o.kind != .flag)
        }
        quick = { o in
            var q = QuickOptions(values: o.values.compactMapValues(\.scalar))
            verb.quick(&q)
            for (k, v) in q.values where o.values[k]?.scalar != v { o.set(k, v) }
        }
        canContinue = verb.canContinue
        prepare = { o, dir in
            let argv = try StepKind.argumentList(o, verb: verb, dir: dir)
            let prepared: PreparedVerb
            do { prepared = try verb.prepare(argv) } catch let e as VerbParseError {
                // Name the spec line of the option the message is about.
                let key = o.values.keys.sorted().first { e.message.contains("--\($0)") }
                let line = key.flatMap { o.values[$0]?.line } ?? o.line
                throw RuleLensError("\(o.specPath) line \(line): step \(o.id) (\(o.kind))\(key.map { ", option \($0)" } ?? ""): \(e.message)",
                                    fix: "see `rulelens \(verb.commandPath.joined(separator: " ")) --help` for what the option takes")
            }
            return StepInvocation(command: verb.commandLine(argv), inputs: prepared.inputs, outputs: prepared.outputs) { ctx, continuing in
                // A killed attempt continues with the verb's own resume switch; the recorded command is the fresh one.
                var run = prepared
                if continuing, let flag = verb.continueFlag { run = try verb.prepare(argv + ["--\(flag)"]) }
                let record = try run.run(VerbContext(progress: ctx.progress, log: ctx.log, inSpec: true))
                return StepOutcome(results: try RunValue.parse(json: record.json),
                                   figures: record.figures.map { StepFigure(title: $0.title, file: $0.file) }, files: record.files)
            }
        }
    }

    /// A spec step's mapping as the verb's argument list, in declaration order: `--key value`, a flag for `true`,
    /// a repeated option once per list item (a list for a single-valued option is comma-joined), nothing for an empty
    /// value, then `--out DIR` and `--threads N`; positionals (a method) come first, as a person types them
    /// (`rulelens probe pca --file …`).
    static func argumentList(_ o: StepOptions, verb: AnyVerb, dir: String) throws -> [String] {
        if let out = verb.outputOption, o.has(out) {
            throw RuleLensError(o.problem(out, "the step's folder is its --\(out)"), fix: "drop `\(out):`; read the step's output as ${\(o.id)}")
        }
        var argv: [String] = [], positionals: [String] = []
        for option in verb.options {
            // An empty list names no value: taken as "leave it out", `hooks: []` would dump every site. Refused.
            if case .list(let items, _)? = o.values[option.name], items.isEmpty {
                throw RuleLensError(o.problem(option.name, "an empty list gives --\(option.name) no value"),
                                    fix: "list at least one value, or leave `\(option.name):` out (or set it to \"\") for the default")
            }
            // An empty value leaves the option out (its default applies): a sweep can switch an option off per variant.
            guard let node = o.values[option.name], node.commandLineText != "" else { continue }
            switch option.kind {
            case .flag:
                if try o.bool(option.name) { argv.append("--" + option.name) }
            case .positional:
                if case .list(let items, _) = node { positionals += items.map(\.commandLineText) } else { positionals.append(node.commandLineText) }
            case .option:
                if option.isRepeating, case .list(let items, _) = node {
                    for item in items { argv += ["--" + option.name, item.commandLineText] }
                } else {
                    argv += ["--" + option.name, node.commandLineText]
                }
            }
        }
        if let out = verb.outputOption { argv += ["--" + out, dir] }
        // The thread count in force, so the command line reproduces the step's bits.
        if !o.has("threads") { argv += ["--threads", String(Parallel.threads)] }
        return positionals + argv
    }
}

/// A step made concrete for one folder: its command line, its inputs, and how to run it.
public struct StepInvocation {
    /// The command line that does what this step does (`rulelens …`), for the report.
    public let command: String
    /// The files and folders it reads (their content is part of the cache key).
    public let inputs: [String]
    /// The paths it writes besides its folder (the runner keeps them inside the run folder).
    public let outputs: [String]
    /// Runs it; `continuing`: a killed attempt with the same fingerprint is in the folder.
    let run: (StepContext, _ continuing: Bool) throws -> StepOutcome
}
