import Foundation
import RuleLensNumerics

/// Bounds on what a spec may ask of the runner, so that a hostile or mistaken spec (an alias bomb, a 100^5 sweep, an
/// expression nested ten thousand deep, `/` or /dev/zero as an input) is refused with a clear error before it
/// exhausts memory, the stack or time. Each bound is named, and `rulelens run --limit NAME=N` raises it; the table
/// `SpecLimits.all` is the one declaration of the names, the defaults and what each bounds.
public struct SpecLimits: Sendable, Equatable {
    /// Bytes of the spec file.
    public var specBytes = 1 << 20
    /// YAML values in the spec once every alias (`*name`) is expanded, and values one option or variable holds after
    /// `${…}` substitution.
    public var specValues = 100_000
    /// Uses of YAML aliases (`*name`).
    public var specAliases = 1_000
    /// Variants of the sweep (the product of the sizes of its value lists), checked before any is made.
    public var variants = 1_000
    /// Characters of one `expect:` expression.
    public var expressionLength = 1_000
    /// Nesting of one `expect:` expression: parentheses, function calls, unary `-` and `not`.
    public var expressionDepth = 32
    /// Files in one input folder that a step's fingerprint reads.
    public var inputFiles = 100_000
    /// Bytes of one input (a file, or all the files of a folder) that a step's fingerprint reads.
    public var inputBytes = 1 << 36

    public init() {}

    /// The limits in force when no `--limit` is given.
    public static let standard = SpecLimits()

    /// One named limit: its `--limit` name, what it bounds, and where its value lives.
    public struct Limit: @unchecked Sendable {  // a key path is immutable
        public let name: String
        public let bounds: String
        let keyPath: WritableKeyPath<SpecLimits, Int>
    }

    /// Every limit, in the order `--help` lists them.
    public static let all: [Limit] = [
        Limit(name: "spec-bytes", bounds: "bytes of the spec file", keyPath: \.specBytes),
        Limit(name: "spec-values", bounds: "YAML values with aliases expanded, and values in one option after ${…}", keyPath: \.specValues),
        Limit(name: "spec-aliases", bounds: "uses of YAML aliases (*name)", keyPath: \.specAliases),
        Limit(name: "variants", bounds: "variants of the sweep", keyPath: \.variants),
        Limit(name: "expression-length", bounds: "characters of one expect: expression", keyPath: \.expressionLength),
        Limit(name: "expression-depth", bounds: "nesting of one expect: expression", keyPath: \.expressionDepth),
        Limit(name: "input-files", bounds: "files in one input folder", keyPath: \.inputFiles),
        Limit(name: "input-bytes", bounds: "bytes of one input file or folder", keyPath: \.inputBytes),
    ]

    /// The value of the limit called `name`.
    public subscript(name: String) -> Int {
        Self.all.first { $0.name == name }.map { self[keyPath: $0.keyPath] } ?? 0
    }

    /// Limits with `NAME=N` settings applied (the `--limit` option's values).
    public init(settings: [String]) throws {
        self.init()
        for setting in settings {
            let parts = setting.split(separator: "=", maxSplits: 1).map { String($0).trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, let limit = Self.all.first(where: { $0.name == parts[0] }) else {
                throw RuleLensError("--limit \(setting) names no limit",
                                    fix: "write --limit NAME=N with NAME one of \(Self.all.map(\.name).joined(separator: ", "))")
            }
            guard let value = Int(parts[1]), value > 0 else {
                throw RuleLensError("--limit \(setting): \(parts[1]) is not a positive whole number", fix: "write e.g. --limit \(limit.name)=\(Self.standard[limit.name] * 10)")
            }
            self[keyPath: limit.keyPath] = value
        }
    }

    /// The `--limit` arguments that reproduce these limits (those that differ from the standard ones), for the
    /// processes `--jobs` starts.
    public var arguments: [String] {
        Self.all.filter { self[keyPath: $0.keyPath] != Self.standard[keyPath: $0.keyPath] }
            .flatMap { ["--limit", "\($0.name)=\(self[keyPath: $0.keyPath])"] }
    }

    /// The `--help` text of the `--limit` option: every name with its default.
    public static var help: String {
        "Raise a bound on what a spec may ask (repeatable): " + all.map { "\($0.name) (\($0.bounds); default \(standard[$0.name]))" }.joined(separator: ", ") + "."
    }

    /// The error for a spec that goes past the limit `name`: what went past it, and the fix (do less, or raise it).
    public func exceeded(_ name: String, _ problem: String, lessFix: String) -> RuleLensError {
        let value = self[name]
        return RuleLensError("\(problem): more than the limit of \(value) (\(name))",
                             fix: "\(lessFix), or raise the limit: rulelens run --limit \(name)=\(value &* 10) …")
    }
}
