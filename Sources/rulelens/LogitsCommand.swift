import ArgumentParser
import Foundation
import RuleLensJobs
import RuleLensVerbs

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
    @Flag(help: "Do not check the checkpoint's files against the SHA-256 manifest in its rulelens.json (for files edited on purpose).") var noVerify = false
    @Flag(help: "No progress line.") var quiet = false
    @Option(name: .customLong("add"), help: ArgumentHelp("SITE=FILE.json: add a vector (a JSON array, one value per element of a position, e.g. d_model values for blocks.1.attn.hook_q) at every position of SITE (repeatable).", valueName: "site=file"))
    var additions: [String] = []

    func run() throws {
        if noVerify { Checkpoint.verifiesByDefault = false }
        if !force { try refuseToOverwrite(out) }
        var hooks: HookSet? = nil
        for addition in additions {
            guard let eq = addition.firstIndex(of: "=") else {
                throw RuleLensError("--add \(addition) is not SITE=FILE.json", fix: "pass e.g. --add blocks.1.attn.hook_q=shift.json")
            }
            let site = String(addition[..<eq]), file = String(addition[addition.index(after: eq)...])
            guard let data = FileManager.default.contents(atPath: file),
                  let vector = (try? JSONSerialization.jsonObject(with: data)) as? [Double], vector.allSatisfy(\.isFinite) else {
                throw RuleLensError("--add: \(file) is not a JSON array of finite numbers", fix: "write the vector as [0.1, -0.2, …]")
            }
            hooks = hooks ?? HookSet()
            LogitsJob.addAtEveryPosition(hooks!, site: site, vector: vector.map { Float($0) })
        }
        try LogitsJob.run(checkpoint: checkpoint, data: data, out: out, hooks: hooks, progress: ProgressLine(enabled: !quiet))
    }
}

/// Refuses to replace a file the user already has.
func refuseToOverwrite(_ path: String) throws {
    if FileManager.default.fileExists(atPath: path) {
        throw RuleLensError("\(path) already exists", fix: "choose another --out path, or delete the file first")
    }
}

/// `--threads N` of every command: 0 (or absent) = all cores; negative numbers are refused.
func configureThreads(_ threads: Int?) throws {
    guard let threads else { return }
    guard threads >= 0 else {
        throw RuleLensError("--threads is \(threads), but it must be 0 or positive", fix: "pass --threads 0 (all cores) or a positive number")
    }
    Parallel.configure(threads: threads)
}
