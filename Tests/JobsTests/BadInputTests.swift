import XCTest
import Foundation
import RuleLensJobs
import RuleLensModel

/// Every bad input of `rulelens train` / `eval` gives a one-paragraph error naming the problem and the fix,
/// exit code 1, and no half-written output.
final class BadInputTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("rulelens-badinput-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func file(_ name: String, _ text: String) throws -> String {
        let url = dir.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    var goodData: String { get throws { try file("good.jsonl", (0..<8).map { "{\"prompt\":\"\($0)+1=\",\"target\":\"\($0 + 1)\"}\n" }.joined()) } }

    let tiny = ["--layers", "1", "--heads", "2", "--d-model", "16", "--ctx", "16", "--batch", "4", "--quiet"]

    func assertFails(_ args: [String], _ fragments: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try CLI.run(args)
        XCTAssertEqual(r.code, 1, "exit code; stderr: \(r.err)", file: file, line: line)
        XCTAssertTrue(r.err.hasPrefix("error: "), r.err, file: file, line: line)
        XCTAssertTrue(r.err.contains("\nfix: "), r.err, file: file, line: line)
        for fragment in fragments {
            XCTAssertTrue(r.err.contains(fragment), "missing \"\(fragment)\" in: \(r.err)", file: file, line: line)
        }
    }

    func testMissingDataFile() throws {
        try assertFails(["train", "--data", path("nope.jsonl"), "--out", path("run")] + tiny, ["nope.jsonl does not exist"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("run")))
    }

    func testMalformedJSONLNamesTheLine() throws {
        let data = try file("bad.jsonl", "{\"prompt\":\"1+1=\",\"target\":\"2\"}\n{\"prompt\":\"1+2=\",\"target\":\"3\"}\n{\"prompt\": 1+3=}\n")
        try assertFails(["train", "--data", data, "--out", path("run")] + tiny, ["line 3 of", "not valid JSON"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("run")))
        try assertFails(["train", "--data", try file("nofield.jsonl", "{\"prompt\":\"1+1=\"}\n"), "--out", path("run")] + tiny,
                        ["line 1 of", "no string field \"target\""])
    }

    func testExampleLongerThanContext() throws {
        let data = try file("long.jsonl", "{\"prompt\":\"1+1=\",\"target\":\"2\"}\n{\"prompt\":\"123456789+987654321=\",\"target\":\"1111111110\"}\n")
        try assertFails(["train", "--data", data, "--out", path("run")] + tiny,
                        ["example 2", "needs 32 positions", "more than --ctx 16", "the longest is example 2", "pass --ctx 32"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("run")))
    }

    func testDModelNotDivisibleByHeads() throws {
        try assertFails(["train", "--data", try goodData, "--out", path("run"), "--d-model", "30", "--heads", "4"],
                        ["d_model 30 is not divisible by the number of heads 4", "--d-model"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("run")))
    }

    func testDivergenceFromWeightDecayNamesWeightDecay() throws {
        // lr × weight decay ≫ 1: decoupled decay flips and blows up the weights whatever the learning rate; it is
        // refused before training, naming the weight decay, not --lr, and nothing is written.
        try assertFails(["train", "--data", try goodData, "--out", path("run"), "--weight-decay", "1e30", "--steps", "5"] + tiny,
                        ["--weight-decay 1e+30", "wipes them out"])
        let r = try CLI.run(["train", "--data", try goodData, "--out", path("run2"), "--weight-decay", "1e30", "--steps", "5"] + tiny)
        XCTAssertFalse(r.err.contains("lower --lr"), r.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("run")))
    }

    func testNaNLossStopsAndKeepsLastCheckpoint() throws {
        // A learning rate of 1e30 sends the weights to ~1e30 after one step; the next forward overflows. (No weight
        // decay: lr·wd ≥ 1 is refused before training.)
        try assertFails(["train", "--data", try goodData, "--out", path("run"), "--lr", "1e30", "--warmup", "0", "--weight-decay", "0",
                         "--steps", "20", "--save-every", "1"] + tiny,
                        ["training stopped at step 2", "the last good checkpoint (step 1) is kept", "lower --lr"])
        let info = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path("run/rulelens.json")))) as? [String: Any]
        XCTAssertEqual(info?["step"] as? String, "1")
        XCTAssertNoThrow(try Checkpoint.load(path("run")))
    }

    func testExistingRunNeedsResume() throws {
        let data = try goodData
        XCTAssertEqual(try CLI.run(["train", "--data", data, "--out", path("run"), "--steps", "2"] + tiny).code, 0)
        let before = try Data(contentsOf: URL(fileURLWithPath: path("run/model.safetensors")))
        try assertFails(["train", "--data", data, "--out", path("run"), "--steps", "2"] + tiny, ["already holds a training run", "--resume"])
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path("run/model.safetensors"))), before)
        try assertFails(["train", "--data", data, "--out", path("fresh"), "--steps", "2", "--resume"] + tiny, ["holds no resumable run"])
    }

    func testEvalBadCheckpoints() throws {
        let data = try goodData
        try assertFails(["eval", "--checkpoint", path("missing"), "--data", data], ["checkpoint folder", "does not exist"])
        XCTAssertEqual(try CLI.run(["train", "--data", data, "--out", path("run"), "--steps", "1"] + tiny).code, 0)
        // Truncate the weights: the reader notices from the header's offsets.
        let weights = URL(fileURLWithPath: path("run/model.safetensors"))
        let bytes = try Data(contentsOf: weights)
        try bytes.prefix(bytes.count - 100).write(to: weights)
        try assertFails(["eval", "--checkpoint", path("run"), "--data", data], ["model.safetensors does not match the SHA-256", "bytes, saved as", "--no-verify"])
        try assertFails(["eval", "--checkpoint", path("run"), "--data", data, "--no-verify"], ["not a valid safetensors file", "truncated"])
        try Data("{\"n_layer\": 1}".utf8).write(to: URL(fileURLWithPath: path("run/config.json")))
        try assertFails(["eval", "--checkpoint", path("run"), "--data", data], ["config.json does not match the SHA-256"])
        try assertFails(["eval", "--checkpoint", path("run"), "--data", data, "--no-verify"], ["has no integer \"n_embd\""])
    }

    func testEvalRefusesToOverwriteOutput() throws {
        let data = try goodData
        XCTAssertEqual(try CLI.run(["train", "--data", data, "--out", path("run"), "--steps", "1"] + tiny).code, 0)
        try FileManager.default.createDirectory(atPath: path("ev"), withIntermediateDirectories: true)
        let out = try file("ev/predictions_test.jsonl", "precious\n")
        try assertFails(["eval", "--checkpoint", path("run"), "--data", data, "--out", path("ev")], ["already exists"])
        XCTAssertEqual(try String(contentsOfFile: out, encoding: .utf8), "precious\n")
    }
}
