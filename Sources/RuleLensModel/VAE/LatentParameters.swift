import RuleLensNumerics

/// The VAE's own tensors (latent heads, injection maps, classifier) in one contiguous buffer, nn.Linear layouts
/// ([out, in]), names as in `model.safetensors`:
///
/// | name | shape | |
/// |---|---|---|
/// | `latent.mu.weight`, `latent.mu.bias` | [k, d], [k] | μ = W·pooled + b |
/// | `latent.logvar.weight`, `latent.logvar.bias` | [k, d], [k] | log σ² = W·pooled + b |
/// | `latent.memory.weight` | [n_layer·d, k] | memory injection (bias-free, as Optimus); rows l·d..<(l+1)·d are layer l's |
/// | `latent.query.weight` | [n_layer·d, k] | query injection (bias-free) |
/// | `latent.embed.weight` | [d, k] | embedding injection (bias-free) |
/// | `latent.classifier.weight`, `latent.classifier.bias` | [C, k], [C] | supervision classifier on z |
///
/// The injection and classifier tensors exist only when their option is on.
public final class LatentParameters {
    public let storage: FloatBuffer
    public let tensors: [ParameterTensor]
    private let index: [String: Int]

    public static func layout(for c: VAEConfig) -> [ParameterTensor] {
        var out: [ParameterTensor] = []
        var offset = 0
        func add(_ name: String, _ shape: [Int]) {
            let t = ParameterTensor(name: name, shape: shape, offset: offset)
            offset += t.count
            out.append(t)
        }
        let (d, k, L) = (c.nEmbd, c.latentSize, c.nLayer)
        add("latent.mu.weight", [k, d]); add("latent.mu.bias", [k])
        add("latent.logvar.weight", [k, d]); add("latent.logvar.bias", [k])
        if c.inject.contains(.memory) { add("latent.memory.weight", [L * d, k]) }
        if c.inject.contains(.query) { add("latent.query.weight", [L * d, k]) }
        if c.inject.contains(.embedding) { add("latent.embed.weight", [d, k]) }
        if c.supervised { add("latent.classifier.weight", [c.nClasses, k]); add("latent.classifier.bias", [c.nClasses]) }
        return out
    }

    public init(config: VAEConfig) {
        let list = Self.layout(for: config)
        tensors = list
        storage = FloatBuffer(count: list.last.map { $0.offset + $0.count } ?? 0)
        var idx: [String: Int] = [:]
        for (i, t) in list.enumerated() { idx[t.name] = i }
        index = idx
    }

    public func tensor(_ name: String) -> ParameterTensor? { index[name].map { tensors[$0] } }

    /// Pointer to tensor `name`, nil if the configuration has no such tensor.
    public func pointer(_ name: String) -> UnsafeMutablePointer<Float>? { index[name].map { storage.ptr + tensors[$0].offset } }
}
