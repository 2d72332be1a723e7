import XCTest
@testable import RuleLensTasks
import RuleLensNumerics

final class SplitTests: XCTestCase {
    func spec(_ task: TaskName, _ split: SplitKind, format: TaskFormat = .direct, seed: UInt64 = 0) -> TaskSpec {
        TaskSpec(task: task, format: format, split: split, seed: seed)
    }

    /// The counts PAPERS.md publishes.
    func testPublishedCounts() throws {
        let cases: [(TaskName, SplitKind, Int, Int)] = [
            (.addition, .leaveSquareOut, 9_559, 441),
            (.modularAddition, .leaveSquareOut, 12_328, 441),
            (.chickensRabbits, .leaveSquareOut, 4_609, 441),
            (.addition, .random, 7_000, 3_000),
        ]
        for (task, split, train, test) in cases {
            let d = try spec(task, split).generate()
            XCTAssertEqual(d.train.count, train, "\(task) \(split)")
            XCTAssertEqual(d.test.count, test, "\(task) \(split)")
        }
        // Full task sizes of the table in PAPERS.md.
        let sizes: [(TaskName, Int)] = [(.addition, 10_000), (.modularAddition, 12_769), (.base9Addition, 10_000),
                                         (.linearRegression, 10_000), (.chickensRabbits, 5_050)]
        for (task, n) in sizes { XCTAssertEqual(OperandTasks.points(of: task).count, n, "\(task)") }
    }

    /// The held-out set is exactly the square, in the task's own plane.
    func testLeaveSquareOutHoldsOutExactlyTheSquare() throws {
        var s = spec(.chickensRabbits, .leaveSquareOut)
        s.half = 5
        let d = try s.generate()
        XCTAssertEqual(d.test.count, 121)
        for e in d.test { XCTAssertLessThanOrEqual(max(abs(e.a! - 70), abs(e.b! - 50)), 5) }
        for e in d.train { XCTAssertGreaterThan(max(abs(e.a! - 70), abs(e.b! - 50)), 5) }
        // Chickens-rabbits operands really are (legs/2, heads).
        let e = d.test[0]
        XCTAssertTrue(e.prompt.contains("There are \(2 * e.a!) legs and \(e.b!) heads"), e.prompt)
        let ids = Set((d.train + d.test).map { "\($0.a!),\($0.b!)" })
        XCTAssertEqual(ids.count, 5_050)
    }

    func testHolesAreNonOverlappingAndInsideThePlane() throws {
        for seed: UInt64 in [0, 1, 2, 3] {
            let d = try spec(.addition, .holes, seed: seed).generate()
            XCTAssertEqual(d.meta.squares.count, 3)
            for (i, sq) in d.meta.squares.enumerated() {
                XCTAssertTrue((10...19).contains(sq.half))
                XCTAssertTrue(sq.centerA - sq.half >= 0 && sq.centerA + sq.half <= 99)
                XCTAssertTrue(sq.centerB - sq.half >= 0 && sq.centerB + sq.half <= 99)
                for other in d.meta.squares[(i + 1)...] { XCTAssertFalse(sq.overlaps(other)) }
            }
            let expected = d.meta.squares.reduce(0) { $0 + (2 * $1.half + 1) * (2 * $1.half + 1) }
            XCTAssertEqual(d.test.count, expected)
            XCTAssertEqual(d.train.count + d.test.count, 10_000)
        }
    }

    func testChickensRabbitsHolesStayOnRealFarms() throws {
        let d = try spec(.chickensRabbits, .holes, seed: 2).generate()
        XCTAssertEqual(d.meta.squares.count, 3)
        for sq in d.meta.squares {
            for a in (sq.centerA - sq.half)...(sq.centerA + sq.half) {
                for b in (sq.centerB - sq.half)...(sq.centerB + sq.half) { XCTAssertTrue(b <= a && a <= 2 * b && b <= 99) }
            }
        }
        XCTAssertEqual(d.train.count + d.test.count, 5_050)
        XCTAssertEqual(d.test.count, d.meta.squares.reduce(0) { $0 + (2 * $1.half + 1) * (2 * $1.half + 1) })
    }

    func testImpossibleHolesAndOversizedSquaresAreClearErrors() {
        var s = spec(.addition, .holes)
        s.holes = 30
        XCTAssertThrowsError(try s.generate()) { XCTAssertTrue("\($0)".contains("cannot place 30"), "\($0)") }
        var big = spec(.addition, .leaveSquareOut)
        big.half = 60
        XCTAssertThrowsError(try big.generate()) { XCTAssertTrue("\($0)".contains("outside the addition plane"), "\($0)") }
        var off = spec(.chickensRabbits, .leaveSquareOut)
        off.centerA = 20; off.centerB = 20   // reaches legs/2 < heads: not a farm
        XCTAssertThrowsError(try off.generate())
        XCTAssertThrowsError(try spec(.syllogism, .leaveSquareOut).generate())
        XCTAssertThrowsError(try spec(.addition, .length).generate())
        XCTAssertThrowsError(try spec(.linearRegression, .random, format: .scratchpad).generate())
        XCTAssertThrowsError(try TaskName.named("additon")) { XCTAssertTrue("\($0)".contains("did you mean addition"), "\($0)") }
        XCTAssertThrowsError(try SplitKind.named("square"))
        XCTAssertThrowsError(try TaskFormat.named("cot"))
    }

    func testLengthSplitDigitCounts() throws {
        var s = spec(.multiDigitAddition, .length)
        s.count = 500; s.testPerDigit = 20
        let d = try s.generate()
        XCTAssertEqual(d.train.count, 500)
        XCTAssertEqual(d.test.count, 200)
        for e in d.train { XCTAssertTrue((1...5).contains(String(e.a!).count)); XCTAssertEqual(String(e.a!).count, String(e.b!).count) }
        for e in d.test { XCTAssertTrue((6...15).contains(String(e.a!).count)) }
        var overlap = s
        overlap.testDigits = 4...8
        XCTAssertThrowsError(try overlap.generate())
    }

    /// Same seed → the same bytes; another seed → other bytes (where the seed matters).
    func testSameSeedSameBytes() throws {
        var specs: [TaskSpec] = [spec(.addition, .random), spec(.addition, .holes, seed: 5),
                                 spec(.syllogism, .random), spec(.mathDerivation, .random), spec(.explanatory, .random)]
        var md = spec(.multiDigitAddition, .length, format: .rule)
        md.count = 50; md.testPerDigit = 5
        specs.append(md)
        for s in specs {
            var small = s
            if s.task.isRuleTask { small.count = 300 }
            let a = try small.generate(), b = try small.generate()
            XCTAssertEqual(try JSONL.encode(a.train), try JSONL.encode(b.train), "\(s.task)")
            XCTAssertEqual(try JSONL.encode(a.test), try JSONL.encode(b.test), "\(s.task)")
            XCTAssertEqual(try a.meta.encoded(), try b.meta.encoded())
            var other = small
            other.seed = 99
            XCTAssertNotEqual(try JSONL.encode(other.generate().train), try JSONL.encode(a.train), "\(s.task)")
        }
    }

    func testEmbeddedDataMatchesDataFolder() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        for (file, embedded) in [("syllogism_terms.txt", EmbeddedData.syllogismTerms), ("explanatory_kb.txt", EmbeddedData.explanatoryKb)] {
            let text = try String(contentsOf: root.appendingPathComponent("Data/\(file)"), encoding: .utf8)
            XCTAssertEqual(text.trimmingCharacters(in: .newlines), embedded, "Data/\(file) changed: run Data/embed.sh")
        }
    }
}
