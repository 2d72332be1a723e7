import Foundation
import XCTest
import RuleLensNumerics
@testable import RuleLensModel

/// The GPT-2 stack wired as a VAE's encoder (bidirectional, padding masked, no LM head) and as a decoder that takes
/// injected vectors (memory slot, Q/K/V additions, embedding addition): gradients by finite differences, masks and
/// site names checked directly.
final class GPTWiringTests: XCTestCase {
    override func setUp() { Parallel.configure(threads: 2) }

    let (B, T) = (2, 5)
    let tokens: [Int32] = [1, 4, 2, 6, 3, 0, 5, 5, 2, 1]
    let targets: [Int32] = [4, 2, 6, 3, 0, 5, 5, 2, 1, 3]
    let mask: [Float] = [0, 1, 1, 0.5, 1, 1, 0, 2, 1, 1]

    private func wiredModel(_ injections: Set<Injection>) throws -> GPT {
        let plain = try tinyModel()
        let model = try GPT(config: plain.config, seed: 0, wiring: GPTWiring(injections: injections))
        model.params.storage.ptr.update(from: plain.params.storage.ptr, count: plain.params.storage.count)
        return model
    }

    func testInjectionGradientsMatchFiniteDifferences() throws {
        let model = try wiredModel(Set(Injection.allCases))
        let (L, d) = (model.config.nLayer, model.config.dModel)
        var vectors: [Injection: [Float]] = [:]
        for (i, injection) in Injection.allCases.enumerated() {
            vectors[injection] = randomFloats((injection == .embedding ? 1 : L) * B * d, std: 0.5, seed: 200 + UInt64(i))
        }
        func loss(_ v: [Injection: [Float]]) -> Double {
            v[.memory]!.withUnsafeBufferPointer { m in v[.query]!.withUnsafeBufferPointer { q in v[.key]!.withUnsafeBufferPointer { k in
            v[.value]!.withUnsafeBufferPointer { vv in v[.embedding]!.withUnsafeBufferPointer { e in
                let c = Conditioning(memory: m.baseAddress, query: q.baseAddress, key: k.baseAddress, value: vv.baseAddress, embedding: e.baseAddress)
                _ = model.forward(tokens: tokens, batch: B, seqLen: T, conditioning: c)
                return Double(model.loss(targets: targets, lossMask: mask))
            } } } } }
        }
        var buffers: [Injection: FloatBuffer] = [:]
        for injection in Injection.allCases { buffers[injection] = FloatBuffer(count: vectors[injection]!.count) }
        model.zeroGrads()
        _ = loss(vectors)
        model.backward(conditioningGradients: ConditioningGradients(memory: buffers[.memory]!.ptr, query: buffers[.query]!.ptr,
                                                                    key: buffers[.key]!.ptr, value: buffers[.value]!.ptr,
                                                                    embedding: buffers[.embedding]!.ptr))
        let gradients = buffers.mapValues { $0.toArray() }
        let parameterGradients = model.grads.storage.toArray()
        for injection in Injection.allCases {
            assertGradient("d\(injection)", input: vectors[injection]!, analytic: gradients[injection]!, atol: 2e-3) { changed in
                var v = vectors; v[injection] = changed; return loss(v)
            }
        }
        // A few parameters of each block too: the injections must not break the ordinary gradients.
        for name in ["transformer.h.0.attn.c_attn.weight", "transformer.h.1.attn.c_attn.bias", "transformer.wpe.weight"] {
            let t = model.params.tensor(name)!
            let indices = Array(stride(from: 0, to: t.count, by: max(1, t.count / 10)))
            let values = indices.map { model.params.storage.ptr[t.offset + $0] }
            let analytic = indices.map { parameterGradients[t.offset + $0] }
            assertGradient(name, input: values, analytic: analytic, atol: 2e-3) { changed in
                for (j, i) in indices.enumerated() { model.params.storage.ptr[t.offset + i] = changed[j] }
                defer { for (j, i) in indices.enumerated() { model.params.storage.ptr[t.offset + i] = values[j] } }
                return loss(vectors)
            }
        }
    }

    /// Adding zero vectors to Q, K, V and the embeddings changes nothing, bit for bit (x + 0 = x).
    func testZeroAdditiveInjectionsAreExact() throws {
        let plain = try tinyModel()
        let wired = try wiredModel([.query, .key, .value, .embedding])
        let (L, d, V) = (plain.config.nLayer, plain.config.dModel, plain.config.vocabSize)
        let expected = Array(UnsafeBufferPointer(start: plain.forward(tokens: tokens, batch: B, seqLen: T), count: B * T * V))
        let zeros = [Float](repeating: 0, count: L * B * d)
        let got = zeros.withUnsafeBufferPointer { z in
            Array(UnsafeBufferPointer(start: wired.forward(tokens: tokens, batch: B, seqLen: T,
                                                           conditioning: Conditioning(query: z.baseAddress, key: z.baseAddress,
                                                                                      value: z.baseAddress, embedding: z.baseAddress)),
                                      count: B * T * V))
        }
        XCTAssertEqual(got, expected)
    }

    /// The encoder wiring: padding beyond each example's length cannot reach real positions, and the hidden-state
    /// backward matches finite differences.
    func testBidirectionalEncoderMasksPaddingAndBackpropagates() throws {
        let plain = try tinyModel()
        let encoder = try GPT(config: plain.config, seed: 0, wiring: GPTWiring(causal: false, hookPrefix: "encoder.", tensorPrefix: "encoder."))
        encoder.params.storage.ptr.update(from: plain.params.storage.ptr, count: plain.params.storage.count)
        let d = plain.config.dModel
        let lengths: [Int32] = [3, 5]
        let hidden = Array(UnsafeBufferPointer(start: encoder.forwardHidden(tokens: tokens, batch: B, seqLen: T, keyLengths: lengths),
                                               count: B * T * d))
        var changed = tokens
        changed[3] = 0; changed[4] = 1                                   // example 0's padding
        let hidden2 = Array(UnsafeBufferPointer(start: encoder.forwardHidden(tokens: changed, batch: B, seqLen: T, keyLengths: lengths),
                                                count: B * T * d))
        XCTAssertEqual(Array(hidden2[0..<(3 * d)]), Array(hidden[0..<(3 * d)]), "real positions ignore the padding")
        XCTAssertEqual(Array(hidden2[(T * d)...]), Array(hidden[(T * d)...]), "the other example is untouched")
        // Bidirectional: an early position sees a later token.
        var later = tokens
        later[2] = 6
        let hidden3 = encoder.forwardHidden(tokens: later, batch: B, seqLen: T, keyLengths: lengths)
        XCTAssertNotEqual(hidden3[0], hidden[0], "position 0 attends to position 2")

        let r = randomFloats(B * T * d, seed: 300)
        encoder.zeroGrads()
        _ = encoder.forwardHidden(tokens: tokens, batch: B, seqLen: T, keyLengths: lengths)
        r.withUnsafeBufferPointer { encoder.backward(dHidden: $0.baseAddress!) }
        let grads = encoder.grads.storage.toArray()
        for name in ["encoder.h.0.attn.c_attn.weight", "encoder.h.1.mlp.c_fc.weight", "encoder.wte.weight"] {
            let t = encoder.params.tensor(name)!
            let indices = Array(stride(from: 0, to: t.count, by: max(1, t.count / 12)))
            let values = indices.map { encoder.params.storage.ptr[t.offset + $0] }
            assertGradient(name, input: values, analytic: indices.map { grads[t.offset + $0] }, atol: 2e-3) { v in
                for (j, i) in indices.enumerated() { encoder.params.storage.ptr[t.offset + i] = v[j] }
                defer { for (j, i) in indices.enumerated() { encoder.params.storage.ptr[t.offset + i] = values[j] } }
                return project(encoder.forwardHidden(tokens: tokens, batch: B, seqLen: T, keyLengths: lengths), r)
            }
        }
    }

    func testWiredSiteNamesAndShapes() throws {
        let config = GPTConfig(nLayer: 2, nHead: 2, dModel: 8, nCtx: 6, vocabSize: 7)
        let decoder = try GPT(config: config, seed: 0, wiring: GPTWiring(injections: [.memory, .query, .embedding]))
        XCTAssertTrue(decoder.hookSites.contains("blocks.1.attn.hook_mem_kv"))
        XCTAssertTrue(decoder.hookSites.contains("blocks.0.attn.hook_q_inject"))
        XCTAssertTrue(decoder.hookSites.contains("hook_latent_embed"))
        XCTAssertFalse(decoder.hookSites.contains("blocks.0.attn.hook_k_inject"))
        XCTAssertEqual(decoder.hookShape("blocks.0.attn.hook_pattern", batch: 3, seqLen: 4), [3, 2, 4, 5], "memory slot is one more key")
        XCTAssertEqual(decoder.hookShape("blocks.0.attn.hook_mem_kv", batch: 3, seqLen: 4), [3, 8])
        let encoder = try GPT(config: config, seed: 0, wiring: GPTWiring(causal: false, hookPrefix: "encoder.", tensorPrefix: "encoder."))
        XCTAssertEqual(encoder.hookSites.first, "encoder.hook_embed")
        XCTAssertFalse(encoder.hookSites.contains { $0.contains("unembed") })
        XCTAssertEqual(encoder.hookShape("encoder.blocks.1.attn.hook_q", batch: 2, seqLen: 3), [2, 3, 2, 4])
        XCTAssertEqual(try encoder.resolveHooks(["encoder.blocks.*.hook_resid_post"]).count, 2)
        XCTAssertThrowsError(try encoder.resolveHooks(["blocks.0.hook_resid_post"]))
        XCTAssertEqual(encoder.params.tensors.first?.name, "encoder.wte.weight")
        // A hook on the injected memory sees [batch, d_model] and can edit it.
        let hooks = HookSet()
        let cache = hooks.cache(["blocks.0.attn.hook_mem_kv", "blocks.0.attn.hook_pattern"])
        let vectors = [Float](repeating: 0.5, count: 2 * 1 * 8)
        vectors.withUnsafeBufferPointer { v in
            _ = decoder.forward(tokens: [1, 2, 3], batch: 1, seqLen: 3, hooks: hooks,
                                conditioning: Conditioning(memory: v.baseAddress, query: v.baseAddress, embedding: v.baseAddress))
        }
        XCTAssertEqual(cache["blocks.0.attn.hook_mem_kv"]?.shape, [1, 8])
        XCTAssertEqual(cache["blocks.0.attn.hook_pattern"]?.shape, [1, 2, 3, 4])
    }
}
