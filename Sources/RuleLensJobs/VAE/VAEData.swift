import Foundation
import RuleLensModel
import RuleLensNumerics
import RuleLensTasks

/// Examples as VAE rows: `[bos] + prompt + target + [eos]`, with the prompt length and (optionally) a class label.
public struct VAEItems {
    public let examples: [Example]
    public let rows: [[Int32]]
    /// len([bos] + prompt) per row.
    public let promptLengths: [Int]
    /// Class id per row of the supervised column (nil without one).
    public let labels: [Int32]?
    /// Class names by id of the supervised column (empty without one).
    public let classNames: [String]

    /// Tokenizes; every row (eos included) must fit `nCtx` positions (the encoder reads it whole).
    public init(path: String, tokenizer: CharTokenizer = .standard, nCtx: Int, labelColumn: String? = nil, classNames: [String]? = nil) throws {
        let examples = try Jobs.loadExamples(path: path)
        guard !examples.isEmpty else { throw RuleLensError("\(path) holds no examples", fix: "pass a non-empty JSONL file") }
        var rows: [[Int32]] = [], prompts: [Int] = []
        for (i, e) in examples.enumerated() {
            let label = "example \(i + 1)\(e.id.map { " (id \($0))" } ?? "") of \(path)"
            let prompt = try tokenizer.encode(e.prompt, context: "the prompt of \(label)")
            let target = try tokenizer.encode(e.target, context: "the target of \(label)")
            let row = [CharTokenizer.bos] + prompt + target + [CharTokenizer.eos]
            guard row.count <= nCtx else {
                throw RuleLensError("\(label) needs \(row.count) positions ([bos] + prompt + target + [eos]), more than the context of \(nCtx)",
                                    fix: "raise --ctx to at least \(row.count), or shorten or drop that example")
            }
            rows.append(row); prompts.append(1 + prompt.count)
        }
        self.examples = examples; self.rows = rows; promptLengths = prompts
        if let labelColumn {
            let values = try VAEItems.column(labelColumn, path: path)
            let names = classNames ?? VAEItems.classNames(values)
            if classNames == nil && names.count < 2 {
                throw RuleLensError("the column \"\(labelColumn)\" of \(path) has only one value (\(names.first ?? "")), so there is nothing to classify",
                                    fix: "supervise a column with at least two classes (e.g. --supervise rule), or drop --supervise")
            }
            var ids: [Int32] = []
            for (i, v) in values.enumerated() {
                guard let id = names.firstIndex(of: v) else {
                    throw RuleLensError("line \(i + 1) of \(path) has \(labelColumn) \"\(v)\", a class the model was not trained on (\(names.joined(separator: ", ")))",
                                        fix: "evaluate on data with the training classes, or drop the classifier metrics")
                }
                ids.append(Int32(id))
            }
            labels = ids
            self.classNames = names
        } else {
            labels = nil
            self.classNames = []
        }
    }

    public var count: Int { rows.count }

    /// The batch of rows `indices`.
    /// The mean number of positions the reconstruction term sums over per example: every position after `<bos>`
    /// (`decode all`), or the target and `<eos>` (`decode target`).
    public func meanReconstructed(decode: DecodeMode) -> Double {
        guard !rows.isEmpty else { return 1 }
        let counted = zip(rows, promptLengths).map { decode == .all ? $0.count - 1 : $0.count - $1 }
        return Double(counted.reduce(0, +)) / Double(rows.count)
    }

    public func batch(_ indices: [Int], decode: DecodeMode) -> VAEBatch {
        VAEBatch(rows: indices.map { rows[$0] }, promptLengths: indices.map { promptLengths[$0] }, decode: decode,
                 labels: labels.map { l in indices.map { l[$0] } })
    }

    /// The values of one JSONL column as strings (numbers as written), one per line; a line without it is an error.
    public static func column(_ name: String, path: String) throws -> [String] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RuleLensError("cannot read \(path)", fix: "check the path")
        }
        var out: [String] = []
        for (i, line) in data.split(separator: UInt8(ascii: "\n")).enumerated() where !line.allSatisfy({ $0 == 32 || $0 == 13 }) {
            guard let object = (try? JSONSerialization.jsonObject(with: Data(line))) as? [String: Any] else {
                throw RuleLensError("line \(i + 1) of \(path) is not a JSON object", fix: "fix the JSONL file")
            }
            guard let value = object[name], !(value is NSNull) else {
                let keys = object.keys.sorted().joined(separator: ", ")
                throw RuleLensError("line \(i + 1) of \(path) has no column \"\(name)\" (it has \(keys))",
                                    fix: "pass --supervise with one of those columns (e.g. rule), or add \"\(name)\" to every line")
            }
            if let s = value as? String { out.append(s) } else if let n = value as? NSNumber { out.append(n.stringValue) } else {
                throw RuleLensError("line \(i + 1) of \(path): column \"\(name)\" is not a string or number", fix: "supervise a column of labels")
            }
        }
        return out
    }

    /// Sorted distinct values (numerically when all are integers).
    static func classNames(_ values: [String]) -> [String] {
        let distinct = Array(Set(values))
        if distinct.allSatisfy({ Int($0) != nil }) { return distinct.sorted { Int($0)! < Int($1)! } }
        return distinct.sorted()
    }
}

extension VAE {
    /// ε for training step `step`: B·k standard normals from the stream ("vae-eps", step) of `seed`.
    public static func epsilon(seed: UInt64, step: Int, count: Int) -> [Float] {
        var rng = SeededRNG(seed: seed, stream: "vae-eps-\(step)")
        return (0..<count).map { _ in rng.normal() }
    }
}
