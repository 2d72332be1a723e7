import RuleLensNumerics

/// One named tensor inside a `GPTParameters` buffer: a view `storage.ptr + offset` of `count` floats.
public struct ParameterTensor: Equatable, Sendable {
    /// Hugging Face GPT-2 state-dict name, e.g. `transformer.h.0.attn.c_attn.weight`.
    public let name: String
    /// Hugging Face layout (Conv1D weights are [in, out]).
    public let shape: [Int]
    /// Offset in floats from the start of the storage.
    public let offset: Int
    /// Number of elements.
    public var count: Int { shape.reduce(1, *) }
}

/// Every parameter of a GPT-2 model in one contiguous, tightly packed `FloatBuffer`, in Hugging Face
/// GPT-2 state-dict order with HF names and layouts. The LM head is tied to `transformer.wte.weight`.
public final class GPTParameters {
    public let config: GPTConfig
    public let storage: FloatBuffer
    public let tensors: [ParameterTensor]
    private let index: [String: Int]
    /// Raw pointers to each block's tensors, so the hot path never looks names up.
    let layers: [LayerWeights]
    let wte: UnsafeMutablePointer<Float>   // [V, d]
    let wpe: UnsafeMutablePointer<Float>   // [nCtx, d]
    /// The LM head [V, d]: `wte` when tied, else `lm_head.weight`.
    let head: UnsafeMutablePointer<Float>
    let lnfWeight: UnsafeMutablePointer<Float>  // [d]
    let lnfBias: UnsafeMutablePointer<Float>    // [d]

    /// The tensor list (names, shapes, offsets) for a configuration, in HF order. `prefix` replaces `transformer.`
    /// (a VAE's encoder stack is `encoder.`). `extra` tensors (name, shape) follow the model's own, in the given order
    /// (a rule-prior model's `rule_prior.<site>.weight`), so the GPT-2 tensors keep their offsets.
    public static func layout(for c: GPTConfig, prefix: String = "transformer.", extra: [(name: String, shape: [Int])] = []) -> [ParameterTensor] {
        var out: [ParameterTensor] = []
        var offset = 0
        func add(_ name: String, _ shape: [Int]) {
            let t = ParameterTensor(name: name, shape: shape, offset: offset)
            offset += t.count
            out.append(t)
        }
        let d = c.dModel
        add(prefix + "wte.weight", [c.vocabSize, d])
        add(prefix + "wpe.weight", [c.nCtx, d])
        for l in 0..<c.nLayer {
            let p = prefix + "h.\(l)."
            add(p + "ln_1.weight", [d]); add(p + "ln_1.bias", [d])
            add(p + "attn.c_attn.weight", [d, 3 * d]); add(p + "attn.c_attn.bias", [3 * d])
            add(p + "attn.c_proj.weight", [d, d]); add(p + "attn.c_proj.bias", [d])
            add(p + "ln_2.weight", [d]); add(p + "ln_2.bias", [d])
            add(p + "mlp.c_fc.weight", [d, c.dMLP]); add(p + "mlp.c_fc.bias", [c.dMLP])
            add(p + "mlp.c_proj.weight", [c.dMLP, d]); add(p + "mlp.c_proj.bias", [d])
        }
        add(prefix + "ln_f.weight", [d]); add(prefix + "ln_f.bias", [d])
        if !c.tiedHead { add("lm_head.weight", [c.vocabSize, d]) }
        for t in extra { add(t.name, t.shape) }
        return out
    }

    /// Zero-filled parameters for `config` (call `config.validate()` first), tensor names under `prefix`, then `extra`.
    public init(config: GPTConfig, prefix: String = "transformer.", extra: [(name: String, shape: [Int])] = []) {
        self.config = config
        let list = Self.layout(for: config, prefix: prefix, extra: extra)
        let buffer = FloatBuffer(count: list.last.map { $0.offset + $0.count } ?? 0)
        tensors = list
        storage = buffer
        var idx: [String: Int] = [:]
        for (i, t) in list.enumerated() { idx[t.name] = i }
        index = idx
        let base = buffer.ptr
        func p(_ name: String) -> UnsafeMutablePointer<Float> { base + list[idx[name]!].offset }
        wte = p(prefix + "wte.weight"); wpe = p(prefix + "wpe.weight")
        head = config.tiedHead ? wte : p("lm_head.weight")
        lnfWeight = p(prefix + "ln_f.weight"); lnfBias = p(prefix + "ln_f.bias")
        layers = (0..<config.nLayer).map { l in
            let h = prefix + "h.\(l)."
            return LayerWeights(ln1Weight: p(h + "ln_1.weight"), ln1Bias: p(h + "ln_1.bias"),
                                qkvWeight: p(h + "attn.c_attn.weight"), qkvBias: p(h + "attn.c_attn.bias"),
                                attnProjWeight: p(h + "attn.c_proj.weight"), attnProjBias: p(h + "attn.c_proj.bias"),
                                ln2Weight: p(h + "ln_2.weight"), ln2Bias: p(h + "ln_2.bias"),
                                fcWeight: p(h + "mlp.c_fc.weight"), fcBias: p(h + "mlp.c_fc.bias"),
                                mlpProjWeight: p(h + "mlp.c_proj.weight"), mlpProjBias: p(h + "mlp.c_proj.bias"))
        }
    }

    /// The tensor called `name`, or nil if there is none.
    public func tensor(_ name: String) -> ParameterTensor? { index[name].map { tensors[$0] } }

    /// Pointer to the first element of tensor `name`. Precondition: the name exists.
    public func pointer(_ name: String) -> UnsafeMutablePointer<Float> {
        guard let i = index[name] else { preconditionFailure("no parameter tensor named \(name)") }
        return storage.ptr + tensors[i].offset
    }

    /// The values of tensor `name` as an array (nil if there is none).
    public func values(_ name: String) -> [Float]? {
        guard let t = tensor(name) else { return nil }
        return Array(UnsafeBufferPointer(start: storage.ptr + t.offset, count: t.count))
    }
}

/// Pointers to one transformer block's tensors (HF layouts, shapes in comments).
struct LayerWeights {
    let ln1Weight: UnsafeMutablePointer<Float>       // [d]
    let ln1Bias: UnsafeMutablePointer<Float>         // [d]
    let qkvWeight: UnsafeMutablePointer<Float>       // [d, 3d]  c_attn
    let qkvBias: UnsafeMutablePointer<Float>         // [3d]
    let attnProjWeight: UnsafeMutablePointer<Float>  // [d, d]   attn.c_proj
    let attnProjBias: UnsafeMutablePointer<Float>    // [d]
    let ln2Weight: UnsafeMutablePointer<Float>       // [d]
    let ln2Bias: UnsafeMutablePointer<Float>         // [d]
    let fcWeight: UnsafeMutablePointer<Float>        // [d, dMLP] c_fc
    let fcBias: UnsafeMutablePointer<Float>          // [dMLP]
    let mlpProjWeight: UnsafeMutablePointer<Float>   // [dMLP, d] mlp.c_proj
    let mlpProjBias: UnsafeMutablePointer<Float>     // [d]
}
