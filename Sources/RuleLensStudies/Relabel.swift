import Foundation
import RuleLensStore
import RuleLensTasks
import RuleLensNumerics

/// New label columns for an activation file, from any field of the examples' JSONL lines or from a derived
/// column — so a probe can ask about syllogism figure or mood, carries or digit counts without editing HDF5 by hand.
public enum Relabel {
    /// Derived columns and what they hold.
    public static let derived: [String: String] = [
        "figure": "syllogism figure 1–4 (where the middle term sits), from the rule label (e.g. \"Barbara AAA-1\" → 1)",
        "mood": "syllogism mood (the three statement types, e.g. AAA), from the rule label",
        "carry": "operand tasks: \"carry\" when the units digits of a and b sum to 10 or more, else \"no-carry\"",
        "digits": "operand tasks: digit count of the longer operand",
        "answer_length": "characters in the answer",
    ]

    /// One value per line of `lines` (JSON objects): `name` is a derived column or a field present on every line.
    public static func column(_ name: String, lines: [[String: Any]], source: String) throws -> [String] {
        try lines.enumerated().map { i, obj in
            func fail(_ why: String) -> RuleLensError {
                RuleLensError("line \(i + 1) of \(source): cannot derive column \(name) (\(why))",
                              fix: "derived columns: \(derived.keys.sorted().joined(separator: ", ")); or name a field every line has: "
                                + obj.keys.sorted().joined(separator: ", "))
            }
            switch name {
            case "figure", "mood":
                guard let rule = obj["rule"] as? String else { throw fail("no rule field") }
                let parts = rule.split(separator: " ")
                guard parts.count == 2 else { throw fail("rule \(rule) is not a syllogism form label such as \"Barbara AAA-1\"") }
                let mf = parts[1].split(separator: "-")
                guard mf.count == 2 else { throw fail("rule \(rule) has no MOOD-FIGURE part") }
                return String(name == "mood" ? mf[0] : mf[1])
            case "carry":
                guard let a = (obj["a"] as? NSNumber)?.intValue, let b = (obj["b"] as? NSNumber)?.intValue else { throw fail("no integer a and b") }
                return CarryAccuracy.carries(a: a, b: b, base: 10) ? "carry" : "no-carry"
            case "digits":
                guard let a = (obj["a"] as? NSNumber)?.intValue, let b = (obj["b"] as? NSNumber)?.intValue else { throw fail("no integer a and b") }
                return String(max(String(abs(a)).count, String(abs(b)).count))
            case "answer_length":
                guard let answer = (obj["answer"] as? String) ?? (obj["target"] as? String) else { throw fail("no answer or target") }
                return String(answer.count)
            default:
                guard let v = obj[name], !(v is NSNull) else { throw fail("the line has no field \(name)") }
                if let s = v as? String { return s }
                if let n = v as? NSNumber { return n.stringValue }
                let data = try JSONSerialization.data(withJSONObject: v, options: [.sortedKeys, .fragmentsAllowed])
                return String(decoding: data, as: UTF8.self)
            }
        }
    }

    /// The JSON objects of a JSONL file (every field kept, unlike `Example`).
    public static func readLines(path: String) throws -> [[String: Any]] {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw RuleLensError("cannot read \(path)", fix: "check the path")
        }
        var out: [[String: Any]] = []
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: true).enumerated() {
            guard let obj = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
                throw RuleLensError("line \(n + 1) of \(path) is not a JSON object", fix: "give a JSON Lines file, one object per line")
            }
            out.append(obj)
        }
        return out
    }

    /// Copies the activation file `source` to `out` and adds `/meta/NAME` string columns. The lines must be the
    /// examples that were dumped, in order: their prompts are checked against `/meta/prompt`.
    public static func write(source: String, out: String, columns: [String: [String]], lines: [[String: Any]]) throws {
        let fm = FileManager.default
        let reader = try ActivationStoreReader(path: source)
        let n = reader.count
        guard lines.count == n else {
            throw RuleLensError("\(source) holds \(n) examples but the labelled data has \(lines.count) lines",
                                fix: "relabel with the same data (and part) the dump was made from")
        }
        if reader.metaColumns.contains("prompt") {
            let prompts = try reader.stringColumn("prompt")
            if let i = prompts.indices.first(where: { prompts[$0] != (lines[$0]["prompt"] as? String) }) {
                throw RuleLensError("example \(i + 1) of \(source) has prompt \(prompts[i].debugDescription), the data line has "
                                    + "\(((lines[i]["prompt"] as? String) ?? "none").debugDescription)",
                                    fix: "relabel with the same data (and part) the dump was made from")
            }
        }
        for name in columns.keys where reader.metaColumns.contains(name) {
            throw RuleLensError("\(source) already has a column /meta/\(name)", fix: "probe it directly, or pick another name")
        }
        try AtomicFile.produce(out) { temp in
            try fm.copyItem(atPath: source, toPath: temp)
            let file = try HDF5File.open(temp, writable: true)
            defer { file.close() }
            for (name, values) in columns.sorted(by: { $0.key < $1.key }) {
                let ds = try file.createDataset("meta/" + name, type: .string, shape: [values.count])
                try ds.writeStrings(start: 0, values)
            }
            try file.flush()
        }
    }
}
