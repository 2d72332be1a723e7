import XCTest
@testable import RuleLensRun
import RuleLensNumerics

/// The bounds on what a spec may ask: folder names made by rule, shared folders refused, paths confined under the
/// run folder, the size of the YAML, the sweep and the expressions limited, and fingerprints that stat first.
final class SpecLimitsTests: XCTestCase {
    func error(_ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) -> RuleLensError? {
        do { try body(); XCTFail("no error", file: file, line: line); return nil }
        catch let e as RuleLensError { return e } catch { XCTFail("\(error)", file: file, line: line); return nil }
    }

    func testFolderNamesKeepPlainValuesAndHashTheRest() {
        XCTAssertEqual(RunFolders.name([("task", "addition"), ("lr", "3e-3")]), "task-addition_lr-3e-3")
        for value in ["/../../escaped", "..", "a/b", "a\nb", "\u{1}", String(repeating: "x", count: 300), "é"] {
            let name = RunFolders.name([("s", value)])
            XCTAssertFalse(name.contains("/") || name.contains("..") || name.hasPrefix("."), name)
            XCTAssertFalse(name.unicodeScalars.contains { $0.value < 32 }, name)
            XCTAssertLessThanOrEqual(name.utf8.count, 160, name)
        }
        // Values that clean to the same text keep distinct names (the hash of the whole value).
        XCTAssertNotEqual(RunFolders.name([("s", "a/b")]), RunFolders.name([("s", "a_b")]))
        XCTAssertNotEqual(RunFolders.name([("s", "x")]), RunFolders.name([("s", "x/")]))
        let long = (0..<20).map { ("v\($0)", String(repeating: "y", count: 40)) }
        XCTAssertLessThanOrEqual(RunFolders.name(long).utf8.count, 160)
    }

    func testSharedFolderIsRefusedBeforeAnythingRuns() throws {
        let spec = try SpecParser.parse("name: t\nclaim: c\nsweep:\n  - {s: a, t: 1}\n  - {t: 1, s: a}\nsteps:\n  - data: {task: syllogism}\n",
                                        path: "t.yaml")
        let e = error { _ = try RunPlan(spec: spec, outDir: "/tmp/never-written", quick: false) }
        XCTAssertTrue(e?.problem.contains("would both write into the folder s-a_t-1") ?? false, "\(String(describing: e))")
        XCTAssertFalse(FileManager.default.fileExists(atPath: "/tmp/never-written"))
    }

    func testPathsResolveInsideTheRunFolder() throws {
        XCTAssertNoThrow(try RunFolders.checkConfined("/r/out/a/../b", under: "/r/out", what: "x"))
        XCTAssertNotNil(error { try RunFolders.checkConfined("/r/out/../elsewhere", under: "/r/out", what: "x") })
        XCTAssertNotNil(error { try RunFolders.checkConfined("/r/outside", under: "/r/out", what: "x") })
        XCTAssertEqual(RunFolders.resolved("/a/./b/../c"), RunFolders.resolved("/a/c"))
    }

    func testLimitsAreSetByNameAndNamedInErrors() throws {
        let limits = try SpecLimits(settings: ["variants=5000", "expression-depth = 40"])
        XCTAssertEqual(limits.variants, 5000)
        XCTAssertEqual(limits.expressionDepth, 40)
        XCTAssertEqual(limits.arguments, ["--limit", "variants=5000", "--limit", "expression-depth=40"])
        XCTAssertNotNil(error { _ = try SpecLimits(settings: ["variant=5"]) })
        XCTAssertNotNil(error { _ = try SpecLimits(settings: ["variants=0"]) })
        let e = limits.exceeded("variants", "too many", lessFix: "fewer")
        XCTAssertTrue(e.problem.contains("limit of 5000 (variants)") && e.fix.contains("--limit variants="), e.description)
    }

    func testSweepIsCountedBeforeItIsExpanded() {
        let axis = "[" + (0..<100).map(String.init).joined(separator: ", ") + "]"
        let yaml = "name: t\nclaim: c\nsweep:\n" + (0..<5).map { "  s\($0): \(axis)\n" }.joined() + "steps:\n  - data: {task: syllogism}\n"
        let e = error { _ = try SpecParser.parse(yaml, path: "t.yaml") }
        XCTAssertTrue(e?.problem.contains("10000000000 variants (100 × 100 × 100 × 100 × 100)") ?? false, "\(String(describing: e))")
    }

    func testAliasBombIsRefusedFromTheEventStream() {
        var yaml = "name: t\nclaim: c\nvars:\n  a0: &a0 [x, x, x, x, x, x, x, x, x]\n"
        for i in 1..<9 { yaml += "  a\(i): &a\(i) [" + Array(repeating: "*a\(i - 1)", count: 9).joined(separator: ", ") + "]\n" }
        yaml += "? *a8\n: 1\nsteps:\n  - data: {task: syllogism}\n"
        let e = error { _ = try SpecParser.parse(yaml, path: "t.yaml") }
        XCTAssertTrue(e?.problem.contains("(spec-values)") ?? false, "\(String(describing: e))")
        // Within the limit, aliases are ordinary values.
        XCTAssertNoThrow(try SpecParser.parse("name: t\nclaim: c\nvars:\n  a: &a [1, 2]\n  b: *a\nsteps:\n  - data: {task: syllogism}\n", path: "t.yaml"))
    }

    func testExpressionDepthIsCountedNotRecursedWithoutBound() {
        XCTAssertNoThrow(try Expression.parse(String(repeating: "(", count: 32) + "1" + String(repeating: ")", count: 32)))
        XCTAssertThrowsError(try Expression.parse(String(repeating: "-", count: 100_000) + "1")) { e in
            XCTAssertEqual((e as? ExpressionError)?.limit, "expression-depth")
        }
        XCTAssertThrowsError(try Expression.parse(String(repeating: "not ", count: 33) + "true", maxDepth: 32))
        XCTAssertNoThrow(try Expression.parse(String(repeating: "not ", count: 33) + "true", maxDepth: 33))
    }

    func testFingerprintsStatFirst() throws {
        let e = error { _ = try StepCache.contentFingerprint("/dev/zero") }
        XCTAssertTrue(e?.problem.contains("a character device") ?? false, "\(String(describing: e))")
        var small = SpecLimits()
        small.inputFiles = 4  // a, sub, sub/b, then sub/c; d is one too many
        let dir = NSTemporaryDirectory() + "rulelens-limits-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir + "/sub", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for name in ["a", "sub/b"] { try Data(name.utf8).write(to: URL(fileURLWithPath: dir + "/" + name)) }
        let before = try StepCache.contentFingerprint(dir, limits: small)
        try Data("c".utf8).write(to: URL(fileURLWithPath: dir + "/sub/c"))
        XCTAssertNotEqual(try StepCache.contentFingerprint(dir, limits: small), before)
        try Data("d".utf8).write(to: URL(fileURLWithPath: dir + "/d"))
        XCTAssertTrue(error { _ = try StepCache.contentFingerprint(dir, limits: small) }?.problem.contains("(input-files)") ?? false)
    }
}
