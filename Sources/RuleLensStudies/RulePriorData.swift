import Foundation
import RuleLensModel
import RuleLensNumerics
import RuleLensTasks

/// The data side of trained rule priors: each example's value of the prior's column, its table row, and the set-up
/// that lets the ordinary jobs (eval, logits) run a `RulePriorGPT` on examples they batch themselves.
public enum RulePriorData {
    /// One value per example of `column`: an `Example` field (rule, rule_id, id, prompt, target, answer, a, b), a
    /// derived column (`Relabel.derived`: figure, mood, …), or any other field of the JSONL file at `path`.
    /// A missing column is an error naming the example and the fields there are.
    public static func values(column: String, examples: [Example], path: String?) throws -> [String] {
        let known: Set<String> = ["rule", "rule_id", "id", "prompt", "target", "answer", "a", "b"]
        if known.contains(column) || Relabel.derived[column] != nil {
            let lines: [[String: Any]] = examples.map { e in
                var o: [String: Any] = ["prompt": e.prompt, "target": e.target]
                if let v = e.id { o["id"] = v }
                if let v = e.answer { o["answer"] = v }
                if let v = e.rule { o["rule"] = v }
                if let v = e.ruleId { o["rule_id"] = v }
                if let v = e.a { o["a"] = v }
                if let v = e.b { o["b"] = v }
                return o
            }
            return try Relabel.column(column, lines: lines, source: path ?? "the data")
        }
        guard let path, FileManager.default.fileExists(atPath: path) else {
            throw RuleLensError("the rule-prior column \(column) is not a field RuleLens reads from generated data (rule, rule_id, id, answer, a, b, or derived: \(Relabel.derived.keys.sorted().joined(separator: ", ")))",
                                fix: "pass a JSONL --data file that has a \(column) field on every line, or use --rule-prior rule")
        }
        let lines = try Relabel.readLines(path: path)
        guard lines.count == examples.count else {
            throw RuleLensError("\(path) has \(lines.count) JSON lines but \(examples.count) examples were read from it",
                                fix: "remove blank or malformed lines from \(path)")
        }
        return try Relabel.column(column, lines: lines, source: path)
    }

    /// The table row of each example; a value the model never saw in training is an error naming it and the known ones.
    public static func rows(_ spec: RulePriorSpec, values: [String], source: String) throws -> [Int] {
        let index = Dictionary(uniqueKeysWithValues: spec.rules.enumerated().map { ($1, $0) })
        return try values.enumerated().map { i, v in
            guard let r = index[v] else {
                let known = spec.rules.prefix(12).joined(separator: ", ") + (spec.rules.count > 12 ? ", … (\(spec.rules.count) in all)" : "")
                throw RuleLensError("example \(i + 1) of \(source) has \(spec.column) \"\(v)\", which the rule-prior model never saw in training (it knows \(known))",
                                    fix: "use data whose \(spec.column) values the model was trained on (or retrain with them)")
            }
            return r
        }
    }

    /// Prepares `model` for a job that batches `examples` itself: every forward then finds each batch row's prior from
    /// its prompt (`RulePriorGPT.select`).
    public static func select(_ model: any RuleConditionedModel, examples: [Example], tokenizer: any TextTokenizer, path: String?, source: String) throws {
        let values = try values(column: model.spec.column, examples: examples, path: path)
        let rows = try rows(model.spec, values: values, source: source)
        let prompts = try examples.map { [tokenizer.bos] + (try tokenizer.encode($0.prompt, context: "a prompt of \(source)")) }
        try model.select(prompts: prompts, rows: rows)
    }
}
