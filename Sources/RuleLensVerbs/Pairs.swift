import ArgumentParser
import Foundation
import RuleLensJobs

/// `data pairs`: clean/corrupted counterparts for activation patching.
public enum PairsVerb: Verb {
    public static let commandPath = ["data", "pairs"]
    public static let kind = "pairs"
    public static let abstract = "Corrupted counterparts for `rulelens patch`: operand tasks change one operand (the first answer token changes); rule tasks keep the premises under another rule (syllogism: another form on the same terms; math-derivation: another operator on the same expression; explanatory: another inference type about the same subject)."
    public static let discussion = """
        Writes --out DIR/clean.jsonl, DIR/corrupt.jsonl (line i of one is the counterpart of line i of the other) and \
        DIR/pairs.json (the pairing and its provenance). The counterparts are drawn with --seed (default: the data \
        folder's seed). `rulelens patch --data …` builds the same pairs itself (with --one-length).
        """

    public struct Arguments: VerbArguments {
        @OptionGroup public var source: DataSourceOptions
        @Option(help: "Part of a data folder or of --task's data.") public var part: DataPart = .test
        @Flag(help: "Keep only pairs of the most common prompt length (patching needs one length).") public var oneLength = false
        @Option(parsing: .unconditional, help: "Keep at most this many pairs.") public var limit: Int?
        @Option(help: "Output folder: clean.jsonl, corrupt.jsonl, pairs.json (existing files are kept unless --force).")
        public var out: String
        @OptionGroup(title: "Runtime") public var runtime: RuntimeOptions

        public init() {}

        public func validate() throws {
            if let limit, limit < 1 { throw ValidationError("--limit is \(limit); pass a positive number of pairs (or leave it out for all)") }
        }
    }

    public struct Result: Codable, Sendable {
        /// Pairs written, and examples left out for want of a counterpart (or of the common length).
        public var pairs: Int
        public var skipped: Int
        /// The seed of the counterpart choice.
        public var seed: UInt64
        enum CodingKeys: String, CodingKey { case pairs, skipped, seed }
    }

    public static func quick(_ o: inout QuickOptions) { o.cap("limit", 16) }

    public static func run(_ a: Arguments, _ ctx: VerbContext) throws -> VerbOutcome<Result> {
        let src = try a.source.source()
        let loaded = try src.load(a.part)
        let seed = a.source.generated.seed ?? loaded.meta?.seed ?? 0
        let made = try PairsJob.make(loaded, task: src.spec?.task, seed: seed, oneLength: a.oneLength, limit: a.limit)
        try PairsJob.write(made, to: a.out, source: loaded.origin, seed: seed, force: a.runtime.force)
        return VerbOutcome(Result(pairs: made.clean.count, skipped: made.skipped, seed: seed),
                           files: ["clean.jsonl", "corrupt.jsonl", "pairs.json"])
    }

    public static func lines(_ r: Result, _ a: Arguments) -> [String] {
        ["wrote \(a.out): \(r.pairs) pairs (clean.jsonl, corrupt.jsonl, pairs.json); \(r.skipped) examples without a counterpart left out"]
    }
}
