import Foundation
import RuleLensModel
import RuleLensNumerics

/// The findings page (`rulelens findings RUN… --out docs/findings-generated.md`): from runs' results.json, one Markdown
/// page listing each claim, the study's number, this project's number with its interval and verdict, the deviations,
/// and every check with its interval — the page a reader cites.
public enum FindingsPage {
    /// One run read back: where it came from and its results.json.
    public struct Run {
        public var path: String
        public var results: RunValue
    }

    /// Reads `path`: a run folder (with results.json) or a results.json file.
    public static func load(_ path: String) throws -> Run {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw RuleLensError("\(path) does not exist", fix: "pass run folders (runs/NAME) or their results.json files")
        }
        let file = isDir.boolValue ? (path as NSString).appendingPathComponent("results.json") : path
        guard let data = FileManager.default.contents(atPath: file) else {
            throw RuleLensError("\(path) has no results.json", fix: "pass the --out folder of a finished `rulelens run` (run the spec first)")
        }
        let value: RunValue
        do { value = try RunValue.parse(json: data) } catch {
            throw RuleLensError("\(file) is not JSON (\(error))", fix: "rerun the spec: results.json is rewritten at the end of every run")
        }
        guard value["format"]?.string == "rulelens-run" else {
            throw RuleLensError("\(file) is not the results.json of a `rulelens run`", fix: "pass the results.json a spec run wrote")
        }
        return Run(path: file, results: value)
    }

    /// Reads every run and writes the page to `out` (nil: returns it only).
    @discardableResult
    public static func write(runs paths: [String], to out: String?) throws -> String {
        guard !paths.isEmpty else { throw RuleLensError("no runs given", fix: "pass run folders, e.g. `rulelens findings runs/*`") }
        let page = markdown(try paths.map(load))
        if let out {
            let dir = (out as NSString).deletingLastPathComponent
            if !dir.isEmpty { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
            try AtomicFile.write(Data(page.utf8), to: out)
        }
        return page
    }

    /// A run's verdict (results.json of format 1, before verdicts, gives PASS/FAIL from its counts).
    static func verdict(_ r: RunValue) -> String {
        if let v = r["verdict"]?.string { return v }
        return (r["failed"]?.number ?? 0) > 0 ? "FAIL" : "PASS"
    }

    static func cell(_ s: String) -> String {
        s.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
    }

    static func number(_ v: RunValue?) -> String { v.flatMap(\.number).map(RunValue.format) ?? "–" }

    /// `0.9770 (95% [0.9700, 0.9830], 5 seeds)` for a statistic, the plain value otherwise.
    static func withInterval(value: RunValue?, statistic: RunValue?) -> String {
        var s = number(value)
        if let st = statistic, st != .null, let low = st["ci_low"]?.number, let high = st["ci_high"]?.number {
            s += " (95% [\(RunValue.format(low)), \(RunValue.format(high))], n = \(number(st["n"])))"
        }
        return s
    }

    /// 10000 → "10,000".
    static func grouped(_ n: Int) -> String {
        var digits = String(n), out = ""
        while digits.count > 3 { out = "," + digits.suffix(3) + out; digits.removeLast(3) }
        return digits + out
    }

    static func anchor(_ name: String) -> String {
        let lowered = name.lowercased().map { $0.isLetter || $0.isNumber ? String($0) : $0 == " " || $0 == "-" ? "-" : "" }.joined()
        return lowered
    }

    /// Every statistic of a check, as `call = result (95% [low, high]; seed values …)`.
    static func statistics(_ check: RunValue) -> String {
        guard case .array(let stats)? = check["statistics"], !stats.isEmpty else { return "" }
        return stats.map { st in
            var s = "`\(cell(st["call"]?.string ?? ""))` = \(number(st["result"]))"
            if let low = st["ci_low"]?.number, let high = st["ci_high"]?.number {
                s += " (mean \(number(st["mean"])), 95% [\(RunValue.format(low)), \(RunValue.format(high))])"
            }
            if case .array(let values)? = st["values"] {
                s += "; " + values.map { "\(cell($0["label"]?.string ?? "")): \(number($0["value"]))" }.joined(separator: ", ")
            }
            return s
        }.joined(separator: "<br>")
    }

    static func checksTable(_ checks: [RunValue], preconditions: Bool) -> String {
        var md = "| status | \(preconditions ? "precondition" : "check") | variant | statistics over seeds | why |\n|---|---|---|---|---|\n"
        for c in checks {
            var text = "`\(cell(c["expression"]?.string ?? ""))`"
            if let id = c["id"]?.string { text = "\(id): " + text }
            if let reason = c["inconclusive"]?.string { text += "<br>inconclusive: " + cell(reason) }
            if let error = c["error"]?.string { text += "<br>error: " + cell(error) }
            md += "| \(c["status"]?.string ?? "") | \(text) | \(cell(c["variant"]?.string ?? "")) | \(statistics(c)) | \(cell(c["why"]?.string ?? "")) |\n"
        }
        return md
    }

    /// The page: a summary table (one row per claim), then a section per run.
    public static func markdown(_ runs: [Run]) -> String {
        var md = """
            # Findings

            Generated by `rulelens findings` from the `results.json` of \(runs.count) run\(runs.count == 1 ? "" : "s") of the specs in \
            `Probes/`; regenerate it rather than editing it. Each claim is an analogue of a study's: its deviations from \
            the study are listed with it. Intervals are 95% percentile-bootstrap intervals of the mean over seeds \
            (\(grouped(SeedStatistics.resamples)) resamples); a verdict is INCONCLUSIVE where a precondition the check needs failed.

            | claim | study | the study's number | this project's number | verdict |
            |---|---|---|---|---|

            """
        for run in runs {
            let r = run.results, spec = r["spec"] ?? .null
            let name = spec["name"]?.string ?? run.path
            let study = r["study"] ?? .null
            let citation = study["citation"]?.string ?? spec["study"]?.string ?? "–"
            let studyNumber = [study["number"]?.string, study["measure"]?.string.map { "(\($0))" }].compactMap { $0 }.joined(separator: " ")
            let here = study["here"] ?? .null
            md += "| [\(cell(name))](#\(anchor(name))) | \(cell(citation)) | \(cell(studyNumber.isEmpty ? "–" : studyNumber)) | "
                + "\(here == .null ? "–" : withInterval(value: here["value"], statistic: here["statistic"])) | "
                + "\(verdict(r))\((r["quick"] == .bool(true)) ? " (--quick)" : "") |\n"
        }
        for run in runs {
            let r = run.results, spec = r["spec"] ?? .null
            let name = spec["name"]?.string ?? run.path
            let study = r["study"] ?? .null
            md += "\n## \(name)\n\n"
            md += "**Claim.** \(spec["claim"]?.string ?? "")\n\n"
            if let citation = study["citation"]?.string ?? spec["study"]?.string {
                md += "**Study.** \(citation)"
                if let setting = study["setting"]?.string { md += " — \(setting)" }
                md += ".\n"
                if let n = study["number"]?.string {
                    md += "The study's number: **\(n)**" + (study["measure"]?.string.map { " (\($0))" } ?? "") + ".\n"
                }
                md += "\n"
            }
            if let here = study["here"], here != .null {
                md += "**This project.** **\(withInterval(value: here["value"], statistic: here["statistic"]))**, `\(here["expression"]?.string ?? "")`"
                if let e = here["error"]?.string { md += " (\(e))" }
                if case .array(let values)? = here["statistic"]?["values"] {
                    md += "; per seed: " + values.map { "\($0["label"]?.string ?? ""): \(number($0["value"]))" }.joined(separator: ", ")
                }
                md += ".\n\n"
            }
            let quick = r["quick"] == .bool(true)
            md += "**Verdict: \(verdict(r))**" + (quick ? " — a `--quick` smoke run: sizes shrunk, the numbers mean nothing" : "")
                + ". Run `\(cell(run.path))`, spec `\(spec["path"]?.string ?? "")`, RuleLens \(r["rulelens_version"]?.string ?? "?"), "
                + "wall time \(RunValue.format((r["seconds"]?.number ?? 0).rounded())) s"
                + (r["seeds"].flatMap { v -> String? in if case .array(let a) = v { return ", seeds \(a.map(\.display).joined(separator: ", "))" }; return nil } ?? "")
                + ".\n\n"
            if case .array(let deviations)? = r["deviations"], !deviations.isEmpty {
                md += "Deviations from the study:\n\n| aspect | the study | this project |\n|---|---|---|\n"
                for d in deviations { md += "| \(cell(d["aspect"]?.string ?? "")) | \(cell(d["study"]?.string ?? "")) | \(cell(d["here"]?.string ?? "")) |\n" }
                md += "\n"
            }
            if case .array(let pre)? = r["preconditions"], !pre.isEmpty {
                md += "Preconditions:\n\n" + checksTable(pre, preconditions: true) + "\n"
            }
            if case .array(let checks)? = r["expectations"], !checks.isEmpty {
                md += "Checks:\n\n" + checksTable(checks, preconditions: false)
            }
        }
        return md
    }
}
