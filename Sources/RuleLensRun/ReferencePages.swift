import ArgumentParser
import Foundation
import RuleLensVerbs

/// A command of the command line that is not a verb (info, hooks, dump-info, data show, run, …), documented from its
/// own declaration beside the verbs.
public struct CommandReference {
    public let commandPath: [String]
    public let abstract: String
    public let discussion: String
    public let options: [VerbOption]

    public init<C: ParsableCommand>(_ command: C.Type, path: [String]) {
        commandPath = path
        abstract = C.configuration.abstract
        discussion = C.configuration.discussion
        options = VerbOption.declared(by: C.self)
    }
}

/// The reference pages in docs/reference/, generated from each verb's declaration (so they cannot drift from what the
/// command and the spec step accept). `rulelens reference --out docs/reference` writes them; a test checks that the
/// committed pages are this output.
public enum ReferencePages {
    /// File name → Markdown; `commands` adds the commands that are not verbs.
    public static func all(commands: [CommandReference] = []) -> [String: String] {
        var pages: [String: String] = [:]
        let verbs = StepRegistry.all.compactMap(\.verb)
        for verb in verbs { pages[fileName(verb)] = page(verb) }
        var index = """
            # Command and step reference

            Generated from each verb's one declaration (`Sources/RuleLensVerbs/`): the command line and the spec step
            `- KIND: {…}` of `rulelens run` accept the same options, with the same defaults and validation, and give
            the same result keys (`--json` prints what a spec's `expect:` reads). Regenerate with
            `rulelens reference --out docs/reference`.

            | command | spec step | what it does |
            |---|---|---|

            """
        for verb in verbs {
            index += "| [`rulelens \(verb.commandPath.joined(separator: " "))`](\(fileName(verb))) | `\(verb.kind)` | \(cell(verb.abstract)) |\n"
        }
        for command in commands {
            let file = command.commandPath.joined(separator: "-") + ".md"
            pages[file] = commandPage(command)
            index += "| [`rulelens \(command.commandPath.joined(separator: " "))`](\(file)) | — | \(cell(command.abstract)) |\n"
        }
        let others = StepRegistry.all.filter { $0.verb == nil }
        if !others.isEmpty {
            index += "\nSteps that are not (yet) generated from a verb: " + others.map { "`\($0.kind)`" }.joined(separator: ", ") + ".\n"
        }
        pages["README.md"] = index
        return pages
    }

    static func fileName(_ verb: AnyVerb) -> String { verb.commandPath.joined(separator: "-") + ".md" }

    static func cell(_ s: String) -> String {
        s.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
    }

    static func page(_ verb: AnyVerb) -> String {
        let command = "rulelens " + verb.commandPath.joined(separator: " ")
        var out = "# `\(command)`\n\n\(verb.abstract)\n\n"
        if !verb.discussion.isEmpty { out += verb.discussion + "\n\n" }
        out += "In a spec: `- \(verb.kind): {option: value, …}` — the same options without `--`"
        if let o = verb.outputOption {
            out += "; the step's folder is its `--\(o)`, and `${ID}` names "
                + (verb.stepOutput.isEmpty ? "that folder" : "`\(verb.stepOutput)` in it")
        }
        out += ". With `--json` the command prints the result a spec's `expect:` reads as `ID.key`.\n"
        return out + optionTables(verb.options, spec: true)
    }

    static func commandPage(_ command: CommandReference) -> String {
        var out = "# `rulelens \(command.commandPath.joined(separator: " "))`\n\n\(command.abstract)\n\n"
        if !command.discussion.isEmpty { out += command.discussion + "\n\n" }
        out += "Not a spec step.\n"
        return out + optionTables(command.options, spec: false)
    }

    /// The option tables of a page, one per option group (`spec`: name each positional's spec key too).
    static func optionTables(_ all: [VerbOption], spec: Bool) -> String {
        var out = ""
        let sections = all.filter { !$0.isHidden }.reduce(into: [(String, [VerbOption])]()) { acc, o in
            let title = o.section ?? "Options"
            if let i = acc.firstIndex(where: { $0.0 == title }) { acc[i].1.append(o) } else { acc.append((title, [o])) }
        }
        for (title, options) in sections {
            out += "\n## \(title)\n\n| option | values | default | |\n|---|---|---|---|\n"
            for o in options {
                let name: String
                switch o.kind {
                case .positional: name = "`<\(o.name)>`" + (spec ? " (spec: `\(o.name)`)" : "")
                case .flag: name = o.longNames.map { "`--\($0)`" }.joined(separator: " / ")
                case .option: name = "`--\(o.name)`" + (o.isRepeating ? " (repeatable; spec: a list)" : "")
                }
                let values = o.kind == .flag ? "flag" : (o.allValues.map { $0.map { "`\($0)`" }.joined(separator: ", ") } ?? (o.valueName.map { "`<\($0)>`" } ?? ""))
                let required = !o.isOptional && o.defaultValue == nil && o.kind != .flag
                let def = o.defaultValue.map { "`\($0)`" } ?? (required ? "**required**" : "")
                out += "| \(name) | \(cell(values)) | \(cell(def)) | \(cell(o.help)) |\n"
            }
        }
        return out
    }

    /// Writes every page into `dir` (created), replacing pages of the same name.
    public static func write(to dir: String, commands: [CommandReference] = []) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (name, text) in all(commands: commands) { try Data(text.utf8).write(to: URL(fileURLWithPath: (dir as NSString).appendingPathComponent(name)), options: .atomic) }
    }
}
