import RuleLensModel
import RuleLensNumerics

/// Study 2's NTK argument made measurable: are per-example gradients of one rule more alike than gradients of
/// different rules, block by block? If the empirical NTK K(x, x') = ⟨∇θ ℓ(x), ∇θ ℓ(x')⟩ is close to block-diagonal by
/// rule, the within-rule cosine similarity is well above the between-rule one.
///
/// The gradient is that of the example's own training loss (mean cross-entropy over the positions its loss mask
/// counts), computed with a batch-1 forward/loss/backward of the model. For every parameter block — per layer:
/// attention QKV (`attn.c_attn` weight + bias), attention output (`attn.c_proj`), FFN in (`mlp.c_fc`), FFN out
/// (`mlp.c_proj`) — each example's block gradient is normalised to unit length, uᵢ = gᵢ / ‖gᵢ‖, and
///
///   within  = mean over ordered pairs i ≠ j of the same rule of uᵢ · uⱼ
///   between = mean over pairs of different rules of uᵢ · uⱼ
///
/// computed exactly from per-rule sums Sᵣ = Σ_{i∈r} uᵢ: Σ_{i≠j∈r} uᵢ·uⱼ = ‖Sᵣ‖² − nᵣ and Σ_{i∈r, j∈s} uᵢ·uⱼ = Sᵣ·Sₛ,
/// so memory is (rules × parameters), not (examples × parameters). An example whose block gradient is exactly
/// zero has no direction and is left out of that block's means.
public enum GradientKernel {
    /// A group of parameter tensors measured together.
    public struct Block: Sendable, Equatable {
        public let layer: Int
        /// attn_qkv, attn_out, ffn_in or ffn_out.
        public let kind: String
        /// HF tensor names in the block.
        public let tensors: [String]
        /// Stack prefix of the name ("" for a GPT, "encoder." for a VAE's encoder; "latent." blocks have no layer).
        public var prefix: String = ""
        public var name: String { prefix == "latent." ? "latent.\(kind)" : "\(prefix)blocks.\(layer).\(kind)" }

        public init(layer: Int, kind: String, tensors: [String], prefix: String = "") {
            self.layer = layer; self.kind = kind; self.tensors = tensors; self.prefix = prefix
        }
    }

    /// Within/between-rule gradient similarity of one block.
    public struct BlockSimilarity: Sendable, Codable, Equatable {
        public let block: String
        public let layer: Int
        public let kind: String
        public let parameters: Int
        /// Mean cosine similarity of per-example gradients within a rule, and between rules.
        public let within: Double
        public let between: Double
        /// within / between when between > 0 (block-diagonality); nil when between ≤ 0 (see `ratio(within:between:)`).
        public let ratio: Double?
        /// within − between.
        public let difference: Double
        /// Centred kernel–label alignment: linear CKA between the unit per-example gradients and the one-hot rule
        /// labels, i.e. ⟨HKH, HLH⟩ / (‖HKH‖ ‖HLH‖) with K the cosine kernel and L the same-rule kernel. Scale-free,
        /// in [0, 1]; comparable across models and regimes where raw cosines are not. Nil when undefined (every
        /// gradient of the block zero).
        public let alignment: Double?
    }

    /// The block-diagonality ratio within / between, defined only when the mean between-rule cosine is positive.
    /// When it is ≤ 0 — gradients of different rules orthogonal or opposed on average — a ratio would change sign or
    /// blow up without saying anything more about block structure, so none is reported (nil; `null` in JSON, "n/a"
    /// in the table) and the difference within − between is the measure to read.
    public static func ratio(within: Double, between: Double) -> Double? {
        between > 0 ? within / between : nil
    }

    /// The four blocks of every layer, in forward order. `tensorPrefix`/`namePrefix` select a VAE's encoder stack
    /// (`encoder.h.{l}.…`, blocks named `encoder.blocks.{l}.…`).
    public static func blocks(for config: GPTConfig, tensorPrefix: String = "transformer.", namePrefix: String = "") -> [Block] {
        (0..<config.nLayer).flatMap { l -> [Block] in
            let p = "\(tensorPrefix)h.\(l)."
            return [Block(layer: l, kind: "attn_qkv", tensors: [p + "attn.c_attn.weight", p + "attn.c_attn.bias"], prefix: namePrefix),
                    Block(layer: l, kind: "attn_out", tensors: [p + "attn.c_proj.weight", p + "attn.c_proj.bias"], prefix: namePrefix),
                    Block(layer: l, kind: "ffn_in", tensors: [p + "mlp.c_fc.weight", p + "mlp.c_fc.bias"], prefix: namePrefix),
                    Block(layer: l, kind: "ffn_out", tensors: [p + "mlp.c_proj.weight", p + "mlp.c_proj.bias"], prefix: namePrefix)]
        }
    }

    /// One example: model inputs, next-token targets and the loss mask (all of length seqLen).
    public struct Sequence: Sendable {
        public let inputs: [Int32], targets: [Int32], lossMask: [Float]
        public init(inputs: [Int32], targets: [Int32], lossMask: [Float]) {
            precondition(inputs.count == targets.count && inputs.count == lossMask.count)
            self.inputs = inputs; self.targets = targets; self.lossMask = lossMask
        }
    }

    /// Per family (pyvene-style table, Hugging Face tensor names): the prefix of layer `l`'s tensors and the modules
    /// that make each block kind. FFN in holds every matrix that reads the block's input (`gate_proj` + `up_proj`).
    static let blockTables: [(family: String, layerPrefix: (Int) -> String, kinds: [(kind: String, modules: [String])])] = [
        ("gpt2", { "transformer.h.\($0)." },
         [("attn_qkv", ["attn.c_attn"]), ("attn_out", ["attn.c_proj"]), ("ffn_in", ["mlp.c_fc"]), ("ffn_out", ["mlp.c_proj"])]),
        ("llama/qwen2", { "model.layers.\($0)." },
         [("attn_qkv", ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"]), ("attn_out", ["self_attn.o_proj"]),
          ("ffn_in", ["mlp.gate_proj", "mlp.up_proj"]), ("ffn_out", ["mlp.down_proj"])]),
    ]

    /// The blocks of any model whose tensors follow one of `blockTables`' families (GPT-2, Llama, Qwen2), read from its
    /// tensor names: per layer attention QKV, attention output, FFN in and FFN out, each with the weights and the
    /// biases the model has.
    public static func blocks(for model: any LanguageModel) throws -> [Block] {
        let names = Set(model.parameterTensors.map(\.name))
        for table in blockTables {
            let first = table.kinds[0].modules[0] + ".weight"
            let layers = (0...).prefix { names.contains(table.layerPrefix($0) + first) }.count
            guard layers > 0 else { continue }
            return (0..<layers).flatMap { l -> [Block] in
                let p = table.layerPrefix(l)
                return table.kinds.map { kind in
                    Block(layer: l, kind: kind.kind,
                          tensors: kind.modules.flatMap { [p + $0 + ".weight", p + $0 + ".bias"] }.filter(names.contains))
                }
            }
        }
        throw RuleLensError("probe ntk knows the parameter blocks of \(blockTables.map(\.family).joined(separator: " and ")), not of this \(model.architecture) model",
                            fix: "run probe ntk on a gpt2, llama or qwen2 checkpoint, or `rulelens grad` for every tensor's gradient")
    }

    /// Measures every block over `sequences` labelled by `rules`. `progress(done, total)` is called after each example.
    /// Needs ≥ 2 rules and at least one rule with ≥ 2 examples.
    public static func measure(model: any LanguageModel, sequences: [Sequence], rules: Labels,
                               progress: ((Int, Int) -> Void)? = nil) throws -> [BlockSimilarity] {
        precondition(sequences.count == rules.count, "one rule label per sequence")
        let blocks = try self.blocks(for: model)
        let tensors = Dictionary(model.parameterTensors.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let gradients = model.gradientStorage
        let spans = blocks.map { b in b.tensors.map { name -> (UnsafePointer<Float>, Int) in
            let t = tensors[name]!
            return (UnsafePointer(gradients.ptr + t.offset), t.count)
        } }
        return try measure(blocks: blocks, spans: spans, count: sequences.count, rules: rules, progress: progress) { e in
            let seq = sequences[e]
            model.zeroGrads()
            _ = model.forward(tokens: seq.inputs, batch: 1, seqLen: seq.inputs.count, hooks: nil)
            let loss = model.loss(targets: seq.targets, lossMask: seq.lossMask)
            guard loss.isFinite else {
                throw RuleLensError("example \(e + 1) has a non-finite loss (\(loss))", fix: "check the checkpoint (it may have diverged) and the example's loss mask")
            }
            model.backward()
        }
    }

    /// The measurement for any model: `gradient(e)` leaves example e's gradient where `spans` point (per block, the
    /// (pointer, count) of each of its tensors' gradients).
    public static func measure(blocks: [Block], spans: [[(UnsafePointer<Float>, Int)]], count: Int, rules: Labels,
                               progress: ((Int, Int) -> Void)? = nil, gradient: (Int) throws -> Void) throws -> [BlockSimilarity] {
        precondition(count == rules.count, "one rule label per example")
        try Analysis.requireClasses(rules, "rule label")
        guard rules.classSizes.contains(where: { $0 >= 2 }) else {
            throw RuleLensError("every rule has a single example, so there are no within-rule pairs", fix: "pass at least two examples of some rule (--max-per-rule ≥ 2)")
        }
        let k = rules.classCount
        let sizes = spans.map { $0.reduce(0) { $0 + $1.1 } }
        let sums = sizes.map { FloatBuffer(count: k * $0) }
        // Every example's unit gradient per block, for the kernel–label alignment (n × parameters floats in all).
        let unitBytes = count.multipliedSaturating(sizes.reduce(0, +)).multipliedSaturating(4)
        if let room = MemoryEstimate.available(), unitBytes > room {
            throw RuleLensError("the gradient kernel of \(count) examples keeps \(MemoryEstimate.format(unitBytes)) of unit gradients; \(MemoryEstimate.format(room)) is available",
                                fix: "measure fewer examples (--max-per-rule)")
        }
        let units = sizes.map { FloatMatrix(rows: count, cols: $0) }
        var counts = [[Int]](repeating: [Int](repeating: 0, count: k), count: blocks.count)

        for e in 0..<count {
            try gradient(e)
            let rule = rules.ids[e]
            for b in 0..<blocks.count {
                var sq = 0.0
                for (g, count) in spans[b] { for i in 0..<count { let v = Double(g[i]); sq += v * v } }
                guard sq > 0 else { continue }
                let scale = Float(1 / sq.squareRoot())
                var dst = sums[b].ptr + rule * sizes[b], unit = units[b].buffer.ptr + e * sizes[b]
                for (g, count) in spans[b] {
                    // Sᵣ += g / ‖g‖
                    BLAS.saxpy(n: count, alpha: scale, g, dst)
                    BLAS.saxpy(n: count, alpha: scale, g, unit)
                    dst += count; unit += count
                }
                counts[b][rule] += 1
            }
            progress?(e + 1, count)
        }

        let oneHot = FloatMatrix(rows: count, cols: k)
        for e in 0..<count { oneHot.buffer.ptr[e * k + rules.ids[e]] = 1 }
        return blocks.enumerated().map { b, block in
            let p = sizes[b], s = sums[b].ptr, n = counts[b]
            func dot(_ r: Int, _ q: Int) -> Double {
                var acc = 0.0
                let a = s + r * p, c = s + q * p
                for i in 0..<p { acc += Double(a[i]) * Double(c[i]) }
                return acc
            }
            var withinSum = 0.0, withinPairs = 0.0, betweenSum = 0.0, betweenPairs = 0.0
            for r in 0..<k {
                withinSum += dot(r, r) - Double(n[r]); withinPairs += Double(n[r]) * Double(n[r] - 1)
                for q in (r + 1)..<max(k, r + 1) { betweenSum += dot(r, q); betweenPairs += Double(n[r]) * Double(n[q]) }
            }
            let within = withinPairs > 0 ? withinSum / withinPairs : 0
            let between = betweenPairs > 0 ? betweenSum / betweenPairs : 0
            return BlockSimilarity(block: block.name, layer: block.layer, kind: block.kind, parameters: p, within: within,
                                   between: between, ratio: GradientKernel.ratio(within: within, between: between), difference: within - between,
                                   alignment: try? Analysis.linearCKA(units[b], oneHot, nameX: block.name, nameY: "rule"))
        }
    }
}
