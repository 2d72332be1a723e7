import Foundation
import RuleLensJobs
import RuleLensVerbs
import RuleLensNumerics

/// The type of a step option as a spec writes it (derived from the verb's declaration), checked when a spec is loaded.
public enum StepOptionType: Sendable, Equatable {
    case string, bool
    /// A repeatable option: a YAML list (or comma-separated text).
    case list
    case choice([String])
}

/// One option a step accepts, named as on the command line (without `--`).
public struct StepOption: Sendable {
    public var name: String
    public var type: StepOptionType
    public var help: String
    public var required: Bool
    public init(_ name: String, _ type: StepOptionType, _ help: String, required: Bool = false) {
        self.name = name; self.type = type; self.help = help; self.required = required
    }
}

/// A picture the step drew (an SVG file in its folder), inlined into the report.
public struct StepFigure: Sendable, Codable, Equatable {
    public var title: String
    /// Path relative to the step's folder.
    public var file: String
    public init(title: String, file: String) { self.title = title; self.file = file }
}

/// What a step produced: results (read by `expect:` as `ID.key…`), figures and files for the report.
public struct StepOutcome: Sendable {
    public var results: RunValue
    public var figures: [StepFigure] = []
    /// Output files to link from the report (relative to the step's folder).
    public var files: [String] = []
    public init(results: RunValue, figures: [StepFigure] = [], files: [String] = []) {
        self.results = results; self.figures = figures; self.files = files
    }
}

/// Where a step runs and what it may use.
public struct StepContext {
    /// The step's own folder (created, empty unless a killed run left a resumable state in it).
    public var dir: String
    /// The variant's folder.
    public var variantDir: String
    public var quick: Bool
    /// Threads for training and evaluation (nil: leave as configured).
    public var threads: Int?
    public var progress: ProgressLine
    /// A line for the log (stderr).
    public var log: (String) -> Void

    public func path(_ name: String) -> String { (dir as NSString).appendingPathComponent(name) }
}

/// A step's options after variables are substituted, with typed getters whose errors name the spec line and key.
public struct StepOptions: Sendable {
    public var kind: String
    public var id: String
    public var specPath: String
    public var values: [String: SpecNode]
    public var line: Int

    public init(kind: String, id: String, specPath: String, values: [String: SpecNode], line: Int) {
        self.kind = kind; self.id = id; self.specPath = specPath; self.values = values; self.line = line
    }

    func problem(_ key: String, _ text: String) -> String {
        "\(specPath) line \(values[key]?.line ?? line): step \(id) (\(kind)), option \(key): \(text)"
    }

    public func has(_ key: String) -> Bool { values[key] != nil }

    public func string(_ key: String) throws -> String? {
        guard let node = values[key] else { return nil }
        return node.commandLineText
    }

    public func int(_ key: String) throws -> Int? {
        guard let s = try string(key) else { return nil }
        guard let v = Int(s.trimmingCharacters(in: .whitespaces)) else {
            throw RuleLensError(problem(key, "\(s) is not an integer"), fix: "write a whole number, e.g. \(key): 100")
        }
        return v
    }

    public func int(_ key: String, default d: Int) throws -> Int { try int(key) ?? d }

    public func double(_ key: String) throws -> Double? {
        guard let s = try string(key) else { return nil }
        guard let v = Double(s.trimmingCharacters(in: .whitespaces)), v.isFinite else {
            throw RuleLensError(problem(key, "\(s) is not a number"), fix: "write a number, e.g. \(key): 0.5")
        }
        return v
    }

    public func bool(_ key: String, default d: Bool = false) throws -> Bool {
        guard let s = try string(key) else { return d }
        switch s.lowercased() {
        case "true", "yes", "on", "1": return true
        case "false", "no", "off", "0": return false
        default: throw RuleLensError(problem(key, "\(s) is not true or false"), fix: "write \(key): true or \(key): false")
        }
    }

    public func list(_ key: String) throws -> [String]? {
        guard let node = values[key] else { return nil }
        switch node {
        case .list(let items, _): return items.map(\.commandLineText)
        default: return node.commandLineText.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
    }

    /// Sets an option (used by `quick` to shrink sizes).
    public mutating func set(_ key: String, _ value: String) {
        values[key] = .scalar(value, line: values[key]?.line ?? line)
    }
}
