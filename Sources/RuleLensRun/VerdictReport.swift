import Foundation

/// The verdict parts of results.json and of the report: the study beside this run, the deviations, the preconditions,
/// and each check's statistics (every seed's value and the interval).
enum VerdictReport {
    // MARK: results.json

    static func statisticJSON(_ st: StatisticRecord) -> RunValue {
        .object(["call": .string(st.call), "function": .string(st.function), "over": .array(st.over.map { .string($0) }),
                 "values": .array(st.values.map { .object(["label": .string($0.label), "value": .number($0.value)]) }),
                 "n": .number(Double(st.values.count)), "mean": .number(st.mean), "sd": .number(st.sd),
                 "ci_low": st.interval.map { .number($0.low) } ?? .null, "ci_high": st.interval.map { .number($0.high) } ?? .null,
                 "level": .number(SeedStatistics.level), "resamples": .number(Double(SeedStatistics.resamples)),
                 "result": .number(st.result)])
    }

    static func checkJSON(_ e: ExpectationResult) -> RunValue {
        var o: [String: RunValue] = [
            "expression": .string(e.text), "why": e.why.map { .string($0) } ?? .null, "variant": e.variant.map { .string($0) } ?? .null,
            "status": .string(e.status), "passed": .bool(e.verdict == .pass), "error": e.error.map { .string($0) } ?? .null,
            "inconclusive": e.inconclusive.map { .string($0) } ?? .null,
            "readings": .object(Dictionary(e.readings.map { ($0.0, $0.1) }, uniquingKeysWith: { a, _ in a })),
            "statistics": .array(e.statistics.map(statisticJSON)),
        ]
        if let id = e.id { o["id"] = .string(id) }
        if let needs = e.needs { o["needs"] = .array(needs.map { .string($0) }) }
        return .object(o)
    }

    /// The keys results.json gains: verdict, exit code, study, deviations, seeds, preconditions.
    static func resultsKeys(_ s: RunSummary) -> [String: RunValue] {
        var study: RunValue = .null
        if let d = s.spec.studyDetails {
            var here: RunValue = .null
            if let c = s.study {
                here = .object(["expression": .string(c.expression), "value": c.value.map { .number($0) } ?? .null,
                                "error": c.error.map { .string($0) } ?? .null,
                                "statistic": c.statistic.map(statisticJSON) ?? .null])
            }
            study = .object(["citation": .string(d.citation), "setting": d.setting.map { .string($0) } ?? .null,
                             "measure": d.measure.map { .string($0) } ?? .null, "number": d.number.map { .string($0) } ?? .null,
                             "here": here])
        } else if let citation = s.spec.study {
            study = .object(["citation": .string(citation)])
        }
        return [
            "verdict": .string(s.verdict.rawValue), "exit_code": .number(Double(s.exitCode)),
            "inconclusive": .number(Double(s.inconclusive)),
            "study": study,
            "deviations": .array(s.spec.deviations.map { .object(["aspect": .string($0.aspect), "study": .string($0.study), "here": .string($0.here)]) }),
            "seeds": s.spec.seeds.map { seeds in .array((s.quick ? s.spec.quickSeeds : seeds).map { .string($0) }) } ?? .null,
            "preconditions": .array(s.preconditions.map(checkJSON)),
        ]
    }

    // MARK: HTML

    static let css = """
    tr.inconclusive td.status{background:#e4e4f4;color:#33336b;font-weight:bold}.verdict.inconclusive{color:#33336b}.verdict.error{color:#7a4500}
    table.study th{width:16em}.seedvals{font-size:12px;color:#333}.interval{white-space:nowrap}
    """

    static func esc(_ s: String) -> String { RunReport.esc(s) }

    static func interval(_ st: StatisticRecord) -> String {
        guard let i = st.interval else { return "" }
        return "<span class=\"interval\">95% [\(RunValue.format(i.low)), \(RunValue.format(i.high))]</span>"
    }

    static func seedValues(_ st: StatisticRecord) -> String {
        "<span class=\"seedvals\">" + st.values.map { "\(esc($0.label)): \(RunValue.format($0.value))" }.joined(separator: " · ") + "</span>"
    }

    /// The study beside this run, and the deviations: right under the claim.
    static func header(_ s: RunSummary) -> String {
        var h = ""
        if let d = s.spec.studyDetails {
            h += "<h2 id=\"study\">The study and this run</h2><table class=\"study\">"
            h += "<tr><th>study</th><td>\(esc(d.citation))</td></tr>"
            if let setting = d.setting { h += "<tr><th>the study's setting</th><td>\(esc(setting))</td></tr>" }
            if let m = d.measure { h += "<tr><th>measure</th><td>\(esc(m))</td></tr>" }
            h += "<tr><th>the study's number</th><td id=\"study-number\">\(esc(d.number ?? "–"))</td></tr>"
            if let c = s.study {
                var here = c.value.map { "<b>\(RunValue.format($0))</b>" } ?? "–"
                if let st = c.statistic { here += " " + interval(st) + "<br>" + seedValues(st) }
                if let e = c.error { here += "<br><small>\(esc(e))</small>" }
                h += "<tr><th>this run's number</th><td id=\"run-number\">\(here)<br><small><code>\(esc(c.expression))</code></small></td></tr>"
            }
            h += "</table>"
        }
        if !s.spec.deviations.isEmpty {
            h += "<h3 id=\"deviations\">Deviations from the study</h3><table class=\"deviations\"><tr><th>aspect</th><th>the study</th><th>this run</th></tr>"
            for d in s.spec.deviations { h += "<tr><td>\(esc(d.aspect))</td><td>\(esc(d.study))</td><td>\(esc(d.here))</td></tr>" }
            h += "</table>"
        }
        return h
    }

    /// The verdict line and the run's counts.
    static func verdictLine(_ s: RunSummary) -> String {
        let v = s.verdict
        var parts = ["\(s.passed) passed", "\(s.failed) failed"]
        if s.inconclusive > 0 { parts.append("\(s.inconclusive) inconclusive") }
        let errors = s.expectations.filter { $0.verdict == .error }.count
        if errors > 0 { parts.append("\(errors) could not be evaluated") }
        return "<p class=\"verdict \(v.rawValue.lowercased())\" id=\"verdict\" data-verdict=\"\(v.rawValue)\">\(v.rawValue): "
            + parts.joined(separator: ", ") + " of \(s.expectations.count)"
            + (s.quick && v != .pass && v != .error ? " (a --quick run: only errors set the exit code)" : "") + "</p>"
    }

    /// One table of checks: status, expression, variant, numbers read, statistics (each seed and the interval), why.
    static func table(_ checks: [ExpectationResult], sweep: Bool, preconditions: Bool) -> String {
        // The statistics column only where a check computed one.
        let withStatistics = checks.contains { !$0.statistics.isEmpty }
        var h = "<table class=\"\(preconditions ? "preconditions" : "expectations")\"><tr><th>status</th>" + (preconditions ? "<th>id</th>" : "")
            + "<th>\(preconditions ? "precondition" : "expectation")</th><th>variant</th><th>numbers read</th>"
            + (withStatistics ? "<th>statistics over seeds</th>" : "") + "<th>why</th></tr>"
        for e in checks {
            let nums = e.readings.count > 12
                ? "\(e.readings.count) numbers (results.json lists them)"
                : e.readings.map { "\(esc($0.0)) = <b>\(esc($0.1.display))</b>" }.joined(separator: "<br>")
            let stats = e.statistics.map { st in
                "<code>\(esc(st.call))</code> = <b>\(RunValue.format(st.result))</b> " + interval(st) + "<br>" + seedValues(st)
            }.joined(separator: "<br>")
            h += "<tr class=\"\(preconditions ? "precondition" : "expect") \(e.status.lowercased())\" data-\(preconditions ? "precondition" : "status")=\"\(e.status)\"><td class=\"status\">\(e.status)</td>"
            if preconditions { h += "<td>\(esc(e.id ?? ""))</td>" }
            h += "<td><code>\(esc(e.text))</code>" + (e.error.map { "<br><small>\(esc($0))</small>" } ?? "")
                + (e.inconclusive.map { "<br><small>inconclusive: \(esc($0))</small>" } ?? "") + "</td>"
            h += "<td>\(esc(e.variant ?? (sweep ? "all variants" : "")))</td><td>\(nums)</td>" + (withStatistics ? "<td>\(stats)</td>" : "")
                + "<td>\(esc(e.why ?? ""))</td></tr>"
        }
        return h + "</table>"
    }
}
