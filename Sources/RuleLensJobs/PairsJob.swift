import Foundation
import RuleLensModel
import RuleLensNumerics
import RuleLensTasks

/// `rulelens data pairs`: corrupted counterparts for activation patching, with the pairing recorded.
///
/// - Operand tasks (a, b in the data and the task known from `meta.json` or `--task`): one operand changes (b
///   first, then a, values in a seeded order) to the first value that keeps the prompt's length and changes the
///   first answer token; the example is rebuilt by the task's own generator.
/// - Syllogisms: the same terms (S, M, P, read from the prompt and conclusion) under another of the 24 forms whose
///   conclusion starts with another token and whose prompt has the same length (seeded choice among them).
/// - Math derivation: the same expression under another operator (`MathDerivation.counterparts`): differentiate
///   and integrate as they are, add/subtract/multiply/divide with an operand drawn until the prompt has the same length.
/// - Explanatory: the same subject (class or thing) under another inference type (`Explanatory.counterparts`: every
///   instance of the other types about it, enumerated), with a prompt of the same length.
///   For these two, counterparts whose conclusion starts with another character are preferred; when none has one,
///   the shared beginning of the two conclusions is moved into both prompts (recorded as `answer_prefix`), so the
///   first answer tokens differ and the prompts keep one length.
/// Examples without such a counterpart are left out and counted. `oneLength` keeps only pairs of the most common
/// prompt length, as patching's [layer, position] matrices need.
public enum PairsJob {
    public struct Result { public var clean: [Example]; public var corrupt: [Example]; public var records: [[String: Any]]; public var skipped: Int }

    public static func make(_ loaded: LoadedData, task: TaskName?, seed: UInt64, oneLength: Bool, limit: Int?) throws -> Result {
        let taskName = try task ?? loaded.meta.map { try TaskName.named($0.task) }
        guard let taskName else {
            throw RuleLensError("the task of \(loaded.origin) is unknown (no meta.json beside it)",
                                fix: "pass a `rulelens data generate` directory or file inside one, or --task NAME")
        }
        let format = try loaded.meta.map { try TaskFormat.named($0.format) } ?? .direct
        var clean: [Example] = [], corrupt: [Example] = [], records: [[String: Any]] = []
        var skipped = 0
        for (line, e) in loaded.examples.enumerated() {
            var rng = SeededRNG(seed: seed, stream: "pairs:\(line)")
            let made: (Example, [String: Any])?
            if let plane = OperandTasks.plane(of: taskName) {
                guard let a = e.a, let b = e.b else {
                    throw RuleLensError("line \(line + 1) of \(loaded.origin) has no operands a, b", fix: "use data generated for an operand task")
                }
                made = operandPair(e, task: taskName, format: format, plane: plane, a: a, b: b, rng: &rng)
            } else if taskName == .syllogism {
                made = try syllogismPair(e, line: line, rng: &rng)
            } else if taskName == .mathDerivation {
                made = try mathPair(e, line: line, rng: &rng)
            } else if taskName == .explanatory {
                made = try explanatoryPair(e, line: line, rng: &rng)
            } else {
                throw RuleLensError("`data pairs` does not build counterparts for \(taskName.rawValue)",
                                    fix: "use an operand or rule task, or write the corrupted JSONL yourself (line i pairs with line i)")
            }
            guard let (c, record) = made else { skipped += 1; continue }
            var r = record
            r["line"] = line + 1; r["id"] = e.id ?? line
            var x = e
            if let prefix = r["answer_prefix"] as? String, !prefix.isEmpty {
                // Source maps index the original target's tokens: they no longer apply, so they are dropped.
                x.prompt += prefix; x.target = String(x.target.unicodeScalars.dropFirst(prefix.unicodeScalars.count)); x.sources = nil
            }
            clean.append(x); corrupt.append(c); records.append(r)
        }
        if oneLength, !clean.isEmpty {
            var counts: [Int: Int] = [:]
            for e in clean { counts[e.prompt.unicodeScalars.count, default: 0] += 1 }
            let best = counts.max { $0.value != $1.value ? $0.value < $1.value : $0.key > $1.key }!.key
            let keep = clean.indices.filter { clean[$0].prompt.unicodeScalars.count == best }
            skipped += clean.count - keep.count
            clean = keep.map { clean[$0] }; corrupt = keep.map { corrupt[$0] }; records = keep.map { records[$0] }
        }
        if let limit, clean.count > limit {
            clean = Array(clean.prefix(limit)); corrupt = Array(corrupt.prefix(limit)); records = Array(records.prefix(limit))
        }
        guard !clean.isEmpty else {
            throw RuleLensError("no example of \(loaded.origin) has a counterpart", fix: "use more data, or drop --one-length")
        }
        return Result(clean: clean, corrupt: corrupt, records: records, skipped: skipped)
    }

    static func operandPair(_ e: Example, task: TaskName, format: TaskFormat, plane: OperandPlane, a: Int, b: Int,
                            rng: inout SeededRNG) -> (Example, [String: Any])? {
        for operand in ["b", "a"] {
            var values = operand == "b" ? Array(plane.bMin...plane.bMax) : Array(plane.aMin...plane.aMax)
            rng.shuffle(&values)
            for v in values {
                let (na, nb) = operand == "b" ? (a, v) : (v, b)
                guard (na, nb) != (a, b), plane.contains(a: na, b: nb, task: task) else { continue }
                let c = OperandTasks.example(task: task, a: na, b: nb, format: format)
                guard c.prompt.unicodeScalars.count == e.prompt.unicodeScalars.count,
                      c.target.unicodeScalars.first != e.target.unicodeScalars.first else { continue }
                return (c, ["changed": operand, "from": operand == "b" ? b : a, "to": v])
            }
        }
        return nil
    }

    /// (x, y) of "All x are y." / "No x are y." / "Some x are y." / "Some x are not y.".
    static func terms(_ statement: String) -> (String, String)? {
        var s = Substring(statement)
        guard s.hasSuffix(".") else { return nil }
        s = s.dropLast()
        for q in ["All ", "No ", "Some "] where s.hasPrefix(q) {
            let rest = s.dropFirst(q.count)
            for sep in [" are not ", " are "] {
                if let r = rest.range(of: sep) { return (String(rest[..<r.lowerBound]), String(rest[r.upperBound...])) }
            }
        }
        return nil
    }

    static func syllogismPair(_ e: Example, line: Int, rng: inout SeededRNG) throws -> (Example, [String: Any])? {
        guard let rule = e.rule, let formIndex = Syllogisms.forms.firstIndex(where: { $0.label == rule }),
              let (s, p) = terms(e.target) else {
            throw RuleLensError("line \(line + 1) is not a syllogism example (rule '\(e.rule ?? "")', target '\(e.target)')",
                                fix: "use data from `rulelens data generate --task syllogism`")
        }
        // The minor premise (first sentence) holds S and M.
        guard let firstEnd = e.prompt.firstIndex(of: "."), let (x, y) = terms(String(e.prompt[...firstEnd])) else { return nil }
        let m = x == s ? y : x
        let candidates = Syllogisms.forms.indices.filter { k in
            guard k != formIndex else { return false }
            let c = Syllogisms.instance(form: Syllogisms.forms[k], ruleId: k, s: s, m: m, p: p)
            return c.prompt.unicodeScalars.count == e.prompt.unicodeScalars.count && c.target.first != e.target.first
        }
        guard !candidates.isEmpty else { return nil }
        let k = candidates[rng.int(below: candidates.count)]
        var c = Syllogisms.instance(form: Syllogisms.forms[k], ruleId: k, s: s, m: m, p: p)
        c.id = e.id
        return (c, ["changed": "rule", "from": rule, "to": Syllogisms.forms[k].label])
    }

    static func mathPair(_ e: Example, line: Int, rng: inout SeededRNG) throws -> (Example, [String: Any])? {
        let candidates: [Example]
        do {
            candidates = try MathDerivation.counterparts(of: e.prompt, length: e.prompt.unicodeScalars.count, rng: &rng)
        } catch let error as SymbolicError {
            throw RuleLensError("line \(line + 1) is not a math-derivation example (\(error.description))",
                                fix: "use data from `rulelens data generate --task math-derivation`")
        }
        return divergingPair(e, candidates, rng: &rng)
    }

    static func explanatoryPair(_ e: Example, line: Int, rng: inout SeededRNG) throws -> (Example, [String: Any])? {
        guard let rule = e.rule, Explanatory.inferenceTypes.contains(rule) else {
            throw RuleLensError("line \(line + 1) is not an explanatory example (rule '\(e.rule ?? "")')",
                                fix: "use data from `rulelens data generate --task explanatory`")
        }
        return divergingPair(e, Explanatory.counterparts(of: e, length: e.prompt.unicodeScalars.count), rng: &rng)
    }

    /// A seeded choice among `candidates` (same prompt length, another rule): one whose conclusion starts with another
    /// character if any; else one whose conclusion differs after a shared beginning, which moves into both prompts
    /// (`answer_prefix`; the caller moves it in the clean example). Nil when no candidate's conclusion differs.
    static func divergingPair(_ e: Example, _ candidates: [Example], rng: inout SeededRNG) -> (Example, [String: Any])? {
        let target = Array(e.target.unicodeScalars)
        func shared(_ c: Example) -> Int {
            let other = Array(c.target.unicodeScalars)
            var k = 0
            while k < min(target.count, other.count) && target[k] == other[k] { k += 1 }
            return k
        }
        // Both conclusions must go on after the shared beginning (so each has a first answer token of its own).
        let usable = candidates.filter { c in let k = shared(c); return k < target.count && k < c.target.unicodeScalars.count }
        let differing = usable.filter { shared($0) == 0 }
        let pool = differing.isEmpty ? usable : differing
        guard !pool.isEmpty else { return nil }
        var c = pool[rng.int(below: pool.count)]
        let k = shared(c)
        let prefix = String(String.UnicodeScalarView(target[0..<k]))
        c.id = e.id
        if k > 0 {
            c.prompt += prefix
            c.target = String(String.UnicodeScalarView(Array(c.target.unicodeScalars)[k...]))
            c.sources = nil
        }
        let record: [String: Any] = ["changed": "rule", "from": e.rule ?? "", "to": c.rule ?? "", "answer_prefix": prefix]
        return (c, record)
    }

    /// Writes DIR/clean.jsonl, DIR/corrupt.jsonl and DIR/pairs.json (the pairing and its provenance).
    public static func write(_ r: Result, to dir: String, source: String, seed: UInt64, force: Bool) throws {
        let fm = FileManager.default
        let files = ["clean.jsonl", "corrupt.jsonl", "pairs.json"].map { (dir as NSString).appendingPathComponent($0) }
        if !force, let existing = files.first(where: { fm.fileExists(atPath: $0) }) {
            throw RuleLensError("\(existing) already exists", fix: "choose another --out folder or pass --force")
        }
        try OutputCommit.createFolder(dir)
        try JSONL.writeExamples(r.clean, to: files[0])
        try JSONL.writeExamples(r.corrupt, to: files[1])
        let meta: [String: Any] = ["source": source, "seed": seed, "pairs": r.records, "skipped": r.skipped,
                                   "rulelens_version": RuleLensVersion.string,
                                   "note": "line i of corrupt.jsonl is the counterpart of line i of clean.jsonl"]
        try AtomicFile.write(try JSONSerialization.data(withJSONObject: meta, options: [.prettyPrinted, .sortedKeys]), to: files[2])
    }
}
