import ArgumentParser
import Foundation
import RuleLensJobs
import RuleLensNumerics

/// One option of a verb, read from its swift-argument-parser declaration (the `--experimental-dump-help` form),
/// so the spec runner, the JSON Schema and the reference pages list exactly what the command line accepts.
public struct VerbOption: Sendable, Equatable {
    public enum Kind: String, Sendable, Decodable { case positional, option, flag }
    public var kind: Kind
    /// The long name without `--` (a positional: its value name). A spec writes this as the key.
    public var name: String
    /// Every long name (a flag may have an inversion, `--x/--no-x`).
    public var longNames: [String]
    public var isOptional: Bool
    public var isRepeating: Bool
    public var defaultValue: String?
    /// The allowed values of a typed enum.
    public var allValues: [String]?
    public var help: String
    public var valueName: String?
    /// Hidden options (benchmark switches) are accepted but not documented.
    public var isHidden: Bool
    /// The option group's title, e.g. "Generated data".
    public var section: String?
}

extension VerbOption {
    /// The options `A` declares (help excluded), in declaration order.
    public static func declared<A: ParsableArguments>(by type: A.Type) -> [VerbOption] {
        guard let dump = try? JSONDecoder().decode(ArgumentDump.self, from: Data(A._dumpHelp().utf8)) else { return [] }
        return (dump.command.arguments ?? []).compactMap { a -> VerbOption? in
            let longs = (a.names ?? []).filter { $0.kind == "long" || $0.kind == "longWithSingleDash" }.map(\.name)
            if longs.contains("help") || longs.contains("experimental-dump-help") || longs.contains("version") { return nil }
            let name = a.kind == .positional ? (a.valueName ?? "") : (a.preferredName?.name ?? longs.first ?? "")
            guard !name.isEmpty else { return nil }
            return VerbOption(kind: a.kind, name: name, longNames: longs.isEmpty ? [name] : longs, isOptional: a.isOptional,
                              isRepeating: a.isRepeating, defaultValue: a.defaultValue, allValues: a.allValues,
                              help: a.abstract ?? "", valueName: a.valueName, isHidden: !a.shouldDisplay, section: a.sectionTitle)
        }
    }
}

/// A verb with its types erased, for the spec runner's registry and the generated documentation.
public struct AnyVerb {
    public let kind: String
    public let commandPath: [String]
    public let abstract: String
    public let discussion: String
    public let stepOutput: String
    /// The option a spec step's folder is passed as (`out`), or nil.
    public let outputOption: String?
    public let options: [VerbOption]
    public let quick: (inout QuickOptions) -> Void
    public let continueFlag: String?
    public let canContinue: (String) -> Bool
    /// Parses an argument list (validation included) into an invocation ready to run.
    public let prepare: ([String]) throws -> PreparedVerb

    public init<V: Verb>(_ verb: V.Type) {
        kind = V.kind; commandPath = V.commandPath; abstract = V.abstract; discussion = V.discussion
        stepOutput = V.stepOutput; outputOption = V.Arguments.outputOption
        options = VerbOption.declared(by: V.Arguments.self)
        quick = V.quick
        continueFlag = V.continueFlag
        canContinue = V.canContinue
        prepare = { argv in
            let arguments: V.Arguments
            do {
                arguments = try V.Arguments.parse(argv)
                try FiniteNumbers.check(arguments)
            } catch {
                throw VerbParseError(message: V.Arguments.message(for: error))
            }
            return PreparedVerb(arguments: argv, inputs: inputPaths(in: arguments), outputs: outputPaths(in: arguments)) { context in
                arguments.runtime.apply()
                let outcome = try V.execute(arguments, context)
                return VerbRecord(json: try VerbJSON.data(outcome.result), figures: outcome.figures, files: outcome.files,
                                  lines: V.lines(outcome.result, arguments))
            }
        }
    }

    /// The command line that runs this verb with `arguments`, quoted for a POSIX shell.
    public func commandLine(_ arguments: [String]) -> String {
        (["rulelens"] + commandPath + arguments.map(shellQuote)).joined(separator: " ")
    }

    /// The option named `name` (a long name, inversions included).
    public func option(_ name: String) -> VerbOption? { options.first { $0.longNames.contains(name) || $0.name == name } }
}

/// An argument list that parsed, ready to run.
public struct PreparedVerb {
    public let arguments: [String]
    /// The files and folders it reads (its `InputPath` options).
    public let inputs: [String]
    /// The paths it writes besides its output option (its `OutputPath` options).
    public let outputs: [String]
    public let run: (VerbContext) throws -> VerbRecord
}

/// A verb's result as JSON, with the figures, files and lines it produced.
public struct VerbRecord {
    public var json: Data
    public var figures: [VerbFigure]
    public var files: [String]
    public var lines: [String]
}

/// An argument list the verb's declaration rejected (swift-argument-parser's message).
public struct VerbParseError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// The one JSON form of every result: sorted keys; a non-finite number is an error, never printed as a number.
public enum VerbJSON {
    public static func data<R: Encodable>(_ result: R) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do { return try encoder.encode(result) } catch EncodingError.invalidValue(let value, let context) {
            let path = context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
            throw RuleLensError("the result has a non-finite value (\(value)) at \(path.isEmpty ? "the top" : path)",
                                fix: "the inputs gave no number there (e.g. an empty or degenerate set); check the inputs")
        }
    }

    public static func text<R: Encodable>(_ result: R) throws -> String { String(decoding: try data(result), as: UTF8.self) }
}

/// Quotes `s` for a POSIX shell when it needs it.
public func shellQuote(_ s: String) -> String {
    s.allSatisfy { $0.isLetter || $0.isNumber || "-_./,=:+@%".contains($0) } && !s.isEmpty
        ? s : "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
}

/// `_dumpHelp()`'s JSON (swift-argument-parser's ToolInfoV0), the parts read here.
private struct ArgumentDump: Decodable {
    struct Command: Decodable { var arguments: [Argument]? }
    struct Argument: Decodable {
        struct Name: Decodable { var kind: String; var name: String }
        var kind: VerbOption.Kind
        var names: [Name]?
        var preferredName: Name?
        var valueName: String?
        var defaultValue: String?
        var allValues: [String]?
        var abstract: String?
        var isOptional: Bool
        var isRepeating: Bool
        var shouldDisplay: Bool
        var sectionTitle: String?
    }
    var command: Command
}
