import XCTest
import Foundation
import RuleLensJobs
import RuleLensModel
import RuleLensNumerics
import RuleLensTasks

/// Issue 8, items 5–7: sizes checked before allocation, messages that lead somewhere, inputs people have.
final class ReliabilityTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("rulelens-reliability-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    func file(_ name: String, _ text: String) throws -> String {
        try text.write(toFile: path(name), atomically: true, encoding: .utf8)
        return path(name)
    }

    /// 12 examples "i+1=" → "i+1"; the longest sequence is [bos] + "11+1=" + "12" + [eos] = 9 tokens.
    var data: String { get throws { try file("d.jsonl", (0..<12).map { "{\"prompt\":\"\($0)+1=\",\"target\":\"\($0 + 1)\",\"rule\":\"r\($0 % 3)\"}\n" }.joined()) } }

    let tiny = ["--layers", "1", "--heads", "2", "--d-model", "16", "--batch", "4", "--quiet"]

    func assertFails(_ args: [String], _ fragments: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try CLI.run(args)
        XCTAssertEqual(r.code, 1, "exit code for \(args); stderr: \(r.err)", file: file, line: line)
        XCTAssertTrue(r.err.hasPrefix("error: "), r.err, file: file, line: line)
        XCTAssertTrue(r.err.contains("\nfix: "), r.err, file: file, line: line)
        for fragment in fragments {
            XCTAssertTrue(r.err.contains(fragment), "missing \"\(fragment)\" in: \(r.err)", file: file, line: line)
        }
    }

    func train(_ out: String, ctx: Int = 16, steps: Int = 2, extra: [String] = []) throws {
        let r = try CLI.run(["train", "--data", try data, "--out", path(out), "--steps", "\(steps)", "--ctx", "\(ctx)"] + tiny + extra)
        XCTAssertEqual(r.code, 0, r.err)
    }

    // MARK: item 6 — messages

    func testNegativeNumbersSayMustBePositive() throws {
        let d = try data
        for option in ["--layers", "--heads", "--d-model", "--d-mlp", "--ctx", "--steps", "--batch", "--lr", "--warmup",
                       "--weight-decay", "--grad-clip", "--threads", "--save-every", "--eval-every"] {
            let r = try CLI.run(["train", "--data", d, "--out", path("neg"), option, "-3", "--quiet"])
            if option == "--threads" {   // a runtime option, checked by the declaration (usage error)
                XCTAssertEqual(r.code, 64, r.err); XCTAssertTrue(r.err.contains("must be 0 (all cores) or positive"), r.err)
                continue
            }
            XCTAssertEqual(r.code, 1, "\(option): \(r.err)")
            XCTAssertFalse(r.err.contains("Missing value"), "\(option): \(r.err)")
            XCTAssertTrue(r.err.hasPrefix("error: ") && r.err.contains("\nfix: "), "\(option): \(r.err)")
            XCTAssertTrue(r.err.contains("must be") || r.err.contains("cannot be negative"), "\(option): \(r.err)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("neg/model.safetensors")))
    }

    func testGradClipNaNRefusedUpFront() throws {
        // Refused while parsing, as every non-finite number of every verb (FiniteNumbers): the usage error, exit 64.
        let r = try CLI.run(["train", "--data", try data, "--out", path("nan"), "--grad-clip", "nan", "--steps", "2"] + tiny)
        XCTAssertEqual(r.code, 64, r.err)
        XCTAssertTrue(r.err.contains("--grad-clip is nan") && r.err.contains("pass a finite number"), r.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("nan/train_config.json")))
    }

    func testZeroMeansNoneOrAllCores() throws {
        // --save-every 0: no periodic saves, the last step is saved; --threads 0: all cores; --eval-every 0: none.
        try train("zero", steps: 3, extra: ["--save-every", "0", "--threads", "0", "--eval-every", "0"])
        let info = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path("zero/rulelens.json")))) as? [String: Any]
        XCTAssertEqual(info?["step"] as? String, "3")
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("zero/eval_log.csv")))
        let help = try CLI.run(["train", "--help"]).out.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        XCTAssertTrue(help.contains("0: no periodic saves"), help)
        XCTAssertTrue(help.contains("0, the default: no periodic evaluation"), help)
        XCTAssertTrue(help.contains("0 or default: all cores"), help)
    }

    func testTooLongExampleNamesLongestAndTheCtxThatFits() throws {
        try assertFails(["train", "--data", try data, "--out", path("short"), "--ctx", "8", "--steps", "1"] + tiny,
                        ["needs 9 positions", "more than --ctx 8", "2 of 12 examples are too long", "the longest is example 11", "pass --ctx 9"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("short/model.safetensors")))
    }

    func testModelTrainedAtMinimumCtxDumpsItsOwnData() throws {
        try train("min", ctx: 9)
        let r = try CLI.run(["dump", "--checkpoint", path("min"), "--data", try data, "--hooks", "blocks.0.hook_resid_post",
                             "--out", path("min.h5"), "--quiet"])
        XCTAssertEqual(r.code, 0, r.err)
    }

    func testEvalAndLogitsSayWhatToDoInsteadOfRaisingCtx() throws {
        try train("m", ctx: 9)
        let long = try file("long.jsonl", "{\"prompt\":\"1+1=\",\"target\":\"2\"}\n{\"prompt\":\"123456+1=\",\"target\":\"123457\"}\n")
        for command in [["eval"], ["logits", "--out", path("l.safetensors")]] {
            let r = try CLI.run(command + ["--checkpoint", path("m"), "--data", long])
            XCTAssertEqual(r.code, 1, r.err)
            XCTAssertFalse(r.err.contains("raise --ctx"), r.err)
            XCTAssertTrue(r.err.contains("context of 9 positions") && r.err.contains("the longest is example 2"), r.err)
            XCTAssertTrue(r.err.contains("drop the 1 longer one") && r.err.contains("rulelens train … --ctx 17"), r.err)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("l.safetensors")))
        let d = try CLI.run(["dump", "--checkpoint", path("m"), "--data", long, "--hooks", "hook_embed", "--out", path("l.h5")])
        XCTAssertEqual(d.code, 1)
        XCTAssertTrue(d.err.contains("dump only examples of at most 9 positions"), d.err)
    }

    func testNonFiniteLossIsNullInEveryJSONOutput() throws {
        // A diverged model: every weight NaN.
        let model = try GPT(config: GPTConfig(nLayer: 1, nHead: 2, dModel: 16, nCtx: 16, vocabSize: CharTokenizer.standard.count), seed: 0)
        model.params.storage.ptr.update(repeating: .nan, count: model.params.storage.count)
        try Checkpoint.save(model, vocab: CharTokenizer.standard.vocab, to: path("nan-model"))
        let r = try CLI.run(["eval", "--checkpoint", path("nan-model"), "--data", try data, "--json", "--out", path("ev")])
        XCTAssertEqual(r.code, 0, r.err)
        let summary = (try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])?["test"] as? [String: Any]
        XCTAssertTrue(summary?["loss"] is NSNull, r.out)
        let lines = try String(contentsOfFile: path("ev/predictions_test.jsonl"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 12)
        for line in lines {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            XCTAssertTrue(object?["loss"] is NSNull, String(line))
        }
        XCTAssertEqual(try JSONText.string(["a": Double.nan, "b": [Float.infinity, 1], "c": "x"]), #"{"a":null,"b":[null,1],"c":"x"}"#)
    }

    // MARK: item 5 — sizes before allocation

    func testSizesAreCheckedBeforeAllocation() throws {
        let d = try data
        try assertFails(["train", "--data", d, "--out", path("big"), "--ctx", "4000", "--steps", "1", "--layers", "1", "--heads", "2",
                         "--d-model", "40000", "--batch", "4", "--quiet"],
                        ["needs about", "of memory available", "lower --ctx to 9"])
        // Far beyond every example, a learned position table is refused as such, whatever the memory.
        try assertFails(["train", "--data", d, "--out", path("big"), "--ctx", "100000000", "--steps", "1"] + tiny,
                        ["--ctx 100000000 is far beyond the longest example (9 positions)", "pass --ctx 9"])
        try assertFails(["train", "--data", d, "--out", path("big"), "--batch", "100000000", "--steps", "1", "--layers", "1", "--d-model", "16", "--heads", "2", "--quiet"],
                        ["needs about", "activations for batch 100000000", "lower --batch to"])
        // A limit the test sets: the estimate, not the machine, decides.
        let p = Process()
        p.executableURL = CLI.binary
        p.arguments = ["train", "--data", d, "--out", path("lim"), "--steps", "1", "--d-model", "64", "--quiet"]
        p.environment = ProcessInfo.processInfo.environment.merging(["RULELENS_MEMORY_LIMIT": "1M"]) { $1 }
        let err = Pipe(); p.standardError = err; p.standardOutput = Pipe()
        try p.run(); p.waitUntilExit()
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertEqual(p.terminationStatus, 1, text)
        XCTAssertTrue(text.contains("more than the 1.0 MB of memory available"), text)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("lim/model.safetensors")))

        // dump --batch is clamped to the number of examples (12), so a huge batch just works.
        try train("m")
        let r = try CLI.run(["dump", "--checkpoint", path("m"), "--data", d, "--hooks", "blocks.0.hook_resid_post",
                             "--batch", "1000000000", "--out", path("b.h5"), "--quiet"])
        XCTAssertEqual(r.code, 0, r.err)
        // A config.json claiming n_positions 1e9 is caught before the model is allocated, naming the field.
        let configPath = path("m/config.json")
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: configPath))) as! [String: Any]
        config["n_positions"] = 1e9
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: configPath))
        for command in [["eval"], ["logits", "--out", path("l.st")], ["dump", "--hooks", "hook_embed", "--out", path("x.h5")]] {
            // Edited on purpose, so past the SHA-256 check (which would name config.json first).
            try assertFails(command + ["--checkpoint", path("m"), "--data", d, "--no-verify"], ["n_positions is 1000000000", "transformer.wpe.weight [16, 16]"])
        }
        XCTAssertEqual(MemoryEstimate.parameterCount(GPTConfig(nLayer: 2, nHead: 2, dModel: 16, nCtx: 16, vocabSize: 99)),
                       try GPT(config: GPTConfig(nLayer: 2, nHead: 2, dModel: 16, nCtx: 16, vocabSize: 99), seed: 0).params.storage.count)
        XCTAssertEqual(MemoryEstimate.parameterCount(GPTConfig(nLayer: 1, nHead: 1, dModel: 1 << 40, nCtx: 1 << 40, vocabSize: 99)), Int.max)
    }

    // MARK: item 7 — inputs people have

    func testCRLFJSONLinesAreValid() throws {
        let crlf = try file("crlf.jsonl", "{\"prompt\":\"1+1=\",\"target\":\"2\"}\r\n{\"prompt\":\"1+2=\",\"target\":\"3\"}\r\n")
        let examples = try JSONL.readExamples(path: crlf)
        XCTAssertEqual(examples.map(\.target), ["2", "3"])
        let r = try CLI.run(["train", "--data", crlf, "--out", path("crlf"), "--steps", "1", "--ctx", "8"] + tiny)
        XCTAssertEqual(r.code, 0, r.err)
    }

    func testConfigEditsThatContradictTheModelNameTheField() throws {
        try train("m")
        let d = try data
        let configPath = path("m/config.json")
        let original = try Data(contentsOf: URL(fileURLWithPath: configPath))
        func edit(_ key: String, _ value: Any, _ fragments: [String]) throws {
            var config = try JSONSerialization.jsonObject(with: original) as! [String: Any]
            config[key] = value
            try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: configPath))
            // The SHA-256 manifest catches any edit; --no-verify (an edit on purpose) reaches the field checks.
            try assertFails(["eval", "--checkpoint", path("m"), "--data", d], ["config.json does not match the SHA-256", "--no-verify"])
            try assertFails(["eval", "--checkpoint", path("m"), "--data", d, "--no-verify"], fragments)
        }
        try edit("n_head", 4, ["n_head is 4", "trained with heads 2"])
        try edit("layer_norm_epsilon", "tiny", ["layer_norm_epsilon is tiny"])
        try edit("bos_token_id", 7, ["bos_token_id is 7", "<bos> the id 1"])
        try edit("eos_token_id", 9, ["eos_token_id is 9", "<eos> the id 2"])
        try edit("n_layer", 2.5, ["n_layer is 2.5, not a whole number"])
        try edit("n_embd", 32, ["n_embd is 32 but transformer.wte.weight"])
        try original.write(to: URL(fileURLWithPath: configPath))
        XCTAssertEqual(try CLI.run(["eval", "--checkpoint", path("m"), "--data", d]).code, 0)
    }
}
