import XCTest
import Foundation
import RuleLensJobs
import RuleLensModel
import RuleLensNumerics
import RuleLensTasks

/// Safetensors, checkpoints, batching and greedy decoding, in process.
final class CheckpointTests: XCTestCase {
    var dir: String!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("rulelens-ckpt-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    func randomModel(seed: UInt64 = 1) throws -> GPT {
        let model = try GPT(config: GPTConfig(nLayer: 2, nHead: 2, dModel: 16, dMLP: 24, nCtx: 12, vocabSize: 99), seed: seed)
        // Perturb every parameter so LayerNorm gains/biases (1 and 0 at init) are exercised too.
        var rng = SeededRNG(seed: seed, stream: "perturb")
        for i in 0..<model.params.storage.count { model.params.storage[i] += 0.3 * rng.normal() }
        return model
    }

    func testSafetensorsRoundTripAndHeader() throws {
        let a: [Float] = [1, -2.5, 3e-8, .greatestFiniteMagnitude, 0, 7]
        let b: [Int32] = [4, -5, 6]
        let path = dir + "/t.safetensors"
        try a.withUnsafeBufferPointer { pa in
            try b.withUnsafeBufferPointer { pb in
                try Safetensors.write([.init(name: "a", shape: [2, 3], floats: pa.baseAddress!), .init(name: "b.c", shape: [3], int32s: pb.baseAddress!)],
                                      metadata: ["k": "v \"quoted\""], to: path)
            }
        }
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        // Independent decode of the 8-byte header length and JSON header.
        let n = bytes.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        XCTAssertEqual((8 + n) % 8, 0)
        let header = try JSONSerialization.jsonObject(with: bytes.subdata(in: 8..<(8 + n))) as! [String: Any]
        XCTAssertEqual((header["a"] as! [String: Any])["data_offsets"] as! [Int], [0, 24])
        XCTAssertEqual((header["b.c"] as! [String: Any])["dtype"] as! String, "I32")
        XCTAssertEqual((header["__metadata__"] as! [String: String])["k"], "v \"quoted\"")
        let file = try Safetensors.read(path: path)
        XCTAssertEqual(try file.floats("a"), a)
        XCTAssertEqual(try file.floats("b.c"), [4, -5, 6])
        XCTAssertEqual(file.info("a")?.shape, [2, 3])
        XCTAssertEqual(file.metadata["k"], "v \"quoted\"")
        XCTAssertEqual(Safetensors.halfToFloat(0x3C00), 1)
        XCTAssertEqual(Safetensors.halfToFloat(0xC000), -2)
        XCTAssertEqual(Safetensors.halfToFloat(0x0001), Float(sign: .plus, exponent: -24, significand: 1))
    }

    func testCorruptSafetensorsAreRejected() throws {
        let path = dir + "/bad.safetensors"
        func expectError(_ data: Data, _ fragment: String, line: UInt = #line) {
            try! data.write(to: URL(fileURLWithPath: path))
            XCTAssertThrowsError(try Safetensors.read(path: path), line: line) { error in
                XCTAssertTrue("\(error)".contains(fragment), "\(error)", line: line)
            }
        }
        func withHeader(_ json: String, body: Int) -> Data {
            var d = Data()
            var n = UInt64(json.utf8.count).littleEndian
            withUnsafeBytes(of: &n) { d.append(contentsOf: $0) }
            d.append(contentsOf: Array(json.utf8)); d.append(Data(count: body))
            return d
        }
        expectError(Data([1, 2, 3]), "shorter than the 8-byte header")
        expectError(withHeader("{}", body: 0).prefix(9), "does not fit")
        expectError(withHeader("[1,2]", body: 0), "not a JSON object")
        expectError(withHeader("{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,12]}}", body: 12), "do not match its size")
        expectError(withHeader("{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", body: 10), "truncated")
        expectError(withHeader("{\"x\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}", body: 4), "dtype U8")
        expectError(withHeader("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"y\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", body: 12), "overlap")
    }

    func testSaveLoadGivesIdenticalLogits() throws {
        let model = try randomModel()
        let tokens: [Int32] = (0..<24).map { Int32(($0 * 37 + 5) % 99) }
        let before = Array(UnsafeBufferPointer(start: model.forward(tokens: tokens, batch: 2, seqLen: 12), count: 2 * 12 * 99))
        try Checkpoint.save(model, vocab: CharTokenizer.standard.vocab, to: dir + "/ckpt", extra: ["note": "x"])
        let (loaded, vocab) = try Checkpoint.load(dir + "/ckpt")
        XCTAssertEqual(loaded.config, model.config)
        XCTAssertEqual(vocab, CharTokenizer.standard.vocab)
        XCTAssertEqual(loaded.params.storage.toArray(), model.params.storage.toArray())
        let after = Array(UnsafeBufferPointer(start: loaded.forward(tokens: tokens, batch: 2, seqLen: 12), count: 2 * 12 * 99))
        XCTAssertEqual(before, after)
        // No temporary folders are left beside the checkpoint, and an existing checkpoint is not overwritten silently.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["ckpt"])
        XCTAssertThrowsError(try Checkpoint.save(model, vocab: nil, to: dir + "/ckpt"))
        XCTAssertNoThrow(try Checkpoint.save(model, vocab: nil, to: dir + "/ckpt", overwrite: true))
    }

    func testLoadNamesMissingAndMisshapenTensors() throws {
        let model = try randomModel()
        try Checkpoint.save(model, vocab: nil, to: dir + "/ckpt")
        // Drop one tensor and rename another.
        let file = try Safetensors.read(path: dir + "/ckpt/model.safetensors")
        var keep: [(String, [Int], [Float])] = []
        for t in file.tensors where t.name != "transformer.ln_f.bias" {
            keep.append((t.name == "transformer.wpe.weight" ? "transformer.wpe.extra" : t.name, t.shape, try file.floats(t.name)))
        }
        try write(keep, to: dir + "/ckpt/model.safetensors")
        XCTAssertThrowsError(try Checkpoint.load(dir + "/ckpt", verify: false)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("missing tensors: transformer.wpe.weight, transformer.ln_f.bias"), text)
            XCTAssertTrue(text.contains("unexpected tensors: transformer.wpe.extra"), text)
        }
        keep = try file.tensors.map { ($0.name, $0.name == "transformer.ln_f.bias" ? [8, 2] : $0.shape, try file.floats($0.name)) }
        try write(keep, to: dir + "/ckpt/model.safetensors")
        XCTAssertThrowsError(try Checkpoint.load(dir + "/ckpt", verify: false)) { error in
            XCTAssertTrue("\(error)".contains("transformer.ln_f.bias"), "\(error)")
            XCTAssertTrue("\(error)".contains("[8, 2]"), "\(error)")
        }
    }

    /// rulelens.json records each file's SHA-256 and size; a changed, missing or edited file is an error naming it.
    func testLoadVerifiesTheSHA256Manifest() throws {
        let model = try randomModel()
        try Checkpoint.save(model, vocab: CharTokenizer.standard.vocab, to: dir + "/ckpt")
        XCTAssertNoThrow(try Checkpoint.load(dir + "/ckpt"))
        let info = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/ckpt/rulelens.json"))) as! [String: Any]
        XCTAssertEqual(Set((info["files"] as! [String: Any]).keys), ["config.json", "vocab.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors"])
        XCTAssertEqual(info["blas_core"] as? String, BLAS.coreName)
        let weights = dir + "/ckpt/model.safetensors"
        let original = try Data(contentsOf: URL(fileURLWithPath: weights))
        var bytes = original
        bytes[bytes.count - 5] ^= 0x01          // one flipped bit in the last tensor's data
        try bytes.write(to: URL(fileURLWithPath: weights))
        XCTAssertThrowsError(try Checkpoint.load(dir + "/ckpt")) { error in
            XCTAssertTrue("\(error)".contains("model.safetensors does not match the SHA-256"), "\(error)")
            XCTAssertTrue("\(error)".contains("same size"), "\(error)")
            XCTAssertTrue("\(error)".contains("--no-verify"), "\(error)")
        }
        let (loaded, _) = try Checkpoint.load(dir + "/ckpt", verify: false)   // edited on purpose
        XCTAssertNotEqual(loaded.params.storage.toArray(), model.params.storage.toArray())
        try FileManager.default.removeItem(atPath: dir + "/ckpt/vocab.json")
        try original.write(to: URL(fileURLWithPath: weights))
        XCTAssertThrowsError(try Checkpoint.load(dir + "/ckpt")) { error in
            XCTAssertTrue("\(error)".contains("vocab.json is missing"), "\(error)")
        }
        // A folder without rulelens.json (e.g. saved by transformers) has nothing to verify against.
        try FileManager.default.removeItem(atPath: dir + "/ckpt/rulelens.json")
        XCTAssertNoThrow(try Checkpoint.load(dir + "/ckpt"))
    }

    func write(_ tensors: [(String, [Int], [Float])], to path: String) throws {
        let buffers = tensors.map { FloatBuffer($0.2) }
        try Safetensors.write(zip(tensors, buffers).map { Safetensors.Entry(name: $0.0, shape: $0.1, floats: $1.ptr) }, to: path)
    }

    func testBatchMaskCoversTargetAndEos() throws {
        let items = try Batching.tokenize([Example(prompt: "1+2=", target: "3"), Example(prompt: "10+20=", target: "30")],
                                          nCtx: 16, source: "test")
        let batch = Batching.makeBatch(items, lossOn: .target)
        XCTAssertEqual(batch.seqLen, 9)   // [bos] 10+20= 30 (eos is only a target)
        let t = CharTokenizer.standard
        // Row 0: inputs [bos] 1 + 2 = 3, targets 1 + 2 = 3 eos; loss on the positions predicting "3" and eos.
        XCTAssertEqual(Array(batch.inputs[0..<6]), [CharTokenizer.bos] + (try t.encode("1+2=3")))
        XCTAssertEqual(Array(batch.targets[0..<6]), (try t.encode("1+2=3")) + [CharTokenizer.eos])
        XCTAssertEqual(Array(batch.lossMask[0..<9]), [0, 0, 0, 0, 1, 1, 0, 0, 0])
        XCTAssertEqual(Array(batch.lossMask[9..<18]), [0, 0, 0, 0, 0, 0, 1, 1, 1])
        XCTAssertEqual(Array(batch.inputs[6..<9]), [0, 0, 0])
        let all = Batching.makeBatch(items, lossOn: .all)
        XCTAssertEqual(Array(all.lossMask[0..<9]), [1, 1, 1, 1, 1, 1, 0, 0, 0])
        XCTAssertEqual(all.realTokens, 6 + 9)
    }

    func testDataOrderIsAPermutationPerEpochAndDependsOnlyOnStep() {
        let count = 10, batch = 4
        let flat = (0..<5).flatMap { Batching.indices(step: $0, batchSize: batch, count: count, seed: 3) }
        XCTAssertEqual(Set(flat[0..<10]), Set(0..<10))
        XCTAssertEqual(Set(flat[10..<20]), Set(0..<10))
        XCTAssertNotEqual(Array(flat[0..<10]), Array(flat[10..<20]))
        XCTAssertEqual(Batching.indices(step: 3, batchSize: batch, count: count, seed: 3), Array(flat[12..<16]))
        XCTAssertNotEqual(Batching.indices(step: 0, batchSize: batch, count: count, seed: 4), Array(flat[0..<4]))
    }

    func testBatchedGreedyMatchesOneAtATime() throws {
        let model = try randomModel(seed: 4)
        let prompts: [[Int32]] = [[1, 20, 30], [1, 5], [1, 20, 31], [1, 7, 8, 9, 10], [1, 5]]
        let batched = Generate.greedy(model, prompts: prompts, maxNewTokens: 6, batchSize: 2)
        for (p, got) in zip(prompts, batched) {
            // Reference: one prompt, full forward per token, argmax of the last position.
            var seq = p, out: [Int32] = []
            while out.count < 6 && seq.count <= 12 {
                let logits = model.forward(tokens: seq, batch: 1, seqLen: seq.count) + (seq.count - 1) * 99
                let next = Int32((0..<99).max { logits[$0] < logits[$1] }!)
                if next == CharTokenizer.eos { break }
                out.append(next); seq.append(next)
            }
            XCTAssertEqual(got, out)
        }
    }
}
