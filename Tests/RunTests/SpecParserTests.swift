import XCTest
@testable import RuleLensRun
import RuleLensJobs
import RuleLensNumerics

/// Parser errors name the file, the line and the key; a good spec parses into steps, vars, sweep and expectations.
final class SpecParserTests: XCTestCase {
    func parseError(_ yaml: String, file: StaticString = #filePath, line: UInt = #line) -> RuleLensError? {
        do { _ = try SpecParser.parse(yaml, path: "t.yaml"); XCTFail("parsed", file: file, line: line); return nil }
        catch let e as RuleLensError { return e } catch { XCTFail("\(error)", file: file, line: line); return nil }
    }

    let good = """
    name: t
    claim: c
    vars:
      steps: 100
    quick:
      steps: 5
    sweep:
      half: [5, 10]
    steps:
      - data: {task: addition, split: leave-square-out, half: "${half}"}
      - train: {data: "${data}", steps: "${steps}", d-model: 16, heads: 2}
      - eval: {id: ev, checkpoint: "${train}", data: "${data}", part: [test, all]}
    expect:
      - ev.test.centre < ev.test.rim - 0.2
      - that: ev.test.inside[half=5] > ev.test.inside[half=10]
        why: bigger holes are deeper
    """

    func testGoodSpecParses() throws {
        let s = try SpecParser.parse(good, path: "t.yaml")
        XCTAssertEqual(s.steps.map(\.id), ["data", "train", "ev"])
        XCTAssertEqual(s.steps.map(\.kind), ["data", "train", "eval"])
        XCTAssertEqual(s.steps[2].line, 12)
        XCTAssertEqual(s.variants.map(\.id), ["half=5", "half=10"])
        XCTAssertEqual(s.expects.count, 2)
        XCTAssertEqual(s.expects[1].why, "bigger holes are deeper")
        let plan = try RunPlan(spec: s, outDir: "/tmp/x", quick: false)
        XCTAssertEqual(try plan.variants[1].steps[0].options.int("half"), 10)
        XCTAssertEqual(try plan.variants[1].steps[1].options.string("data"), "/tmp/x/half-10/data")
        XCTAssertEqual(try plan.variants[0].steps[1].options.int("steps"), 100)
        XCTAssertEqual(plan.variants[0].steps[1].inputs, ["/tmp/x/half-5/data"])
        let quick = try RunPlan(spec: s, outDir: "/tmp/x", quick: true)
        XCTAssertEqual(try quick.variants[0].steps[1].options.int("steps"), 5)
        XCTAssertEqual(try quick.variants[0].steps[2].options.int("limit"), 40, "--quick caps eval")
    }

    func testUnknownStepNamesLineAndSuggests() {
        let e = parseError("name: t\nclaim: c\nsteps:\n  - data: {task: addition}\n  - trian: {data: x}\n")
        XCTAssertTrue(e?.problem.contains("t.yaml line 5") ?? false, e?.problem ?? "")
        XCTAssertTrue(e?.problem.contains("unknown step trian (did you mean train?)") ?? false, e?.problem ?? "")
    }

    func testUnknownOptionNamesLineAndKey() {
        let e = parseError("name: t\nclaim: c\nsteps:\n  - data:\n      task: addition\n      stepz: 3\n")
        XCTAssertTrue(e?.problem.contains("line 6") ?? false, e?.problem ?? "")
        XCTAssertTrue(e?.problem.contains("unknown option stepz for step data") ?? false, e?.problem ?? "")
        XCTAssertTrue(e?.fix.contains("train-fraction") ?? false)
    }

    func testMissingFields() {
        XCTAssertTrue(parseError("claim: c\nsteps:\n  - data: {task: addition}\n")?.problem.contains("missing field name") ?? false)
        XCTAssertTrue(parseError("name: t\nclaim: c\n")?.problem.contains("missing field steps") ?? false)
        // A verb's required choice is checked by its declaration when the step is planned, naming the line.
        let s = try? SpecParser.parse("name: t\nclaim: c\nsteps:\n  - data: {split: random}\n", path: "t.yaml")
        XCTAssertNotNil(s)
        if let s {
            XCTAssertThrowsError(try RunPlan(spec: s, outDir: "/tmp/x", quick: false)) { e in
                let p = (e as? RuleLensError)?.problem ?? ""
                XCTAssertTrue(p.contains("line 4") && p.contains("--task is missing"), p)
            }
        }
    }

    func testMalformedExpressionNamesLineAndColumn() {
        let e = parseError("name: t\nclaim: c\nsteps:\n  - data: {task: addition}\nexpect:\n  - data.train > > 3\n")
        XCTAssertTrue(e?.problem.contains("line 6") ?? false, e?.problem ?? "")
        XCTAssertTrue(e?.problem.contains("malformed expression") ?? false, e?.problem ?? "")
        XCTAssertTrue(e?.problem.contains("column 14") ?? false, e?.problem ?? "")
        let unknownStep = parseError("name: t\nclaim: c\nsteps:\n  - data: {task: addition}\nexpect:\n  - eval.test.accuracy > 0.5\n")
        XCTAssertTrue(unknownStep?.problem.contains("no step has the id eval") ?? false, unknownStep?.problem ?? "")
        let badSelector = parseError("name: t\nclaim: c\nsweep:\n  seed: [0, 1]\nsteps:\n  - data: {task: addition}\nexpect:\n  - data.train[seed=7] > 1\n")
        XCTAssertTrue(badSelector?.problem.contains("seed=7, which the sweep does not have") ?? false, badSelector?.problem ?? "")
    }

    func testUnknownKeyDuplicateIdAndBadYAML() {
        XCTAssertTrue(parseError("name: t\nclaim: c\nstep:\n  - data: {task: addition}\n")?.problem.contains("unknown key step (did you mean steps?)") ?? false)
        let dup = parseError("name: t\nclaim: c\nsteps:\n  - data: {task: addition}\n  - data: {task: syllogism}\n")
        XCTAssertTrue(dup?.problem.contains("line 5: two steps have the id data") ?? false, dup?.problem ?? "")
        XCTAssertTrue(parseError("name: t\nclaim: [c\n")?.problem.contains("not valid YAML") ?? false)
    }

    func testUnknownVariableAndBadTypeFailBeforeRunning() throws {
        let s = try SpecParser.parse("name: t\nclaim: c\nsteps:\n  - data: {task: addition, seed: \"${sede}\"}\n", path: "t.yaml")
        XCTAssertThrowsError(try RunPlan(spec: s, outDir: "/tmp/x", quick: false)) { e in
            let p = (e as? RuleLensError)?.problem ?? ""
            XCTAssertTrue(p.contains("line 4") && p.contains("unknown variable ${sede}"), p)
        }
        let t = try SpecParser.parse("name: t\nclaim: c\nsteps:\n  - data: {task: addition, half: ten}\n", path: "t.yaml")
        XCTAssertThrowsError(try RunPlan(spec: t, outDir: "/tmp/x", quick: false)) { e in
            let p = (e as? RuleLensError)?.problem ?? ""
            XCTAssertTrue(p.contains("line 4") && p.contains("option half") && p.contains("'ten' is invalid for '--half"), p)
        }
        let c = try SpecParser.parse("name: t\nclaim: c\nsteps:\n  - data: {task: addition, split: squares}\n", path: "t.yaml")
        XCTAssertThrowsError(try RunPlan(spec: c, outDir: "/tmp/x", quick: false))
    }

    func testSweepCases() throws {
        let s = try SpecParser.parse("""
        name: t
        claim: c
        sweep:
          - {task: addition, ctx: 16}
          - {task: syllogism, ctx: 96}
        steps:
          - data: {task: "${task}"}
        """, path: "t.yaml")
        XCTAssertEqual(s.variants.map(\.id), ["task=addition,ctx=16", "task=syllogism,ctx=96"])
        XCTAssertEqual(s.variants[1].vars["ctx"], "96")
    }

    /// Every spec in Probes/ parses and plans (full and --quick).
    func testEveryProbeSpecParses() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Probes").path
        let specs = try SpecCatalog.list(dir: dir)
        XCTAssertGreaterThanOrEqual(specs.count, 9)
        for (_, spec) in specs {
            _ = try RunPlan(spec: spec, outDir: "/tmp/plan", quick: false)
            _ = try RunPlan(spec: spec, outDir: "/tmp/plan", quick: true)
            XCTAssertFalse(spec.expects.isEmpty, spec.name)
        }
    }
}

/// The JSON Schema in Probes/ is the generated one (`rulelens run --schema`), so editors and the parser agree.
final class SpecSchemaTests: XCTestCase {
    func testCommittedSchemaIsTheGeneratedOne() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Probes/rulelens-spec.schema.json")
        XCTAssertEqual(try String(contentsOf: path, encoding: .utf8), try SpecSchema.json(),
                       "Probes/rulelens-spec.schema.json is out of date: regenerate it with `rulelens run --schema > Probes/rulelens-spec.schema.json`")
        let schema = try RunValue.parse(json: Data(try SpecSchema.json().utf8))
        guard let steps = schema.lookup(["$defs", "step", "properties"]) else { return XCTFail("no $defs.step.properties") }
        XCTAssertEqual(Set(steps.childKeys), Set(StepRegistry.kinds))
        for kind in StepRegistry.all {
            let props = steps.lookup([kind.kind, "properties"])?.childKeys ?? []
            XCTAssertEqual(Set(props), Set(kind.options.map(\.name) + ["id", "quick"]), kind.kind)
        }
    }
}

/// docs/reference/ is the generated reference (`rulelens reference`), so the pages say what the declarations say.
final class ReferencePagesTests: XCTestCase {
    func testCommittedPagesAreTheGeneratedOnes() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/reference")
        // The verbs' pages; the index and the pages of commands that are not verbs come from the CLI's declarations
        // (Tests/Python/test_reference_pages.py compares every page with `rulelens reference`).
        let pages = ReferencePages.all().filter { $0.key != "README.md" }
        let committed = Set((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter { $0.hasSuffix(".md") }
        XCTAssertTrue(Set(pages.keys).isSubset(of: committed), "regenerate with `rulelens reference --out docs/reference`")
        for (name, text) in pages {
            XCTAssertEqual(try? String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8), text,
                           "docs/reference/\(name) is out of date: regenerate with `rulelens reference --out docs/reference`")
        }
        XCTAssertTrue(pages["eval.md"]?.contains("`--limit-seed`") ?? false)
    }
}
