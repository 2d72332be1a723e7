import ArgumentParser
import Foundation
import RuleLensJobs
import RuleLensVerbs
import RuleLensModel
import RuleLensNumerics

/// `rulelens info CHECKPOINT`: architecture, parameters, training options and step, kernel, tokenizer.
struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Describe a checkpoint: architecture, parameters, training options and step, BLAS kernel, tokenizer.")

    @Argument(help: "Checkpoint folder (rulelens train/init --out, or a Hugging Face GPT-2 folder).") var checkpoint: String
    @Flag(help: "Print one JSON object instead of the lines.") var json = false

    func run() throws {
        if VAEConfig.isVAE(URL(fileURLWithPath: checkpoint)) {
            if json { return print(try JSONText.string(try VAEInfo.json(dir: checkpoint), pretty: true)) }
            try VAEInfo.lines(dir: checkpoint).forEach { print($0) }
            return
        }
        let info = try CheckpointInfo(dir: checkpoint)
        if json { print(try JSONText.string(info.json, pretty: true)) } else { info.lines.forEach { print($0) } }
    }
}

/// `rulelens hooks CHECKPOINT [PATTERN]`: every hook site with its per-example shape.
struct HooksCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hooks",
        abstract: "List a checkpoint's hook sites (TransformerLens names) with their per-example shapes.",
        discussion: "Shapes leave out the batch axis; `pos` is the position axis (up to the model's context). PATTERN takes names or `*` globs, comma-separated, as `dump --hooks`.")

    @Argument(help: "Checkpoint folder.") var checkpoint: String
    @Argument(help: "Names or `*` patterns (default: every site).") var pattern: String?
    @Flag(help: "Print a JSON list of {name, shape, dims} instead of the table (shape: per example, `pos` for the position axis).")
    var json = false

    func run() throws {
        let patterns = (pattern ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let rows = VAEConfig.isVAE(URL(fileURLWithPath: checkpoint))
            ? try VAEInfo.hooks(dir: checkpoint, patterns: patterns)
            : try CheckpointInfo.hooks(checkpoint: checkpoint, patterns: patterns)
        if json {
            let list: [[String: Any]] = rows.map { r in
                let shape = r.shape.trimmingCharacters(in: CharacterSet(charactersIn: "[]")).split(separator: ",")
                    .map { $0.trimmingCharacters(in: .whitespaces) }.map { Int($0).map { $0 as Any } ?? $0 as Any }
                return ["name": r.name, "shape": shape, "dims": r.dims.split(separator: ",").map(String.init)]
            }
            print(try JSONText.string(list, pretty: true))
            return
        }
        let w0 = rows.map(\.name.count).max() ?? 0, w1 = rows.map(\.shape.count).max() ?? 0
        for r in rows {
            print(r.name.padding(toLength: w0, withPad: " ", startingAt: 0) + "  " + r.shape.padding(toLength: w1, withPad: " ", startingAt: 0) + "  " + r.dims)
        }
    }
}
