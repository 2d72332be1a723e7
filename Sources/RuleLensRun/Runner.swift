import CRuleLensProcess
import Foundation
import RuleLensJobs
import RuleLensModel
import RuleLensNumerics

/// Options of `rulelens run`.
public struct RunOptions {
    public var specPath: String
    /// Run folder (default runs/NAME, or runs/NAME-quick with --quick).
    public var outDir: String?
    /// Run only this step id (in every variant); the others are read from their stamps.
    public var only: String?
    public var force = false
    public var quick = false
    public var threads: Int?
    public var progress = true
    /// Variants run at once, each in its own process (`rulelens run --jobs N`); 1 runs them in turn in this one.
    public var jobs = 1
    /// The `rulelens` binary the variant processes run (needed when `jobs` > 1).
    public var executable: String?
    /// Bounds on what the spec may ask (`--limit NAME=N`).
    public var limits = SpecLimits.standard
    public init(specPath: String) { self.specPath = specPath }
}

/// One step's record in results.json and the report.
public struct StepRecord {
    public var id: String
    public var kind: String
    public var command: String
    public var dir: String
    public var cached: Bool
    public var ran: Bool
    public var seconds: Double
    public var results: RunValue
    public var figures: [StepFigure]
    public var files: [String]
}

/// One check's outcome (an expectation or a precondition) in one variant, one seed, or across them.
public struct ExpectationResult {
    public var text: String
    public var why: String?
    /// The variant it was read in (nil: once, over the whole sweep).
    public var variant: String?
    public var passed: Bool
    /// Set when the expression could not be evaluated (a missing result): the spec is broken.
    public var error: String?
    /// Every number read: `path = value`.
    public var readings: [(String, RunValue)]
    /// Why it is INCONCLUSIVE: the preconditions that failed, or an undefined statistic (nil: it is not).
    public var inconclusive: String? = nil
    /// Statistics over seeds it computed (each value and the bootstrap interval).
    public var statistics: [StatisticRecord] = []
    /// Indices of the variants it read.
    public var variantsRead: Set<Int> = []
    /// Whether it was read in one variant (or seed) rather than once over the sweep.
    public var perVariant = false
    /// A precondition's id.
    public var id: String? = nil
    /// An expectation's `needs:` (nil: every precondition).
    public var needs: [String]? = nil

    public init(text: String, why: String?, variant: String?, passed: Bool, error: String?, readings: [(String, RunValue)]) {
        self.text = text; self.why = why; self.variant = variant; self.passed = passed; self.error = error; self.readings = readings
    }

    public var verdict: Verdict { error != nil ? .error : inconclusive != nil ? .inconclusive : passed ? .pass : .fail }
    public var status: String { verdict.rawValue }
}

/// What `rulelens run` did.
public struct RunSummary {
    public var spec: ExperimentSpec
    public var outDir: String
    public var quick: Bool
    public var variants: [(variant: Variant, steps: [StepRecord])]
    public var expectations: [ExpectationResult]
    /// The spec's preconditions, evaluated like expectations.
    public var preconditions: [ExpectationResult] = []
    /// This run's number for the study's headline measure.
    public var study: StudyComparison? = nil
    public var seconds: Double
    public var reportPath: String
    public var resultsPath: String
    public var failed: Int { expectations.filter { $0.verdict == .fail }.count }
    public var passed: Int { expectations.filter { $0.verdict == .pass }.count }
    public var inconclusive: Int { expectations.filter { $0.verdict == .inconclusive }.count }
    public var verdict: Verdict { Verdict.of(expectations: expectations, preconditions: preconditions) }
    /// Exit status (Verdict.exitCode): 0 PASS, 1 FAIL, 2 ERROR, 3 INCONCLUSIVE; a --quick smoke run fails only on errors.
    public var exitCode: Int32 { verdict.exitCode(quick: quick) }

    /// The PASS/FAIL/INCONCLUSIVE lines the CLI prints: preconditions first, then expectations with their intervals.
    public var expectationLines: [String] {
        func statistic(_ st: StatisticRecord) -> String {
            let values = st.values.map { RunValue.format($0.value) }.joined(separator: " ")
            guard let i = st.interval else { return "\(st.call) = \(RunValue.format(st.result)), values: \(values)" }
            let bounds = "[\(RunValue.format(i.low)), \(RunValue.format(i.high))]"
            return "\(st.call) = \(RunValue.format(st.result)) (mean \(RunValue.format(i.mean)), 95% \(bounds), \(st.values.count) values: \(values))"
        }
        func line(_ e: ExpectationResult, prefix: String) -> String {
            let nums = e.readings.count > 6 ? "\(e.readings.count) numbers read" : e.readings.map { "\($0.0) = \($0.1.display)" }.joined(separator: ", ")
            let stats = e.statistics.map(statistic).joined(separator: "; ")
            var out = "\(e.status)  \(prefix)\(e.text)"
            if let v = e.variant { out += "  [\(v)]" }
            if !nums.isEmpty { out += "  (\(nums))" }
            if !stats.isEmpty { out += "  {\(stats)}" }
            if let error = e.error { out += " — \(error)" }
            if let reason = e.inconclusive { out += " — inconclusive: \(reason)" }
            return out
        }
        return preconditions.map { line($0, prefix: "precondition \($0.id ?? ""): ") } + expectations.map { line($0, prefix: "") }
    }
}

/// Executes a spec: steps in order per variant with make-like caching, then expectations, results.json and the report.
public final class ExperimentRunner {
    public let options: RunOptions
    public var log: (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }

    public init(options: RunOptions) { self.options = options }

    public static func defaultOutDir(for spec: ExperimentSpec, quick: Bool) -> String {
        "runs/" + ((spec.path as NSString).lastPathComponent as NSString).deletingPathExtension + (quick ? "-quick" : "")
    }

    /// Reads the spec and plans the run, writing nothing (what `rulelens run --dry-run` prints).
    public func plan() throws -> RunPlan {
        let spec = try SpecParser.load(path: options.specPath, limits: options.limits)
        let outDir = options.outDir ?? Self.defaultOutDir(for: spec, quick: options.quick)
        // Threads first: each verb step's command line names the count it runs with.
        if let threads = options.threads { Parallel.configure(threads: threads) }
        let plan = try RunPlan(spec: spec, outDir: outDir, quick: options.quick, limits: options.limits)
        if let only = options.only, !spec.steps.contains(where: { $0.id == only }) {
            throw RuleLensError("--only \(only): the spec has no step with that id", fix: "step ids: \(spec.steps.map(\.id).joined(separator: ", "))")
        }
        return plan
    }

    public func run() throws -> RunSummary {
        let started = ProgressLine.now()
        let plan = try plan()
        let spec = plan.spec, outDir = plan.outDir
        try FileManager.default.createDirectory(atPath: outDir, withIntermediateDirectories: true)

        // With --jobs, child processes bring every variant up to date first; the loop below then finds each step's
        // stamp and only assembles results and the report.
        var ranInJobs: Set<String> = []
        if options.jobs > 1, plan.variants.count > 1 {
            guard let executable = options.executable else {
                throw RuleLensError("--jobs \(options.jobs) needs the rulelens binary's path", fix: "set RunOptions.executable")
            }
            ranInJobs = try VariantJobs(plan: plan, options: options, executable: executable, outDir: outDir, log: log).run()
        }

        let total = plan.variants.reduce(0) { $0 + $1.steps.count }
        var done = 0
        var secondsByKind: [String: [Double]] = [:]
        // Earlier runs' timings seed the ETA (a continued run knows how long its steps take).
        for v in plan.variants { for s in v.steps { if let st = StepCache.readStamp(in: s.dir) { secondsByKind[s.type.kind, default: []].append(st.seconds) } } }
        var records: [(Variant, [StepRecord])] = []
        log("run \(spec.name): \(plan.variants.count) variant\(plan.variants.count == 1 ? "" : "s") × \(spec.steps.count) steps → \(outDir)"
            + (options.quick ? " (--quick: sizes shrunk, a smoke run)" : ""))

        for pv in plan.variants {
            var stepRecords: [StepRecord] = []
            for ps in pv.steps {
                done += 1
                let remaining = plan.variants.flatMap(\.steps).suffix(total - done + 1).map { s -> Double in
                    let seen = secondsByKind[s.type.kind] ?? []
                    return seen.isEmpty ? .nan : seen.reduce(0, +) / Double(seen.count)
                }
                let known = remaining.filter(\.isFinite)
                let eta = known.isEmpty ? "" : " · ETA \(ProgressLine.duration(known.reduce(0, +) * Double(remaining.count) / Double(known.count)))"
                let label = "[\(done)/\(total)]" + (pv.variant.folder.isEmpty ? "" : " \(pv.variant.id) ·") + " \(ps.spec.id) (\(ps.type.kind))"
                var record = try runStep(ps, label: label + eta, broughtUpToDate: ranInJobs.contains(ps.dir))
                if ranInJobs.contains(ps.dir) { record.cached = false; record.ran = true }
                if record.ran { secondsByKind[ps.type.kind, default: []].append(record.seconds) }
                stepRecords.append(record)
            }
            records.append((pv.variant, stepRecords))
        }

        let variantsResults = records.map { v, steps in
            VariantResults(id: v.id, vars: v.vars, results: .object(Dictionary(steps.map { ($0.id, $0.results) }, uniquingKeysWith: { a, _ in a })))
        }
        let axes = spec.sweep.map(\.key)
        let checks = VerdictEvaluator.evaluate(expects: spec.expects, preconditions: spec.preconditions, variants: variantsResults, axes: axes)
        var summary = RunSummary(spec: spec, outDir: outDir, quick: options.quick, variants: records, expectations: checks.expectations,
                                 preconditions: checks.preconditions,
                                 study: VerdictEvaluator.studyComparison(spec.studyDetails, variants: variantsResults, axes: axes),
                                 seconds: ProgressLine.now() - started,
                                 reportPath: (outDir as NSString).appendingPathComponent("report/index.html"),
                                 resultsPath: (outDir as NSString).appendingPathComponent("results.json"))
        try RunReport.write(&summary)
        return summary
    }

    /// `rulelens run --variant K` (what `--jobs` starts): brings variant K's steps up to date, in order, and stops —
    /// no expectations, no report (the parent run writes those).
    public func runVariant(_ index: Int) throws {
        guard rl_die_with_parent() == 0 else { throw RuleLensError("the run that started this variant has ended", fix: "rerun the spec") }
        let spec = try SpecParser.load(path: options.specPath, limits: options.limits)
        let outDir = options.outDir ?? Self.defaultOutDir(for: spec, quick: options.quick)
        if let threads = options.threads { Parallel.configure(threads: threads) }
        let plan = try RunPlan(spec: spec, outDir: outDir, quick: options.quick, limits: options.limits)
        guard plan.variants.indices.contains(index) else {
            throw RuleLensError("--variant \(index): the spec has \(plan.variants.count) variants", fix: "give 0…\(plan.variants.count - 1)")
        }
        let pv = plan.variants[index]
        for (k, ps) in pv.steps.enumerated() {
            _ = try runStep(ps, label: "[\(k + 1)/\(pv.steps.count)] \(ps.spec.id) (\(ps.type.kind))")
        }
    }

    /// Runs one step, or takes it from its stamp when nothing it depends on changed.
    /// `broughtUpToDate`: a `--jobs` child just ran it, so its stamp is read back quietly, even under --force.
    func runStep(_ ps: RunPlan.PlannedStep, label: String, broughtUpToDate: Bool = false) throws -> StepRecord {
        let fm = FileManager.default
        let command = ps.invocation.command
        let selected = options.only == nil || options.only == ps.spec.id
        let fingerprint: String
        do {
            fingerprint = try StepCache.fingerprint(kind: ps.type.kind, options: ps.options, inputs: ps.inputs, limits: options.limits)
        } catch let e as RuleLensError where !selected {
            throw RuleLensError("--only \(options.only!): step \(ps.spec.id) has not run yet (\(e.problem))",
                                fix: "run the spec once without --only, then repeat --only \(options.only!)")
        }
        if !(options.force && selected && !broughtUpToDate), let stamp = StepCache.validStamp(in: ps.dir, fingerprint: fingerprint) {
            if !broughtUpToDate { log("\(label): up to date, skipped") }
            return StepRecord(id: ps.spec.id, kind: ps.type.kind, command: stamp.command, dir: ps.dir, cached: true, ran: false,
                              seconds: stamp.seconds, results: (try? RunValue.parse(json: Data(stamp.results.utf8))) ?? .null,
                              figures: stamp.figures, files: stamp.files)
        }
        guard selected else {
            throw RuleLensError("--only \(options.only!): step \(ps.spec.id) is out of date (its options or inputs changed, or it never finished)",
                                fix: "run the spec without --only to bring every step up to date")
        }
        // Anything left by an earlier attempt is cleared, except a training run that can continue from its checkpoint.
        // Only an attempt with the same fingerprint (killed midway) may be continued: the attempt file says which.
        StepCache.removeStamp(in: ps.dir)
        let attempt = (ps.dir as NSString).appendingPathComponent(StepCache.attemptFile)
        let sameAttempt = (try? String(contentsOfFile: attempt, encoding: .utf8)) == fingerprint
        let resumable = !options.force && sameAttempt && ps.type.canContinue(ps.dir)
        if !resumable, fm.fileExists(atPath: ps.dir) { try fm.removeItem(atPath: ps.dir) }
        try fm.createDirectory(atPath: ps.dir, withIntermediateDirectories: true)
        try AtomicFile.write(Data(fingerprint.utf8), to: attempt)
        log("\(label): running" + (resumable ? " (continuing the interrupted run)" : "") + "\n  $ " + command.replacingOccurrences(of: "\n", with: "\n  $ "))
        let t0 = ProgressLine.now()
        let ctx = StepContext(dir: ps.dir, variantDir: (ps.dir as NSString).deletingLastPathComponent, quick: options.quick,
                              threads: options.threads, progress: ProgressLine(enabled: options.progress), log: log)
        let outcome = try ps.invocation.run(ctx, resumable)
        let seconds = ProgressLine.now() - t0
        let stamp = StepCache.Stamp(fingerprint: fingerprint, kind: ps.type.kind, id: ps.spec.id, command: command, seconds: seconds,
                                    finished: ISO8601DateFormatter().string(from: Date()), results: outcome.results.jsonText(pretty: false),
                                    figures: outcome.figures, files: outcome.files, version: RuleLensVersion.string)
        try StepCache.writeStamp(stamp, in: ps.dir)
        log("\(label): done in \(ProgressLine.duration(seconds))")
        return StepRecord(id: ps.spec.id, kind: ps.type.kind, command: command, dir: ps.dir, cached: false, ran: true, seconds: seconds,
                          results: outcome.results, figures: outcome.figures, files: outcome.files)
    }

    /// Each expectation once per variant when it reads the current variant's results, else once over the sweep
    /// (no preconditions; VerdictEvaluator has the whole story).
    public static func evaluate(_ expects: [ExpectSpec], variants: [VariantResults], axes: [String]? = nil) -> [ExpectationResult] {
        VerdictEvaluator.evaluate(expects, variants: variants, axes: axes ?? Array(Set(variants.flatMap(\.vars.keys))).sorted())
    }
}
