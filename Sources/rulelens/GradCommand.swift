import ArgumentParser
import Foundation
import RuleLensJobs
import RuleLensVerbs

/// `rulelens grad`: the parameter gradients of a checkpoint's mean loss on a data file.
struct GradCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grad",
        abstract: "Write the gradient of the mean target loss on --data with respect to every parameter (safetensors, Hugging Face names).")

    @Option(help: "Checkpoint folder (gpt2, llama or qwen2).") var checkpoint: String
    @Option(help: "JSONL examples (prompt, target).") var data: String
    @Option(help: "Output safetensors file (one F32 tensor per parameter).") var out: String
    @Option(help: "Loss positions: target (target tokens and eos, default) or all.") var lossOn: LossOn = .target
    @Flag(help: "Overwrite --out if it exists.") var force = false

    func run() throws {
        if FileManager.default.fileExists(atPath: out) && !force {
            throw RuleLensError("\(out) already exists", fix: "pass --force to overwrite it, or choose another --out")
        }
        try GradientJob.run(checkpoint: checkpoint, data: data, out: out, lossOn: lossOn)
        print("wrote \(out)")
    }
}
