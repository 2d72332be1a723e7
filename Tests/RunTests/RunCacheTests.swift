import XCTest
@testable import RuleLensRun
import RuleLensJobs
import RuleLensNumerics

/// A tiny spec end to end: caching like make, a changed option or input redoes only what depends on it,
/// a failing expectation gives exit 1 and FAIL in results.json and the report.
final class RunCacheTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "rulelens-run-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    func spec(limit: Int) -> String {
        """
        name: tiny
        claim: a tiny spec for the cache tests
        steps:
          - data: {task: addition, split: random, train-fraction: 0.7, seed: 0}
          - train: {data: "${data}", layers: 1, heads: 2, d-model: 16, ctx: 16, steps: 6, batch: 8, seed: 0}
          - eval: {checkpoint: "${train}", data: "${data}", part: test, limit: \(limit)}
        expect:
          - that: data.train == 7000
            why: 70% of 10,000
          - that: eval.test.accuracy > 1.5
            why: cannot hold, so the run must fail
        """
    }

    func run(_ text: String, force: Bool = false, only: String? = nil) throws -> RunSummary {
        let path = dir + "/tiny.yaml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        var o = RunOptions(specPath: path)
        o.outDir = dir + "/out"; o.progress = false; o.threads = 1; o.force = force; o.only = only
        let runner = ExperimentRunner(options: o)
        runner.log = { _ in }
        return try runner.run()
    }

    func ran(_ s: RunSummary) -> [String] { s.variants[0].steps.filter(\.ran).map(\.id) }

    func testCachingAndFailingExpectation() throws {
        let first = try run(spec(limit: 20))
        XCTAssertEqual(ran(first), ["data", "train", "eval"])
        XCTAssertEqual(first.expectations.map(\.status), ["PASS", "FAIL"])
        XCTAssertEqual(first.exitCode, 1, "a failing expectation fails the run")
        XCTAssertEqual(first.expectations[1].readings.first?.0, "eval.test.accuracy")
        let html = try String(contentsOfFile: first.reportPath, encoding: .utf8)
        XCTAssertTrue(html.contains("data-status=\"FAIL\""))
        XCTAssertTrue(html.contains("<title>RuleLens · tiny</title>"))
        XCTAssertFalse(html.contains("src=\"http") || html.contains("href=\"http") || html.contains("url(http"), "self-contained: nothing fetched")
        let json = try RunValue.parse(json: try Data(contentsOf: URL(fileURLWithPath: first.resultsPath)))
        XCTAssertEqual(json.lookup(["failed"]), .number(1))
        XCTAssertEqual(json.lookup(["variants", "0", "steps", "data", "results", "train"]), .number(7000))

        // Nothing changed: nothing runs, the same results come back from the stamps.
        let second = try run(spec(limit: 20))
        XCTAssertEqual(ran(second), [])
        XCTAssertEqual(second.variants[0].steps[2].results, first.variants[0].steps[2].results)

        // One option of the last step changed: only that step runs.
        XCTAssertEqual(ran(try run(spec(limit: 25))), ["eval"])

        // An input file changed: the steps that read it run again, the step that wrote it does not.
        let trainFile = dir + "/out/data/train.jsonl"
        var text = try String(contentsOfFile: trainFile, encoding: .utf8)
        text = text.replacingOccurrences(of: "\"id\":0,", with: "\"id\":0 ,")
        try text.write(toFile: trainFile, atomically: true, encoding: .utf8)
        XCTAssertEqual(ran(try run(spec(limit: 25))), ["train", "eval"])

        // --force with --only redoes one step; a step whose stamp is gone (a killed run) is redone on its own.
        XCTAssertEqual(ran(try run(spec(limit: 25), force: true, only: "eval")), ["eval"])
        StepCache.removeStamp(in: dir + "/out/eval")
        XCTAssertEqual(ran(try run(spec(limit: 25))), ["eval"])
    }

    func testOnlyRefusesStaleDependencies() throws {
        XCTAssertThrowsError(try run(spec(limit: 20), only: "eval")) { e in
            XCTAssertTrue((e as? RuleLensError)?.problem.contains("--only eval") ?? false, "\(e)")
        }
    }

    /// Results read back from a stamp equal the computed ones bit for bit: every double survives jsonText → parse
    /// (Foundation's JSONSerialization parser rounded ~1/3 of 17-digit doubles, so a cached run's loss could differ in
    /// the last digit from the run that computed it, depending on the value and hence on the BLAS kernel).
    func testResultsRoundTripThroughJSONExactly() throws {
        var rng = SeededRNG(seed: 11)
        var numbers: [RunValue] = [.number(4.6012818315022805), .number(0.1), .number(0), .number(1), .number(-2.5), .number(-1e-300), .number(123456789.12345678)]
        for _ in 0..<2000 { numbers.append(.number(Double(rng.normal()) * pow(10, Double(rng.int(below: 40)) - 20) + Double(rng.normal()) * 1e-9)) }
        let value = RunValue.object(["xs": .array(numbers), "flag": .bool(true), "n": .number(7000), "name": .string("tiny"), "none": .null])
        let back = try RunValue.parse(json: Data(value.jsonText().utf8))
        XCTAssertEqual(back, value)
    }
}

