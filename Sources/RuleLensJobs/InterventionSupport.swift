import Foundation
import RuleLensInterventions
import RuleLensAnalysis
import RuleLensModel
import RuleLensNumerics
import RuleLensStore
import RuleLensTasks

/// Shared pieces of the intervention jobs (ablate, patch, lens): items, labels, JSON, HDF5 and progress.
enum InterventionSupport {
    /// Examples as intervention items (`[bos] + prompt + target + [eos]`), with errors naming the example.
    static func items(_ examples: [Example], tokenizer: any TextTokenizer, nCtx: Int, source: String) throws -> [InterventionItem] {
        try Batching.tokenize(examples, tokenizer: tokenizer, nCtx: nCtx, source: source).enumerated().map { index, t in
            guard t.promptLength < t.tokens.count - 1 else {
                throw RuleLensError("example \(index + 1) of \(source) has an empty target", fix: "every example needs a target: its first token is what the interventions score")
            }
            return InterventionItem(tokens: t.tokens, promptLength: t.promptLength)
        }
    }

    /// The checkpoint's model (any family, a language VAE as its `VAELanguageModel` view) and its tokenizer
    /// (character or BPE), checked against each other.
    static func load(_ checkpoint: String) throws -> (model: any LanguageModel, tokenizer: any TextTokenizer) {
        let model = try Jobs.loadModel(checkpoint, allowVAE: true)
        return (model, try Jobs.tokenizer(checkpoint: checkpoint, vocabSize: model.vocabSize))
    }

    /// The value of label column `column` for each example (rule, rule_id, a, b, answer, target, prompt).
    static func labels(_ examples: [Example], column: String, source: String) throws -> [String] {
        let known = ["rule", "rule_id", "a", "b", "answer", "target", "prompt"]
        guard known.contains(column) else {
            throw RuleLensError("unknown label column '\(column)'", fix: "use one of: \(known.joined(separator: ", "))")
        }
        return try examples.enumerated().map { i, e in
            let value: String?
            switch column {
            case "rule": value = e.rule
            case "rule_id": value = e.ruleId.map(String.init)
            case "a": value = e.a.map(String.init)
            case "b": value = e.b.map(String.init)
            case "answer": value = e.answer
            case "target": value = e.target
            default: value = e.prompt
            }
            guard let value else {
                throw RuleLensError("example \(i + 1) of \(source) has no '\(column)' field", fix: "choose a label column every example has (e.g. rule for study 2 tasks, a or b for operand tasks)")
            }
            return value
        }
    }

    /// Label values with at least two classes, else an error.
    static func checkedLabels(_ values: [String], column: String) throws -> Labels {
        let labels = Labels(strings: values)
        guard labels.classCount >= 2 else {
            throw RuleLensError("label column '\(column)' has only one value ('\(labels.names.first ?? "")') in the data: nothing to break down",
                                fix: "choose a column with at least two values, or leave out --label")
        }
        return labels
    }

    /// {"value": v, "ci": [lo, hi] or null}.
    static func json(_ e: Estimate) -> [String: Any] {
        ["value": number(e.value), "ci": e.lower.map { [number($0), number(e.upper!)] as Any } ?? NSNull()]
    }

    /// A JSON number, or null when not finite.
    static func number(_ v: Double) -> Any { v.isFinite ? v : NSNull() }

    /// "0.812 [0.790, 0.833]".
    static func text(_ e: Estimate, _ digits: Int = 3) -> String {
        let v = String(format: "%+.\(digits)f", e.value)
        guard let lo = e.lower, let hi = e.upper else { return v }
        return v + String(format: " [%+.\(digits)f, %+.\(digits)f]", lo, hi)
    }

    /// A float64 dataset with a `dims` attribute.
    static func write(_ location: HDF5Location, _ name: String, _ values: [Double], shape: [Int], dims: String) throws {
        let ds = try location.createDataset(name, type: .float64, shape: shape)
        if let n = shape.first, n > 0, !values.isEmpty { try values.withUnsafeBytes { try ds.writeRows(start: 0, count: n, $0.baseAddress!) } }
        try ds.setAttribute("dims", dims)
    }

    /// A float32 dataset with a `dims` attribute.
    static func write(_ location: HDF5Location, _ name: String, floats values: [Float], shape: [Int], dims: String) throws {
        let ds = try location.createDataset(name, type: .float32, shape: shape)
        if let n = shape.first, n > 0, !values.isEmpty { try values.withUnsafeBytes { try ds.writeRows(start: 0, count: n, $0.baseAddress!) } }
        try ds.setAttribute("dims", dims)
    }

    /// An int64 dataset with a `dims` attribute.
    static func write(_ location: HDF5Location, _ name: String, ints values: [Int], shape: [Int], dims: String) throws {
        let ds = try location.createDataset(name, type: .int64, shape: shape)
        let v = values.map { Int64($0) }
        if let n = shape.first, n > 0, !v.isEmpty { try v.withUnsafeBytes { try ds.writeRows(start: 0, count: n, $0.baseAddress!) } }
        try ds.setAttribute("dims", dims)
    }

    /// A string dataset with a `dims` attribute.
    static func write(_ location: HDF5Location, _ name: String, strings values: [String], dims: String) throws {
        let ds = try location.createDataset(name, type: .string, shape: [values.count])
        try ds.writeStrings(start: 0, values)
        try ds.setAttribute("dims", dims)
    }

    /// Refuses existing output files before any work (an existing file needs `force`).
    static func refuseExisting(_ paths: [String?], force: Bool) throws {
        for case let path? in paths where !force && FileManager.default.fileExists(atPath: path) {
            throw RuleLensError("\(path) already exists", fix: "choose another path or pass --force to replace it")
        }
        for case let path? in paths {
            let dir = (path as NSString).deletingLastPathComponent
            if !dir.isEmpty && !FileManager.default.fileExists(atPath: dir) {
                throw RuleLensError("the folder of \(path) does not exist", fix: "create \(dir) first")
            }
        }
    }

    /// A progress callback drawing "`what` done/total | item | rate | ETA" on `line`.
    static func progress(_ line: ProgressLine, _ what: String, _ unit: String) -> (Int, Int, String) -> Void {
        let start = ProgressLine.now()
        return { done, total, detail in
            let elapsed = ProgressLine.now() - start
            let eta = done > 0 ? elapsed / Double(done) * Double(total - done) : .nan
            line.update("\(what) \(done)/\(total) \(unit)\(detail.isEmpty ? "" : " | " + detail) | \(ProgressLine.duration(elapsed)) elapsed | ETA \(ProgressLine.duration(eta))",
                        final: done == total)
        }
    }

    /// Provenance attributes every intervention output carries.
    static func provenance(_ file: HDF5File, kind: String, checkpoint: String, fields: [String: String]) throws {
        try file.setAttribute("format", "rulelens-\(kind)")
        try file.setAttribute("rulelens_version", RuleLensVersion.string)
        try file.setAttribute("checkpoint", checkpoint)
        try file.setAttribute("created_utc", ISO8601DateFormatter().string(from: Date()))
        try file.setAttribute("openblas_coretype", ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] ?? "")
        for (k, v) in fields { try file.setAttribute(k, v) }
    }
}
