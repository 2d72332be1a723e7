import ArgumentParser
import Foundation
import RuleLensJobs

/// `rulelens eval`: greedy-decoding accuracy and target loss of a checkpoint.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate a checkpoint: exact-match accuracy (greedy decoding) and mean target loss.")

    @Option(help: "Checkpoint folder (the --out of rulelens train, or a Hugging Face GPT-2 folder).") var checkpoint: String
    /// `--data FILE` or `--task/--format/--split/…/--seed` (the same options as training give the same data).
    @OptionGroup var source: DataSourceOptions
    @Option(help: "With --task or a `data generate` directory: which part to evaluate (train, test, all).") var part: String = "test"
    @Flag(help: "Print one JSON line {\"accuracy\", \"answer_accuracy\", \"loss\", \"n\"} (plus inside/central/rim for operand tasks).") var json = false
    @Option(help: "Write per-example predictions here (JSON Lines); operand tasks also get OUT.plane.npy/.svg/.json beside it.") var out: String?
    @Option(parsing: .unconditional, help: "Threads for RuleLens loops and BLAS (0 or default: all cores).") var threads: Int?
    @Flag(help: "Do not check the checkpoint's files against the SHA-256 manifest in its rulelens.json (for files edited on purpose).") var noVerify = false
    @Flag(help: "No progress line.") var quiet = false

    func run() throws {
        if noVerify { Checkpoint.verifiesByDefault = false }
        try configureThreads(threads)
        guard let dataPart = DataPart(rawValue: part) else {
            throw RuleLensError("--part \(part) is not train, test or all", fix: "pass --part train, --part test or --part all")
        }
        let loaded = try source.source().load(dataPart)
        let plane = loaded.meta?.plane
        let planePrefix = out.map(PlaneAccuracy.prefix(besides:))
        if let out {
            try refuseToOverwrite(out)
            if plane != nil, let planePrefix { for ext in ["npy", "svg", "json"] { try refuseToOverwrite(planePrefix + "." + ext) } }
        }
        let model = try Jobs.loadModel(checkpoint, rulePriors: true)
        let tokenizer = try Jobs.tokenizer(checkpoint: checkpoint, vocabSize: model.vocabSize)
        if let prior = model as? RulePriorGPT {   // each example's prior is selected by its rule column
            try RulePriorData.select(prior, examples: loaded.examples, tokenizer: tokenizer, path: loaded.origin, source: loaded.origin)
        }
        let result = try EvalJob.run(model, tokenizer: tokenizer, examples: loaded.examples, source: loaded.origin,
                                     progress: ProgressLine(enabled: !quiet))
        if let out { try EvalJob.writePredictions(result.predictions, to: out) }
        let answerOK = PlaneAccuracy.answerCorrect(predictions: result.predictions.map(\.prediction), examples: loaded.examples)
        let answerAccuracy = Double(answerOK.filter { $0 }.count) / Double(max(1, answerOK.count))

        // Operand tasks: where on the (a, b) plane the model fails, inside / centre / rim of held-out squares, and
        // carries; multi-digit addition: accuracy per digit count.
        let breakdown = try EvalBreakdown.compute(examples: loaded.examples, correct: answerOK, meta: loaded.meta)
        let planeReport = breakdown.plane
        if let report = planeReport, let planePrefix {
            let title = "\(loaded.meta?.task ?? "") (\(loaded.meta?.split ?? ""), \(part)): answer accuracy"
            try PlaneAccuracy.write(report, prefix: planePrefix, title: title)
            if let carry = breakdown.carry {   // the heatmap with the carry boundaries drawn (dashed)
                try AtomicFile.write(Data(CarryAccuracy.heatmap(report, base: carry.base, title: title).utf8), to: planePrefix + ".svg")
            }
        }
        if json {
            var fields: [String: Any] = ["accuracy": result.accuracy, "answer_accuracy": answerAccuracy, "loss": result.loss, "n": result.n]
            // Provenance: results are bitwise reproducible for the same BLAS kernel and thread count.
            for (key, value) in BLASProvenance.current.fields { fields[key] = key == "threads" ? Int(value) ?? 0 : value }
            if let r = planeReport, !r.squares.isEmpty {
                fields["inside"] = r.inside ?? NSNull(); fields["central"] = r.central ?? NSNull(); fields["rim"] = r.rim ?? NSNull()
            }
            if let c = breakdown.carry {
                fields["carry"] = ["inside_carry": c.insideCarry ?? NSNull(), "inside_no_carry": c.insideNoCarry ?? NSNull(),
                                   "outside_carry": c.outsideCarry ?? NSNull(), "outside_no_carry": c.outsideNoCarry ?? NSNull()] as [String: Any]
            }
            if let d = breakdown.digits {
                fields["digits"] = Dictionary(d.map { (String($0.digits), $0.accuracy) }, uniquingKeysWith: { a, _ in a })
            }
            print(try JSONText.string(fields))
        } else {
            print(String(format: "accuracy %.4f (%d/%d exact), answer accuracy %.4f, loss %.4f", result.accuracy,
                         result.predictions.filter(\.correct).count, result.n, answerAccuracy, result.loss))
            if let r = planeReport { PlaneAccuracy.summaryLines(r).forEach { print($0) } }
            if let c = breakdown.carry { print(CarryAccuracy.summaryLine(c)) }
            if let d = breakdown.digits { print(DigitAccuracy.summaryLine(d)) }
            // Provenance: the same checkpoint and data give these bits only under the same kernel and thread count.
            print("(\(BLASProvenance.current.summary); results are bitwise reproducible only under the same kernel and threads)")
            if planeReport != nil, let planePrefix {
                print("wrote \(planePrefix).npy, \(planePrefix).svg, \(planePrefix).json")
            }
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
