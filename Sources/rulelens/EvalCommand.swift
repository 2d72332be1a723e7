import ArgumentParser
import Foundation
import RuleLensJobs

/// `rulelens eval`: greedy-decoding accuracy and target loss of a checkpoint.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate a checkpoint: exact-match accuracy (greedy decoding) and mean target loss.")

    @Option(help: "Checkpoint folder (the --out of rulelens train, or a Hugging Face GPT-2 folder).") var checkpoint: String
    @Option(help: "Examples (JSON Lines with \"prompt\" and \"target\").") var data: String
    @Flag(help: "Print one JSON line {\"accuracy\", \"loss\", \"n\"}.") var json = false
    @Option(help: "Write per-example predictions here (JSON Lines).") var out: String?
    @Option(help: "Threads (default: all cores).") var threads: Int?

    func run() throws {
        if let threads { Parallel.configure(threads: threads) }
        if let out { try refuseToOverwrite(out) }
        let result = try EvalJob.run(checkpoint: checkpoint, data: data)
        if let out { try EvalJob.writePredictions(result.predictions, to: out) }
        if json {
            print(result.jsonLine)
        } else {
            print(String(format: "accuracy %.4f (%d/%d exact), loss %.4f", result.accuracy,
                         result.predictions.filter(\.correct).count, result.n, result.loss))
        }
    }
}

/// `rulelens logits`: raw logits of a checkpoint, for comparing with other implementations.
struct LogitsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logits",
        abstract: "Write a checkpoint's logits on a data file to safetensors (tokens, lengths, logits).",
        discussion: "Runs [bos] + prompt + target of each example, right-padded; used by the transformers interop tests.")

    @Option(help: "Checkpoint folder.") var checkpoint: String
    @Option(help: "Examples (JSON Lines).") var data: String
    @Option(help: "Output .safetensors file.") var out: String
    @Flag(help: "Replace --out if it exists.") var force = false

    func run() throws {
        if !force { try refuseToOverwrite(out) }
        try LogitsJob.run(checkpoint: checkpoint, data: data, out: out)
    }
}

/// Refuses to replace a file the user already has.
func refuseToOverwrite(_ path: String) throws {
    if FileManager.default.fileExists(atPath: path) {
        throw RuleLensError("\(path) already exists", fix: "choose another --out path, or delete the file first")
    }
}
