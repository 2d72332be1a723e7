import ArgumentParser
import Foundation
import RuleLensJobs
import RuleLensVerbs

private func parsePart(_ part: String) throws -> DataPart {
    guard let p = DataPart(rawValue: part) else { throw RuleLensError("--part \(part) is not train, test or all", fix: "pass --part train, test or all") }
    return p
}

/// `rulelens data pairs`: clean/corrupted pairs for patching.
struct DataPairs: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pairs",
        abstract: "Corrupted counterparts for `rulelens patch`: operand tasks change one operand (the first answer token changes); rule tasks keep the premises under another rule (syllogism: another form on the same terms; math-derivation: another operator on the same expression; explanatory: another inference type about the same subject).")
    @OptionGroup var source: DataSourceOptions
    @Option(help: "With --task or a data directory: train, test or all.") var part: String = "test"
    @Option(help: "Output folder: clean.jsonl, corrupt.jsonl, pairs.json.") var out: String
    @Flag(help: "Keep only pairs of the most common prompt length (patching needs one length).") var oneLength = false
    @Option(help: "Keep at most this many pairs.") var limit: Int?
    @Flag(help: "Replace existing files.") var force = false

    func run() throws {
        let src = try source.source()
        let loaded = try src.load(try parsePart(part))
        let result = try PairsJob.make(loaded, task: src.spec?.task, seed: src.spec?.seed ?? source.generated.seed ?? 0, oneLength: oneLength, limit: limit)
        try PairsJob.write(result, to: out, source: loaded.origin, seed: source.generated.seed ?? 0, force: force)
        print("wrote \(out): \(result.clean.count) pairs (clean.jsonl, corrupt.jsonl, pairs.json); \(result.skipped) examples without a counterpart left out")
    }
}

/// `--threads N` of the commands that are not yet verbs: 0 (or absent) = all cores; negative numbers are refused.
func configureThreads(_ threads: Int?) throws {
    guard let threads else { return }
    guard threads >= 0 else {
        throw RuleLensError("--threads is \(threads), but it must be 0 or positive", fix: "pass --threads 0 (all cores) or a positive number")
    }
    Parallel.configure(threads: threads)
}
