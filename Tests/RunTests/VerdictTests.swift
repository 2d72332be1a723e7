import XCTest
@testable import RuleLensRun
import RuleLensJobs
import RuleLensNumerics

/// Seeds, statistics over seeds, preconditions and verdicts, against hand-computed values.
final class VerdictTests: XCTestCase {
    /// A sweep split ∈ {random, lso} × seeds 0, 1, 2 with `inside` per variant and a train accuracy.
    func variants(inside: [String: [Double]], trainAccuracy: [Double] = [1, 1, 1]) -> [VariantResults] {
        ["random", "lso"].flatMap { split in
            (0..<3).map { seed in
                VariantResults(id: "split=\(split),seed=\(seed)", vars: ["split": split, "seed": String(seed)],
                               results: RunValue(any: ["eval": ["test": ["inside": inside[split]![seed]],
                                                                "train": ["accuracy": trainAccuracy[seed]]]]))
            }
        }
    }
    let axes = ["split", "seed"]

    func eval(_ text: String, _ vs: [VariantResults]) throws -> (RunValue, ExpressionEvaluator) {
        var e = ExpressionEvaluator(variants: vs, axes: axes)
        let v = try e.evaluate(try Expression.parse(text))
        return (v, e)
    }

    func testPathsInsideAStatisticReadTheSameSeed() throws {
        let vs = variants(inside: ["random": [0.9, 0.8, 0.95], "lso": [0.2, 0.3, 0.1]])
        let (v, ev) = try eval("ci_low(eval.test.inside[split=random] - eval.test.inside[split=lso])", vs)
        let diffs = [0.9 - 0.2, 0.8 - 0.3, 0.95 - 0.1]
        XCTAssertEqual(v.number!, SeedStatistics.bootstrapMean(diffs).low, accuracy: 1e-15)
        XCTAssertEqual(ev.statistics.count, 1)
        XCTAssertEqual(ev.statistics[0].values.map(\.label), ["seed=0", "seed=1", "seed=2"])
        XCTAssertEqual(ev.statistics[0].values.map(\.value), diffs)
        XCTAssertEqual(ev.statistics[0].over, ["seed"])
        XCTAssertEqual(ev.statistics[0].mean, diffs.reduce(0, +) / 3, accuracy: 1e-15)
        XCTAssertEqual(try eval("mean(eval.test.inside[split=lso])", vs).0.number!, 0.2, accuracy: 1e-15)
        XCTAssertEqual(try eval("sd(eval.test.inside[split=lso])", vs).0.number!, 0.1, accuracy: 1e-12)
        // A bare path inside an aggregate ranges over every variant (unchanged meaning of mean/min/max).
        XCTAssertEqual(try eval("min(eval.test.inside)", vs).0.number!, 0.1)
        // Nested: the mean over seeds of a per-seed max over splits.
        XCTAssertEqual(try eval("mean(max(eval.test.inside[split=random], eval.test.inside[split=lso]))", vs).0.number!,
                       (0.9 + 0.8 + 0.95) / 3, accuracy: 1e-15)
        // Outside an aggregate, a selector that leaves the seed open matches three variants.
        XCTAssertThrowsError(try eval("eval.test.inside[split=lso] > 0", vs)) { e in
            let f = e as? ExpressionEvaluator.Failure
            XCTAssertTrue(f?.problem.contains("differ in seed") ?? false, "\(e)")
            XCTAssertTrue(f?.fix.contains("ci_low") ?? false, "\(e)")
        }
    }

    func testExpectationRowsFollowTheFreeAxes() throws {
        let vs = variants(inside: ["random": [0.9, 0.8, 0.95], "lso": [0.2, 0.3, 0.1]])
        let spec = try SpecParser.parse("""
        name: t
        claim: c
        sweep:
          split: [random, lso]
        seeds: 3
        steps:
          - eval: {checkpoint: a, data: b}
        expect:
          - eval.test.inside[split=lso] < 0.25
          - ci_low(eval.test.inside[split=random] - eval.test.inside[split=lso]) > 0.5
          - eval.test.inside > 0.15
        """, path: "t.yaml")
        XCTAssertEqual(spec.variants.map(\.id), ["split=random,seed=0", "split=random,seed=1", "split=random,seed=2",
                                                 "split=lso,seed=0", "split=lso,seed=1", "split=lso,seed=2"])
        XCTAssertEqual(spec.variants[4].folder, "split-lso_seed-1")
        let r = ExperimentRunner.evaluate(spec.expects, variants: vs, axes: spec.sweep.map(\.key))
        XCTAssertEqual(r.count, 3 + 1 + 6)
        XCTAssertEqual(r[0..<3].map(\.variant), ["seed=0", "seed=1", "seed=2"])
        XCTAssertEqual(r[0..<3].map(\.status), ["PASS", "FAIL", "PASS"])
        XCTAssertNil(r[3].variant)
        XCTAssertEqual(r[3].statistics.first?.values.count, 3)
        XCTAssertEqual(r[9].variant, "split=lso,seed=2")
        XCTAssertEqual(r[9].status, "FAIL")
    }

    /// In a sweep of cases (variables that change together) a selector that names one variable already names a variant;
    /// with seeds, only the seed is left open.
    func testCasesSweepSelectorsNameOneVariant() throws {
        let s = try SpecParser.parse("""
        name: t
        claim: c
        sweep:
          - {count: 400, steps: 1000}
          - {count: 1600, steps: 2500}
        seeds: 2
        steps:
          - eval: {checkpoint: a, data: b}
        expect:
          - eval.test.accuracy[count=1600] > eval.test.accuracy[count=400]
          - ci_low(eval.test.accuracy[count=1600] - eval.test.accuracy[count=400]) > 0
          - eval.test.accuracy[count=1600,seed=1] > 0.5
        """, path: "t.yaml")
        let accuracy = ["400": [0.2, 0.3], "1600": [0.6, 0.8]]
        let vs = s.variants.map { v in
            VariantResults(id: v.id, vars: v.vars, results: RunValue(any: ["eval": ["test": ["accuracy": accuracy[v.vars["count"]!]![Int(v.vars["seed"]!)!]]]]))
        }
        let r = ExperimentRunner.evaluate(s.expects, variants: vs, axes: s.sweep.map(\.key))
        XCTAssertEqual(r.map(\.variant), ["seed=0", "seed=1", nil, nil])
        XCTAssertEqual(r.map(\.status), ["PASS", "PASS", "PASS", "PASS"])
        XCTAssertEqual(r[2].statistics.first?.values.map(\.value) ?? [], [0.6 - 0.2, 0.8 - 0.3])
        XCTAssertEqual(s.axisSpace.freeAxes(s.expects[0].expression), ["seed"])
        XCTAssertEqual(s.axisSpace.freeAxes(s.expects[2].expression), [])
    }

    /// The interval, not the mean, decides: a mean above the bound with an interval that crosses it is a FAIL.
    func testAnIntervalThatCrossesTheBoundFails() throws {
        let vs = variants(inside: ["random": [0.9, 0.3, 0.95], "lso": [0.2, 0.3, 0.1]])
        let diffs = [0.7, 0.0, 0.85]
        let interval = SeedStatistics.bootstrapMean(diffs)
        XCTAssertLessThan(interval.low, 0.4)
        XCTAssertGreaterThan(interval.mean, 0.4)
        XCTAssertEqual(try eval("mean(eval.test.inside[split=random] - eval.test.inside[split=lso]) > 0.4", vs).0, .bool(true))
        XCTAssertEqual(try eval("ci_low(eval.test.inside[split=random] - eval.test.inside[split=lso]) > 0.4", vs).0, .bool(false))
        XCTAssertEqual(try eval("ci_high(eval.test.inside[split=random] - eval.test.inside[split=lso]) > 0.4", vs).0, .bool(true))
    }

    func testBootstrapIsDeterministicAndBracketsTheMean() {
        let values = [0.1, 0.4, 0.35, 0.8, 0.55]
        let a = SeedStatistics.bootstrapMean(values), b = SeedStatistics.bootstrapMean(values)
        XCTAssertEqual(a, b)
        XCTAssertLessThan(a.low, a.mean)
        XCTAssertGreaterThan(a.high, a.mean)
        // Never outside the range of the values; a constant sample has a point interval.
        XCTAssertGreaterThanOrEqual(a.low, 0.1)
        XCTAssertLessThanOrEqual(a.high, 0.8)
        XCTAssertEqual(SeedStatistics.bootstrapMean([0.5, 0.5, 0.5]), .init(mean: 0.5, low: 0.5, high: 0.5))
    }

    func testSpearman() throws {
        XCTAssertEqual(SeedStatistics.spearman([1, 2, 3, 4], [1, 3, 2, 4])!, 0.8, accuracy: 1e-12)
        XCTAssertEqual(SeedStatistics.spearman([1, 2, 3], [3, 2, 1])!, -1, accuracy: 1e-12)
        XCTAssertNil(SeedStatistics.spearman([1, 1, 1], [1, 2, 3]))
        let one = [VariantResults(id: "default", vars: [:], results: RunValue(any: ["e": ["rings": [0.9, 0.7, 0.8, 0.1], "flat": [0.0, 0.0, 0.0]]]))]
        var ev = ExpressionEvaluator(variants: one)
        XCTAssertEqual(try ev.evaluate(try Expression.parse("spearman(e.rings)")).number!, -0.8, accuracy: 1e-12)
        XCTAssertThrowsError(try ev.evaluate(try Expression.parse("spearman(e.flat) < 0"))) { e in
            XCTAssertTrue(e is ExpressionEvaluator.Undefined, "\(e)")
        }
    }

    func spec(_ preconditions: String, _ expect: String) throws -> ExperimentSpec {
        try SpecParser.parse("""
        name: t
        claim: c
        sweep:
          split: [random, lso]
        seeds: 3
        steps:
          - eval: {checkpoint: a, data: b}
        preconditions:
        \(preconditions)
        expect:
        \(expect)
        """, path: "t.yaml")
    }

    func testAFailedPreconditionMakesTheChecksThatReadItInconclusive() throws {
        // Seed 1's model did not fit its training cases.
        let vs = variants(inside: ["random": [0.9, 0.8, 0.95], "lso": [0.2, 0.3, 0.1]], trainAccuracy: [1, 0.2, 1])
        let s = try spec("""
          - {id: fits, that: eval.train.accuracy > 0.9, why: the model fits its training cases}
          - {id: sane, that: 1 < 2}
        """, """
          - ci_low(eval.test.inside[split=random] - eval.test.inside[split=lso]) > 0.5
          - that: eval.test.inside[split=lso] < 0.5
          - that: eval.test.inside[split=lso] < 0.5
            needs: [sane]
          - that: eval.test.inside[split=lso] > 0.5
            needs: []
        """)
        let (pre, r) = VerdictEvaluator.evaluate(expects: s.expects, preconditions: s.preconditions, variants: vs, axes: s.sweep.map(\.key))
        XCTAssertEqual(pre.map(\.status), ["PASS", "FAIL", "PASS", "PASS", "FAIL", "PASS", "PASS"])
        XCTAssertEqual(r[0].status, "INCONCLUSIVE")
        XCTAssertTrue(r[0].inconclusive!.contains("precondition fits `eval.train.accuracy > 0.9` failed at split=random,seed=1"), r[0].inconclusive!)
        XCTAssertTrue(r[0].inconclusive!.contains("the model fits its training cases"))
        // Per seed: only seed 1 is inconclusive.
        XCTAssertEqual(r[1...3].map(\.status), ["PASS", "INCONCLUSIVE", "PASS"])
        XCTAssertEqual(r[4...6].map(\.status), ["PASS", "PASS", "PASS"], "needs [sane] only")
        XCTAssertEqual(r[7...9].map(\.status), ["FAIL", "FAIL", "FAIL"], "needs nothing")
        XCTAssertEqual(Verdict.of(expectations: r, preconditions: pre), .fail)
        XCTAssertEqual(Verdict.of(expectations: Array(r[0...6]), preconditions: pre), .inconclusive)
        XCTAssertEqual(Verdict.of(expectations: Array(r[4...6]), preconditions: pre), .pass)
        // A precondition read once over the sweep gates every check that needs it.
        let s2 = try spec("  - mean(eval.train.accuracy) > 0.9", "  - eval.test.inside[split=lso,seed=0] < 0.5")
        let (pre2, r2) = VerdictEvaluator.evaluate(expects: s2.expects, preconditions: s2.preconditions, variants: vs, axes: s2.sweep.map(\.key))
        XCTAssertEqual(pre2.map(\.status), ["FAIL"])
        XCTAssertEqual(r2.map(\.status), ["INCONCLUSIVE"])
    }

    func testExitCodes() {
        XCTAssertEqual(Verdict.pass.exitCode(quick: false), 0)
        XCTAssertEqual(Verdict.fail.exitCode(quick: false), 1)
        XCTAssertEqual(Verdict.error.exitCode(quick: false), 2)
        XCTAssertEqual(Verdict.inconclusive.exitCode(quick: false), 3)
        XCTAssertEqual(Verdict.fail.exitCode(quick: true), 0)
        XCTAssertEqual(Verdict.inconclusive.exitCode(quick: true), 0)
        XCTAssertEqual(Verdict.error.exitCode(quick: true), 2)
    }

    func parseError(_ yaml: String) -> String {
        do { _ = try SpecParser.parse(yaml, path: "t.yaml"); return "parsed" } catch { return "\(error)" }
    }

    func testSpecErrors() throws {
        let head = "name: t\nclaim: c\nsteps:\n  - eval: {checkpoint: a, data: b}\n"
        XCTAssertTrue(parseError(head + "expect:\n  - ci_low(eval.test.inside) > 0\n").contains("add `seeds: 5`"))
        XCTAssertTrue(parseError(head + "seeds: 3\nexpect:\n  - ci_low(eval.test.inside[seed=0]) > 0\n").contains("leave [seed=…] out"))
        XCTAssertEqual(parseError(head + "seeds: 3\nexpect:\n  - ci_low(eval.test.inside) > 0\n"), "parsed")
        XCTAssertTrue(parseError(head + "seeds: 1\nexpect:\n  - ci_low(eval.test.inside) > 0\n").contains("at least two values"))
        XCTAssertTrue(parseError(head + "seeds: 0\n").contains("not a count of seeds"))
        XCTAssertTrue(parseError(head + "seeds: [1, 1]\n").contains("a seed twice"))
        XCTAssertTrue(parseError(head + "seeds: 2\nvars:\n  seed: 4\n").contains("also a variable named seed"))
        XCTAssertTrue(parseError(head + "expect:\n  - {that: 1 < 2, needs: [fits]}\n").contains("needs fits, which is not a precondition id"))
        XCTAssertTrue(parseError(head + "preconditions:\n  - {that: 1 < 2, needs: [x]}\n").contains("unknown key needs"))
        XCTAssertTrue(parseError(head + "preconditions:\n  - {id: a, that: 1 < 2}\n  - {id: a, that: 1 < 2}\n").contains("two preconditions have the id a"))
        XCTAssertTrue(parseError(head + "deviations:\n  - {aspect: model, study: GPT-2}\n").contains("needs here:"))
        XCTAssertTrue(parseError(head + "study: {setting: x}\n").contains("needs a citation"))
        XCTAssertTrue(parseError(head + "seeds: 2\nstudy: {citation: x, here: eval.test.inside}\n").contains("reads one value per variant"))
        let s = try SpecParser.parse(head + """
        seeds: [3, 7]
        study: {citation: Hu et al. 2024, setting: GPT-2, measure: inside accuracy, number: 0.19, here: mean(eval.test.inside)}
        deviations:
          - {aspect: square, study: L = 10, here: L = 20}
        preconditions:
          - eval.test.accuracy > 0.5
        """, path: "t.yaml")
        XCTAssertEqual(s.seeds, ["3", "7"])
        XCTAssertEqual(s.variants.map(\.folder), ["seed-3", "seed-7"])
        XCTAssertEqual(s.study, "Hu et al. 2024")
        XCTAssertEqual(s.studyDetails?.number, "0.19")
        XCTAssertEqual(s.deviations, [Deviation(aspect: "square", study: "L = 10", here: "L = 20")])
        XCTAssertEqual(s.preconditions.map(\.id), ["p1"])
    }

    /// `${seed}` is each variant's seed; --quick keeps the first two seeds.
    func testSeedsRunTheStepsOncePerSeed() throws {
        let s = try SpecParser.parse("""
        name: t
        claim: c
        seeds: 4
        steps:
          - data: {task: addition, seed: "${seed}"}
        """, path: "t.yaml")
        let plan = try RunPlan(spec: s, outDir: "/tmp/x", quick: false)
        XCTAssertEqual(try plan.variants.map { try $0.steps[0].options.int("seed")! }, [0, 1, 2, 3])
        XCTAssertEqual(plan.variants.map(\.dir), ["/tmp/x/seed-0", "/tmp/x/seed-1", "/tmp/x/seed-2", "/tmp/x/seed-3"])
        XCTAssertEqual(try RunPlan(spec: s, outDir: "/tmp/x", quick: true).variants.map(\.variant.id), ["seed=0", "seed=1"])
    }

    /// The example in Probes/README.md (study, deviations, seeds, preconditions, interval checks) is a valid spec.
    func testTheDocumentedExampleParses() throws {
        let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Probes/README.md")
        let text = try String(contentsOf: readme, encoding: .utf8)
        guard let start = text.range(of: "```yaml\n"), let end = text.range(of: "```", range: start.upperBound..<text.endIndex) else {
            return XCTFail("no ```yaml block in Probes/README.md")
        }
        let spec = try SpecParser.parse(String(text[start.upperBound..<end.lowerBound]), path: "Probes/README.md")
        XCTAssertEqual(spec.variants.count, 4 * 3)
        XCTAssertEqual(spec.preconditions.map(\.id), ["fits"])
        XCTAssertNotNil(spec.studyDetails?.here)
        XCTAssertFalse(spec.deviations.isEmpty)
        _ = try RunPlan(spec: spec, outDir: "/tmp/plan", quick: true)
    }

    func testExpressionText() throws {
        for text in ["ci_low(a.b[split=random] - a.b[split=lso]) > 0.2", "(a.x + 1) * 2 < 3", "not (a.x > 1 and a.y < 2)", "a.x - (a.y - a.z)"] {
            let e = try Expression.parse(text)
            XCTAssertEqual(try Expression.parse(e.text), e, text)
        }
        XCTAssertEqual(try Expression.parse("ci_low(a.b[split=random]-a.b[split=lso])>0.2").text, "ci_low(a.b[split=random] - a.b[split=lso]) > 0.2")
    }
}
