import Foundation
import RuleLensJobs
import RuleLensModel
import RuleLensNumerics
import RuleLensStore

/// results.json (every number) and report/index.html (self-contained: inline CSS and SVG, nothing fetched).
public enum RunReport {
    public static func write(_ s: inout RunSummary) throws {
        let fm = FileManager.default
        let reportDir = (s.outDir as NSString).appendingPathComponent("report")
        try fm.createDirectory(atPath: reportDir, withIntermediateDirectories: true)
        try AtomicFile.write(Data(resultsJSON(s).jsonText().utf8), to: s.resultsPath)
        try AtomicFile.write(Data(html(s, reportDir: reportDir).utf8), to: s.reportPath)
    }

    static var kernel: String { ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] ?? "unset" }

    public static func resultsJSON(_ s: RunSummary) -> RunValue {
        var f = Fingerprint(); f.add(s.spec.source)
        let variants: [RunValue] = s.variants.map { v, steps in
            .object(["id": .string(v.id), "vars": .object(v.vars.mapValues { .string($0) }), "folder": .string(v.folder),
                     "steps": .object(Dictionary(steps.map { r in
                         (r.id, RunValue.object(["kind": .string(r.kind), "command": .string(r.command), "cached": .bool(r.cached),
                                                 "seconds": .number(r.seconds), "dir": .string(r.dir), "results": r.results,
                                                 "figures": .array(r.figures.map { .string(($0.file)) }),
                                                 "files": .array(r.files.map { .string($0) })]))
                     }, uniquingKeysWith: { a, _ in a }))])
        }
        let expectations = s.expectations.map(VerdictReport.checkJSON)
        var keys: [String: RunValue] = [
            "format": .string("rulelens-run"), "format_version": .number(2),
            "spec": .object(["name": .string(s.spec.name), "claim": .string(s.spec.claim), "path": .string(s.spec.path),
                             "study": s.spec.study.map { .string($0) } ?? .null, "fingerprint": .string(f.hex)]),
            "rulelens_version": .string(RuleLensVersion.string), "openblas_coretype": .string(kernel),
            "quick": .bool(s.quick), "out": .string(s.outDir), "seconds": .number(s.seconds),
            "finished_utc": .string(ISO8601DateFormatter().string(from: Date())),
            "variants": .array(variants), "expectations": .array(expectations),
            "passed": .number(Double(s.passed)), "failed": .number(Double(s.failed)),
        ]
        keys.merge(VerdictReport.resultsKeys(s)) { _, new in new }
        return .object(keys)
    }

    static func esc(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static let css = """
    body{font:15px/1.45 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0;background:#fafafa;color:#1b1b1b}
    main{max-width:1100px;margin:0 auto;padding:24px 32px 64px;background:#fff;min-height:100vh}
    h1{font-size:26px;margin:0 0 6px}h2{font-size:20px;margin-top:36px;border-bottom:1px solid #ddd;padding-bottom:4px}
    h3{font-size:16px;margin:22px 0 6px}.claim{font-size:17px;border-left:4px solid #4e79a7;margin:12px 0;padding:6px 14px;background:#f3f6fa}
    .meta{color:#555;font-size:13px}table{border-collapse:collapse;margin:8px 0 16px;font-size:13px}
    th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}th{background:#f0f0f0}
    td.num{text-align:right;font-variant-numeric:tabular-nums}
    tr.pass td.status{background:#d9f2dc;color:#135c1e;font-weight:bold}tr.fail td.status{background:#fbdada;color:#8a1010;font-weight:bold}
    tr.error td.status{background:#fde7c8;color:#7a4500;font-weight:bold}
    pre{background:#f6f6f6;padding:8px 10px;overflow-x:auto;font-size:12px;margin:4px 0}
    figure{margin:12px 0;display:inline-block;vertical-align:top;max-width:100%}figure svg{max-width:100%;height:auto}
    figcaption{font-size:13px;color:#444}.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;background:#eee}
    .verdict{font-size:18px;font-weight:bold;margin:8px 0}.verdict.pass{color:#135c1e}.verdict.fail{color:#8a1010}
    """ + VerdictReport.css

    static func html(_ s: RunSummary, reportDir: String) -> String {
        var h = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>RuleLens · \(esc(s.spec.name))</title>"
        h += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><style>\(css)</style></head><body><main>\n"
        h += "<h1 id=\"spec-name\">\(esc(s.spec.name))</h1>"
        if let study = s.spec.study { h += "<div class=\"meta\">\(esc(study))</div>" }
        h += "<p class=\"claim\" id=\"claim\">\(esc(s.spec.claim))</p>"
        if let d = s.spec.description { h += "<p>\(esc(d))</p>" }
        h += VerdictReport.header(s)
        h += "<p class=\"meta\">spec \(esc(s.spec.path)) · RuleLens \(RuleLensVersion.string) · OPENBLAS_CORETYPE \(esc(kernel)) · "
        h += "\(s.variants.count) variant\(s.variants.count == 1 ? "" : "s") · wall time \(ProgressLine.duration(s.seconds))"
        h += " · finished \(ISO8601DateFormatter().string(from: Date()))"
        h += s.quick ? " · <b>--quick smoke run: sizes shrunk, the numbers mean nothing</b>" : ""
        h += " · <a href=\"../results.json\">results.json</a></p>\n"

        // Expectations.
        h += "<h2 id=\"expectations\">Expectations</h2>"
        if s.expectations.isEmpty { h += "<p>This spec states no expectations.</p>" } else {
            h += VerdictReport.verdictLine(s)
            h += VerdictReport.table(s.expectations, sweep: s.variants.count > 1, preconditions: false)
        }
        if !s.preconditions.isEmpty {
            h += "<h2 id=\"preconditions\">Preconditions</h2><p>Checks that must hold for the expectations to test anything: "
                + "an expectation that needs one that did not hold (in a variant it reads) is INCONCLUSIVE.</p>"
            h += VerdictReport.table(s.preconditions, sweep: s.variants.count > 1, preconditions: true)
        }

        // Sweep tables: per step, one row per variant, its headline numbers.
        if s.variants.count > 1 {
            h += "<h2 id=\"sweep\">Sweep</h2>"
            for (i, step) in (s.variants.first?.steps ?? []).enumerated() {
                let columns = headlineKeys(s.variants.compactMap { $0.steps[safe: i]?.results })
                guard !columns.isEmpty else { continue }
                h += "<h3>\(esc(step.id)) (\(esc(step.kind)))</h3><table class=\"sweep\"><tr><th>variant</th>"
                    + columns.map { "<th>\(esc($0.joined(separator: ".")))</th>" }.joined() + "</tr>"
                for (v, steps) in s.variants {
                    guard let r = steps[safe: i]?.results else { continue }
                    h += "<tr><td>\(esc(v.id))</td>" + columns.map { "<td class=\"num\">\(esc(r.lookup($0)?.display ?? "–"))</td>" }.joined() + "</tr>"
                }
                h += "</table>"
            }
        }

        // Steps, per variant.
        h += "<h2 id=\"steps\">Steps</h2>"
        for (v, steps) in s.variants {
            if s.variants.count > 1 { h += "<h3 class=\"variant\">Variant \(esc(v.id))</h3>" }
            for r in steps {
                h += "<section class=\"step\" data-step=\"\(esc(r.id))\"><h3>\(esc(r.id)) <span class=\"badge\">\(esc(r.kind))</span> "
                h += "<span class=\"badge\">\(r.cached ? "cached" : "ran") · \(ProgressLine.duration(r.seconds))</span></h3>"
                h += "<pre>$ \(esc(r.command))</pre>"
                let keys = headlineKeys([r.results])
                if !keys.isEmpty {
                    h += "<table class=\"results\">" + keys.map { "<tr><th>\(esc($0.joined(separator: ".")))</th><td class=\"num\">\(esc(r.results.lookup($0)?.display ?? ""))</td></tr>" }.joined() + "</table>"
                }
                for fig in r.figures {
                    let path = (r.dir as NSString).appendingPathComponent(fig.file)
                    let svg = (try? String(contentsOfFile: path, encoding: .utf8)).map(stripXMLHeader) ?? "<p>(missing \(esc(fig.file)))</p>"
                    h += "<figure class=\"figure\" data-file=\"\(esc(fig.file))\">\(svg)<figcaption>\(esc(fig.title))</figcaption></figure>"
                }
                let links = r.files.map { f -> String in
                    let rel = relative((r.dir as NSString).appendingPathComponent(f), from: reportDir)
                    return "<a href=\"\(esc(rel))\">\(esc(f))</a>"
                }
                if !links.isEmpty { h += "<p class=\"files\">outputs: " + links.joined(separator: " · ") + "</p>" }
                h += "</section>\n"
            }
        }
        h += "<h2>Spec</h2><pre>\(esc(s.spec.source))</pre>"
        h += "</main></body></html>\n"
        return h
    }

    /// Scalar numeric leaves up to three levels deep (e.g. test.accuracy, test.carry.inside_carry), at most 14.
    static func headlineKeys(_ results: [RunValue]) -> [[String]] {
        var keys: [[String]] = []
        func walk(_ v: RunValue, _ path: [String]) {
            guard keys.count < 14 else { return }
            switch v {
            case .number, .bool: if !path.isEmpty, !keys.contains(path) { keys.append(path) }
            case .object(let o) where path.count < 3:
                for k in o.keys.sorted() { walk(o[k]!, path + [k]) }
            default: break
            }
        }
        for r in results { walk(r, []) }
        return keys
    }

    static func stripXMLHeader(_ svg: String) -> String {
        guard let r = svg.range(of: "<svg") else { return svg }
        return String(svg[r.lowerBound...])
    }

    /// `path` relative to the folder `base` (both relative to the same working directory, or both absolute).
    static func relative(_ path: String, from base: String) -> String {
        let p = (path as NSString).standardizingPath.split(separator: "/"), b = (base as NSString).standardizingPath.split(separator: "/")
        var i = 0
        while i < p.count, i < b.count, p[i] == b[i] { i += 1 }
        return (Array(repeating: "..", count: b.count - i) + p[i...].map(String.init)).joined(separator: "/")
    }
}

extension Array {
    subscript(safe i: Int) -> Element? { indices.contains(i) ? self[i] : nil }
}
