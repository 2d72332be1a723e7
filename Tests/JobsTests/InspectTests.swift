import XCTest
import Foundation
@testable import RuleLensJobs
import RuleLensAnalysis
import RuleLensModel
import RuleLensStore
import RuleLensTasks

/// Issue 8 item 13: `rulelens info`, `rulelens hooks`, `rulelens init`, `--threads` on dump; item 10: the NTK ratio.
final class InspectTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("rulelens-inspect-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    var data: String {
        get throws {
            let p = path("d.jsonl")
            try (0..<10).map { "{\"prompt\":\"\($0)+2=\",\"target\":\"\($0 + 2)\"}\n" }.joined().write(toFile: p, atomically: true, encoding: .utf8)
            return p
        }
    }

    func testInfoDescribesATrainedCheckpoint() throws {
        let t = try CLI.run(["train", "--data", try data, "--out", path("run"), "--layers", "1", "--heads", "2", "--d-model", "16",
                             "--ctx", "12", "--steps", "3", "--batch", "4", "--lr", "0.002", "--quiet"])
        XCTAssertEqual(t.code, 0, t.err)
        let r = try CLI.run(["info", path("run")])
        XCTAssertEqual(r.code, 0, r.err)
        let model = try Checkpoint.load(path("run")).model
        for fragment in ["GPT-2, 1 layer, 2 heads × d_head 8, d_model 16, d_mlp 64, context 12", "parameters: \(model.params.storage.count) in",
                         "trained: step 3 of 3", "training options: steps 3, batch 4, lr 0.002", "kernel: ", "tokenizer: RuleLens character vocabulary"] {
            XCTAssertTrue(r.out.contains(fragment), "missing \"\(fragment)\" in:\n\(r.out)")
        }
        let j = try CLI.run(["info", path("run"), "--json"])
        let object = try JSONSerialization.jsonObject(with: Data(j.out.utf8)) as? [String: Any]
        XCTAssertEqual(object?["parameters"] as? Int, model.params.storage.count)
        XCTAssertEqual(object?["n_head"] as? Int, 2)
        let missing = try CLI.run(["info", path("nope")])
        XCTAssertEqual(missing.code, 1)
        XCTAssertTrue(missing.err.hasPrefix("error: ") && missing.err.contains("\nfix: "), missing.err)
    }

    func testHooksListsEverySiteWithItsPerExampleShape() throws {
        let config = GPTConfig(nLayer: 2, nHead: 2, dModel: 16, nCtx: 12, vocabSize: CharTokenizer.standard.count)
        try CheckpointInfo.writeRandomInit(config: config, seed: 0, to: path("m"))
        let all = try CLI.run(["hooks", path("m")])
        XCTAssertEqual(all.code, 0, all.err)
        let lines = all.out.split(separator: "\n")
        XCTAssertEqual(lines.count, HookSites.names(for: config).count)
        XCTAssertTrue(all.out.contains("blocks.1.attn.hook_pattern"))
        let one = try CLI.run(["hooks", path("m"), "blocks.*.attn.hook_pattern,blocks.0.attn.hook_q,unembed.hook_out"])
        let rows = one.out.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
        XCTAssertEqual(rows.map { $0[0] }, ["blocks.0.attn.hook_q", "blocks.0.attn.hook_pattern", "blocks.1.attn.hook_pattern", "unembed.hook_out"])
        XCTAssertTrue(one.out.contains("[pos, 2, 8]") && one.out.contains("pos,head,d_head"), one.out)
        XCTAssertTrue(one.out.contains("[2, pos, pos]") && one.out.contains("head,q_pos,k_pos"), one.out)
        XCTAssertTrue(one.out.contains("[pos, \(CharTokenizer.standard.count)]"), one.out)
        let typo = try CLI.run(["hooks", path("m"), "blocks.0.hook_resid_pots"])
        XCTAssertEqual(typo.code, 1)
        XCTAssertTrue(typo.err.contains("hook_resid_post"), typo.err)
    }

    func testInitWritesTheWeightsTrainStartsFrom() throws {
        let r = try CLI.run(["init", "--out", path("base"), "--layers", "1", "--heads", "2", "--d-model", "16", "--ctx", "12", "--seed", "7"])
        XCTAssertEqual(r.code, 0, r.err)
        let loaded = try Checkpoint.load(path("base")).model
        let fresh = try GPT(config: loaded.config, seed: 7)
        XCTAssertEqual(Array(UnsafeBufferPointer(start: loaded.params.storage.ptr, count: loaded.params.storage.count)),
                       Array(UnsafeBufferPointer(start: fresh.params.storage.ptr, count: fresh.params.storage.count)))
        XCTAssertTrue(try CLI.run(["info", path("base")]).out.contains("untrained: random initialisation (seed 7)"))
        XCTAssertEqual(try CLI.run(["eval", "--checkpoint", path("base"), "--data", try data]).code, 0)
        XCTAssertEqual(try CLI.run(["init", "--out", path("base")]).code, 1)   // never replaces a folder
    }

    func testDumpThreadsGiveTheSameActivations() throws {
        let config = GPTConfig(nLayer: 1, nHead: 2, dModel: 16, nCtx: 12, vocabSize: CharTokenizer.standard.count)
        try CheckpointInfo.writeRandomInit(config: config, seed: 1, to: path("m"))
        var outputs: [[Float]] = []
        for t in ["1", "2"] {
            let r = try CLI.run(["dump", "--checkpoint", path("m"), "--data", try data, "--hooks", "blocks.0.hook_resid_post",
                                 "--out", path("t\(t).h5"), "--threads", t, "--quiet"])
            XCTAssertEqual(r.code, 0, r.err)
            let reader = try ActivationStoreReader(path: path("t\(t).h5"))
            let m = try reader.readPosition(site: "blocks.0.hook_resid_post", .last, examples: 0..<reader.count)
            outputs.append(Array(UnsafeBufferPointer(start: m.values.ptr, count: m.values.count)))
        }
        XCTAssertEqual(outputs[0].count, outputs[1].count)
        for (a, b) in zip(outputs[0], outputs[1]) { XCTAssertEqual(a, b, accuracy: 1e-5) }
        let bad = try CLI.run(["dump", "--checkpoint", path("m"), "--data", try data, "--hooks", "hook_embed", "--out", path("x.h5"), "--threads", "-2"])
        XCTAssertEqual(bad.code, 64)   // a usage error, refused before anything is read
        XCTAssertTrue(bad.err.contains("--threads is -2"), bad.err)
    }

    func testNTKRatioIsDefinedOnlyForPositiveBetweenCosine() throws {
        XCTAssertEqual(GradientKernel.ratio(within: 0.3, between: 0.1)!, 3, accuracy: 1e-12)
        XCTAssertNil(GradientKernel.ratio(within: 0.3, between: -0.1))
        XCTAssertNil(GradientKernel.ratio(within: 0.3, between: 0))
        let rows = try JSONDecoder().decode([GradientKernel.BlockSimilarity].self, from: Data("""
            [{"block":"h.0.attn_qkv","layer":0,"kind":"attn_qkv","parameters":10,"within":0.3,"between":0.1,"ratio":3,"difference":0.2,"alignment":0.5},
             {"block":"h.0.mlp_in","layer":0,"kind":"mlp_in","parameters":10,"within":0.2,"between":-0.05,"difference":0.25}]
            """.utf8))
        let table = ProbeJob.ntkTable(rows)
        XCTAssertTrue(table.contains("3.000"), table)
        XCTAssertTrue(table.contains("n/a"), table)
        XCTAssertTrue(table.contains("between-rule cosine is ≤ 0"), table)
        XCTAssertFalse(ProbeJob.ntkTable([rows[0]]).contains("n/a"))
    }
}
