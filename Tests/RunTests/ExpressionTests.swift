import XCTest
@testable import RuleLensRun

/// Expression parsing and evaluation against hand-computed values.
final class ExpressionTests: XCTestCase {
    let one = [VariantResults(id: "default", vars: [:], results: RunValue(any: [
        "eval": ["test": ["centre": 0.25, "rim": 0.75, "rings": [0.0, 0.5, 1.0], "digits": ["6": 0.4]], "name": "x"],
        "data": ["train": 100, "ok": true],
    ]))]

    func eval(_ text: String, _ variants: [VariantResults]? = nil, current: Int? = nil) throws -> RunValue {
        var e = ExpressionEvaluator(variants: variants ?? one, current: current)
        return try e.evaluate(try Expression.parse(text))
    }

    func testArithmeticAndComparison() throws {
        XCTAssertEqual(try eval("eval.test.centre < eval.test.rim - 0.2"), .bool(true))
        XCTAssertEqual(try eval("eval.test.centre < eval.test.rim - 0.6"), .bool(false))
        XCTAssertEqual(try eval("-2 * 3 + 10 / 4"), .number(-3.5))
        XCTAssertEqual(try eval("(1 + 2) * 3"), .number(9))
        XCTAssertEqual(try eval("0 < eval.test.centre <= 0.25"), .bool(true), "chained comparison")
        XCTAssertEqual(try eval("0 < eval.test.centre < 0.25"), .bool(false))
        XCTAssertEqual(try eval("data.ok and not (data.train > 100) or false"), .bool(true))
        XCTAssertEqual(try eval("eval.name == 'x'"), .bool(true))
        XCTAssertEqual(try eval("abs(eval.test.centre - eval.test.rim)"), .number(0.5))
        XCTAssertEqual(try eval("1.5e2"), .number(150))
    }

    func testArraysIndicesAndNumericKeys() throws {
        XCTAssertEqual(try eval("eval.test.rings.2"), .number(1))
        XCTAssertEqual(try eval("eval.test.digits.6"), .number(0.4))
        XCTAssertEqual(try eval("mean(eval.test.rings)"), .number(0.5))
        XCTAssertEqual(try eval("min(eval.test.rings)"), .number(0))
        XCTAssertEqual(try eval("max(eval.test.centre, eval.test.rim, 0.1)"), .number(0.75))
        XCTAssertEqual(try eval("count(eval.test.rings)"), .number(3))
    }

    func testSweepSelectorsAndAggregates() throws {
        let vs = [0.9, 0.4, 0.1].enumerated().map { i, v in
            VariantResults(id: "half=\([5, 10, 20][i])", vars: ["half": String([5, 10, 20][i])],
                           results: RunValue(any: ["eval": ["test": ["inside": v]]]))
        }
        XCTAssertEqual(try eval("eval.test.inside[half=5] > eval.test.inside[half=20] + 0.5", vs), .bool(true))
        XCTAssertEqual(try eval("mean(eval.test.inside)", vs).number!, (0.9 + 0.4 + 0.1) / 3, accuracy: 1e-12)
        XCTAssertEqual(try eval("all(eval.test.inside > 0.05)", vs), .bool(true))
        XCTAssertEqual(try eval("any(eval.test.inside > 0.95)", vs), .bool(false))
        XCTAssertEqual(try eval("eval.test.inside > 0.3", vs, current: 1), .bool(true))
        XCTAssertTrue(try Expression.parse("eval.test.inside > 0.3").readsCurrentVariant)
        XCTAssertFalse(try Expression.parse("min(eval.test.inside) > 0.3").readsCurrentVariant)
        XCTAssertFalse(try Expression.parse("eval.test.inside[half=5] > 0.3").readsCurrentVariant)
        // One row per variant for a bare path; the numbers read are recorded.
        let spec = try SpecParser.parse("name: t\nclaim: c\nsweep:\n  half: [5, 10, 20]\nsteps:\n  - eval: {checkpoint: a, data: b}\n"
                                        + "expect:\n  - eval.test.inside > 0.3\n  - min(eval.test.inside) > 0.05\n", path: "t.yaml")
        let results = ExperimentRunner.evaluate(spec.expects, variants: vs)
        XCTAssertEqual(results.map(\.status), ["PASS", "PASS", "FAIL", "PASS"])
        XCTAssertEqual(results[2].variant, "half=20")
        XCTAssertEqual(results[2].readings.first?.1, .number(0.1))
        XCTAssertThrowsError(try eval("eval.test.inside > 0.3", vs), "a bare path across variants needs a selector or an aggregate")
    }

    func testMalformedExpressions() {
        for (text, column) in [("a.b > > 1", 7), ("a.b = 1", 5), ("(a.b > 1", 9), ("a.b > 1 2", 9), ("foo(1)", 1), ("a.b > 'x", 7), ("a.", 3)] {
            XCTAssertThrowsError(try Expression.parse(text), text) { e in
                XCTAssertEqual((e as? ExpressionError)?.column, column, "\(text): \(e)")
            }
        }
    }

    func testMissingPathNamesTheKnownKeys() {
        XCTAssertThrowsError(try eval("eval.test.center > 0")) { e in
            let f = e as? ExpressionEvaluator.Failure
            XCTAssertTrue(f?.problem.contains("no key center under eval.test") ?? false, f?.problem ?? "")
            XCTAssertTrue(f?.fix.contains("centre") ?? false)
        }
        XCTAssertThrowsError(try eval("eval.name > 1"), "a string is not a number")
    }
}
