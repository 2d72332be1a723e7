import ArgumentParser
import Foundation
import RuleLensJobs
import RuleLensModel
import RuleLensNumerics

/// One verb of the workbench (`train`, `eval`, `dump`, …), declared once: its typed arguments, its typed result and
/// its run function. The command line (`rulelens eval …`) and a spec step (`- eval: {…}`) are both generated from
/// this declaration, so they accept the same options with the same defaults and validation, and give the same keys.
public protocol Verb {
    /// The options: a swift-argument-parser type with typed enums, defaults, help, and cross-option rules in `validate()`.
    associatedtype Arguments: VerbArguments
    /// What `--json` prints and what a spec's `expect:` reads (one set of keys).
    associatedtype Result: Encodable

    /// The command path (`["eval"]`, `["vae", "train"]`).
    static var commandPath: [String] { get }
    /// The spec step's kind: by default the command path joined by `-` (`vae-train`).
    static var kind: String { get }
    static var abstract: String { get }
    static var discussion: String { get }
    /// What `${ID}` names in a spec, relative to the step's folder ("" = the folder itself, e.g. a checkpoint).
    static var stepOutput: String { get }
    /// Shrinks sizes for `rulelens run --quick` (a smoke run that exercises every step in seconds), on the spec's
    /// option values (keys are option names without `--`).
    static func quick(_ options: inout QuickOptions)

    /// The flag that continues a killed run in the output folder (`resume`), for verbs that can; and whether `dir`
    /// holds such a run.
    static var continueFlag: String? { get }
    static func canContinue(dir: String) -> Bool

    /// Whether the verb publishes its outputs as it goes, each one a kill-proof unit (a training run's saves), rather
    /// than all together when it succeeds (see `execute`).
    static var publishesAsItGoes: Bool { get }

    /// Runs the verb. Throws `RuleLensError` on bad input. Callers go through `execute`.
    static func run(_ arguments: Arguments, _ context: VerbContext) throws -> VerbOutcome<Result>
    /// The human-readable lines the command prints without `--json`.
    static func lines(_ result: Result, _ arguments: Arguments) -> [String]
}

extension Verb {
    public static var publishesAsItGoes: Bool { false }

    /// The one way a verb runs, from the command line and from a spec step: its output files are published together
    /// when it succeeds (an `OutputCommit`: a failure part-way leaves none of them, and no folder it created), unless
    /// it publishes as it goes; and a file-system error that escapes it becomes a `RuleLensError` with the path and
    /// the fix (`FileSystemError`).
    public static func execute(_ arguments: Arguments, _ context: VerbContext) throws -> VerbOutcome<Result> {
        do {
            return publishesAsItGoes ? try run(arguments, context) : try OutputCommit.run { try run(arguments, context) }
        } catch let error as RuleLensError {
            throw FileSystemError.mapped(error) ?? error
        } catch {
            throw FileSystemError.mapped(error) ?? error
        }
    }

    public static var discussion: String { "" }
    public static var stepOutput: String { "" }
    public static func quick(_ options: inout QuickOptions) {}
    public static var continueFlag: String? { nil }
    public static func canContinue(dir: String) -> Bool { false }
    /// The spec step kind (`eval`, `vae-train`).
    public static var kind: String { commandPath.joined(separator: "-") }
}

/// A verb's options: parsed from the command line or from a spec step's mapping by the same type.
public protocol VerbArguments: ParsableArguments {
    /// The runtime options every verb shares (threads, quiet, json, force, no-verify).
    var runtime: RuntimeOptions { get set }
    /// The output folder or file the verb writes, when it writes one: a spec step sets it to the step's folder.
    /// Nil for verbs that write nothing but their result.
    static var outputOption: String? { get }
}

extension VerbArguments {
    public static var outputOption: String? { "out" }
}

/// Options every verb shares. The thread count is resolved here and nowhere else.
public struct RuntimeOptions: ParsableArguments, Sendable {
    @Option(parsing: .unconditional, help: "Threads for RuleLens loops and BLAS (0 or default: all cores). Results are bitwise reproducible only under the same kernel and thread count.")
    public var threads: Int?
    @Flag(help: "No progress line.") public var quiet = false
    @Flag(help: "Print the result as one JSON object (the keys a spec's expect: reads).") public var json = false
    @Flag(help: "Replace outputs that already exist.") public var force = false
    @Flag(help: "Do not check checkpoint files against the SHA-256 manifest in their rulelens.json (for files edited on purpose).")
    public var noVerify = false

    public init() {}

    public func validate() throws {
        if let threads, threads < 0 {
            throw ValidationError("--threads is \(threads), but it must be 0 (all cores) or positive; pass --threads 0 or e.g. --threads 2")
        }
    }

    /// Applies the options to the process: thread count and checkpoint verification.
    public func apply() {
        if noVerify { Checkpoint.verifiesByDefault = false }
        if let threads { Parallel.configure(threads: threads) }
    }
}

/// Where a verb runs: its progress line, its log, and (in a spec) its step folder.
public struct VerbContext {
    public var progress: ProgressLine
    /// A line for the log (stderr); the command line prints nothing extra.
    public var log: (String) -> Void
    /// True when run as a spec step (the runner owns the output folder and may continue a killed attempt in it).
    public var inSpec: Bool

    public init(progress: ProgressLine, log: @escaping (String) -> Void = { _ in }, inSpec: Bool = false) {
        self.progress = progress; self.log = log; self.inSpec = inSpec
    }
}

/// A picture a verb drew (an SVG file), inlined into a spec's report.
public struct VerbFigure: Sendable, Codable, Equatable {
    public var title: String
    /// Path relative to the verb's output folder.
    public var file: String
    public init(title: String, file: String) { self.title = title; self.file = file }
}

/// What a verb produced: its result, and the figures and files a report links (relative to its output folder).
public struct VerbOutcome<Result: Encodable> {
    public var result: Result
    public var figures: [VerbFigure]
    public var files: [String]
    public init(_ result: Result, figures: [VerbFigure] = [], files: [String] = []) {
        self.result = result; self.figures = figures; self.files = files
    }
}

/// A spec step's option values before parsing, for `quick` to shrink.
public struct QuickOptions {
    public var values: [String: String]
    public init(values: [String: String]) { self.values = values }
    public mutating func set(_ key: String, _ value: String) { values[key] = value }
    /// Caps an integer option at `limit` (setting it when absent and `orSet`).
    public mutating func cap(_ key: String, _ limit: Int, orSet: Bool = true) {
        if let s = values[key], let v = Int(s) { if v > limit { values[key] = String(limit) } }
        else if values[key] == nil && orSet { values[key] = String(limit) }
    }
}

/// A file or folder a verb reads. Typed, so the spec runner finds every input of a step (its content is part of the
/// step's cache key) from the parsed arguments, without a hand-kept list.
public struct InputPath: ExpressibleByArgument, Sendable, Hashable, CustomStringConvertible {
    public var path: String
    public init(_ path: String) { self.path = path }
    public init?(argument: String) { path = argument }
    public var description: String { path }
}

/// A file or folder a verb writes besides its output option (`--export-npy DIR`). Typed, so the spec runner finds
/// every path a step writes from the parsed arguments, and keeps each inside the run folder.
public struct OutputPath: ExpressibleByArgument, Sendable, Hashable, CustomStringConvertible {
    public var path: String
    public init(_ path: String) { self.path = path }
    public init?(argument: String) { path = argument }
    public var description: String { path }
}

/// Every `InputPath` inside a parsed value (option groups included), found by reflection.
public func inputPaths(in value: Any) -> [String] { reflectedPaths(in: value) { ($0 as? InputPath)?.path } }

/// Every `OutputPath` inside a parsed value (option groups included), found by reflection.
public func outputPaths(in value: Any) -> [String] { reflectedPaths(in: value) { ($0 as? OutputPath)?.path } }

/// The paths `path(of:)` finds in `value` and its children (arrays and optionals included), 8 levels deep at most.
func reflectedPaths(in value: Any, _ path: (Any) -> String?) -> [String] {
    var found: [String] = []
    func walk(_ v: Any, depth: Int) {
        guard depth < 8 else { return }
        if let p = path(v) { found.append(p); return }
        for child in Mirror(reflecting: v).children { walk(child.value, depth: depth + 1) }
    }
    walk(value, depth: 0)
    return found
}
