import RuleLensNumerics

/// Every parameter of a Llama/Qwen2-family model in one contiguous `FloatBuffer`, under Hugging Face's names and
/// layouts (`nn.Linear` weights [out, in]), in state-dict order. A tied LM head is `model.embed_tokens.weight`
/// (no `lm_head.weight` tensor); an untied one is `lm_head.weight` [vocab, d_model].
public final class LlamaParameters {
    public let config: LlamaConfig
    public let storage: FloatBuffer
    public let tensors: [ParameterTensor]
    private let index: [String: Int]
    let layers: [LlamaLayerWeights]
    let embed: UnsafeMutablePointer<Float>    // [V, d]
    let norm: UnsafeMutablePointer<Float>     // [d]
    /// The LM head [V, d]: `embed` when tied.
    let head: UnsafeMutablePointer<Float>

    /// The tensor list (names, shapes, offsets) for a configuration, in HF order.
    public static func layout(for c: LlamaConfig) -> [ParameterTensor] {
        var out: [ParameterTensor] = []
        var offset = 0
        func add(_ name: String, _ shape: [Int]) {
            out.append(ParameterTensor(name: name, shape: shape, offset: offset))
            offset += shape.reduce(1, *)
        }
        let d = c.dModel
        add("model.embed_tokens.weight", [c.vocabSize, d])
        for l in 0..<c.nLayer {
            let p = "model.layers.\(l)."
            add(p + "input_layernorm.weight", [d])
            for (name, width) in [("q_proj", c.qWidth), ("k_proj", c.kvWidth), ("v_proj", c.kvWidth)] {
                add(p + "self_attn.\(name).weight", [width, d])
                if c.qkvBias { add(p + "self_attn.\(name).bias", [width]) }
            }
            add(p + "self_attn.o_proj.weight", [d, c.qWidth])
            if c.outputBias { add(p + "self_attn.o_proj.bias", [d]) }
            add(p + "post_attention_layernorm.weight", [d])
            for (name, outDim, inDim) in [("gate_proj", c.dMLP, d), ("up_proj", c.dMLP, d), ("down_proj", d, c.dMLP)] {
                add(p + "mlp.\(name).weight", [outDim, inDim])
                if c.mlpBias { add(p + "mlp.\(name).bias", [outDim]) }
            }
        }
        add("model.norm.weight", [d])
        if !c.tiedEmbeddings { add("lm_head.weight", [c.vocabSize, d]) }
        return out
    }

    /// Zero-filled parameters for `config` (call `config.validate()` first).
    public init(config: LlamaConfig) {
        self.config = config
        let list = Self.layout(for: config)
        let buffer = FloatBuffer(count: list.last.map { $0.offset + $0.count } ?? 0)
        tensors = list
        storage = buffer
        var idx: [String: Int] = [:]
        for (i, t) in list.enumerated() { idx[t.name] = i }
        index = idx
        let base = buffer.ptr
        func p(_ name: String) -> UnsafeMutablePointer<Float> { base + list[idx[name]!].offset }
        func optional(_ name: String) -> UnsafeMutablePointer<Float>? { idx[name].map { base + list[$0].offset } }
        embed = p("model.embed_tokens.weight")
        norm = p("model.norm.weight")
        head = config.tiedEmbeddings ? embed : p("lm_head.weight")
        layers = (0..<config.nLayer).map { l in
            let h = "model.layers.\(l)."
            return LlamaLayerWeights(
                ln1: p(h + "input_layernorm.weight"),
                q: p(h + "self_attn.q_proj.weight"), qBias: optional(h + "self_attn.q_proj.bias"),
                k: p(h + "self_attn.k_proj.weight"), kBias: optional(h + "self_attn.k_proj.bias"),
                v: p(h + "self_attn.v_proj.weight"), vBias: optional(h + "self_attn.v_proj.bias"),
                o: p(h + "self_attn.o_proj.weight"), oBias: optional(h + "self_attn.o_proj.bias"),
                ln2: p(h + "post_attention_layernorm.weight"),
                gate: p(h + "mlp.gate_proj.weight"), gateBias: optional(h + "mlp.gate_proj.bias"),
                up: p(h + "mlp.up_proj.weight"), upBias: optional(h + "mlp.up_proj.bias"),
                down: p(h + "mlp.down_proj.weight"), downBias: optional(h + "mlp.down_proj.bias"))
        }
    }

    /// The tensor called `name`, or nil.
    public func tensor(_ name: String) -> ParameterTensor? { index[name].map { tensors[$0] } }

    /// Pointer to the first element of tensor `name`. Precondition: the name exists.
    public func pointer(_ name: String) -> UnsafeMutablePointer<Float> {
        guard let t = tensor(name) else { preconditionFailure("no parameter tensor named \(name)") }
        return storage.ptr + t.offset
    }

    /// The values of tensor `name` (nil if there is none).
    public func values(_ name: String) -> [Float]? {
        guard let t = tensor(name) else { return nil }
        return Array(UnsafeBufferPointer(start: storage.ptr + t.offset, count: t.count))
    }
}

/// Pointers to one block's tensors (HF nn.Linear layouts [out, in]; biases nil where the config has none).
struct LlamaLayerWeights {
    let ln1: UnsafeMutablePointer<Float>                                   // [d]       input_layernorm
    let q: UnsafeMutablePointer<Float>, qBias: UnsafeMutablePointer<Float>?   // [H·dh, d], [H·dh]
    let k: UnsafeMutablePointer<Float>, kBias: UnsafeMutablePointer<Float>?   // [Hkv·dh, d]
    let v: UnsafeMutablePointer<Float>, vBias: UnsafeMutablePointer<Float>?   // [Hkv·dh, d]
    let o: UnsafeMutablePointer<Float>, oBias: UnsafeMutablePointer<Float>?   // [d, H·dh]
    let ln2: UnsafeMutablePointer<Float>                                   // [d]       post_attention_layernorm
    let gate: UnsafeMutablePointer<Float>, gateBias: UnsafeMutablePointer<Float>?  // [dMLP, d]
    let up: UnsafeMutablePointer<Float>, upBias: UnsafeMutablePointer<Float>?      // [dMLP, d]
    let down: UnsafeMutablePointer<Float>, downBias: UnsafeMutablePointer<Float>?  // [d, dMLP]
}
