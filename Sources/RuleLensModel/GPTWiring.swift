import RuleLensNumerics

/// Where a per-example vector (a VAE's latent, a rule prior) enters a GPT-2 stack.
public enum Injection: String, CaseIterable, Codable, Sendable {
    /// One extra key/value slot per layer at position 0 that every position attends to; the vector is used as both the
    /// key and the value (not passed through W_K/W_V; heads split as usual) — Optimus's "memory".
    case memory
    /// Added to the queries (keys, values) of every position after the fused QKV projection, before the heads split.
    case query, key, value
    /// Added to every token embedding (after the position embedding).
    case embedding
}

/// How a GPT-2 stack is wired when it is more than a plain causal LM: the VAE's encoder is bidirectional and has its own
/// name prefixes; the VAE's decoder and rule-prior models accept injected vectors. The default is GPT-2 exactly.
public struct GPTWiring: Equatable, Sendable {
    /// Causal self-attention (a decoder) or bidirectional with padding masked by `keyLengths` (an encoder).
    public var causal: Bool
    /// Prefix of every hook site name: "" for a model's own stack, "encoder." for a VAE's encoder.
    public var hookPrefix: String
    /// Prefix of every tensor name: "transformer." (Hugging Face GPT-2) or "encoder." for a VAE's encoder.
    public var tensorPrefix: String
    /// The injections the forward pass accepts through `Conditioning`; each adds its hook sites.
    public var injections: Set<Injection>

    public init(causal: Bool = true, hookPrefix: String = "", tensorPrefix: String = "transformer.", injections: Set<Injection> = []) {
        self.causal = causal; self.hookPrefix = hookPrefix; self.tensorPrefix = tensorPrefix; self.injections = injections
    }

    /// GPT-2 exactly.
    public static let standard = GPTWiring()

    /// Extra key/value slots per attention call (1 with memory injection).
    var prefixSlots: Int { injections.contains(.memory) ? 1 : 0 }
}

/// Per-example vectors injected into one forward pass; only the wiring's injections are read, each must be set.
/// The pointers must stay valid until the matching `backward`.
public struct Conditioning {
    /// [L, B, d]: layer l's memory slot for example b (key = value).
    public var memory: UnsafePointer<Float>?
    /// [L, B, d] each: added to layer l's Q / K / V at every position of example b.
    public var query: UnsafePointer<Float>?
    public var key: UnsafePointer<Float>?
    public var value: UnsafePointer<Float>?
    /// [B, d]: added to every token embedding of example b.
    public var embedding: UnsafePointer<Float>?
    public init(memory: UnsafePointer<Float>? = nil, query: UnsafePointer<Float>? = nil, key: UnsafePointer<Float>? = nil,
                value: UnsafePointer<Float>? = nil, embedding: UnsafePointer<Float>? = nil) {
        self.memory = memory; self.query = query; self.key = key; self.value = value; self.embedding = embedding
    }

    /// The conditioning with `vector` at `injection` (the other sites unset).
    public init(_ injection: Injection, _ vector: UnsafePointer<Float>) {
        self.init()
        switch injection {
        case .memory: memory = vector
        case .query: query = vector
        case .key: key = vector
        case .value: value = vector
        case .embedding: embedding = vector
        }
    }

    /// Lays per-example rows out as the wiring reads them: a per-layer injection's row [L·d] (layer-major) goes to
    /// [L, B, d], an embedding's row [d] to [B, d]. `row(b)` is example b's row.
    public static func layout(rows row: (Int) -> UnsafePointer<Float>, batch B: Int, layers L: Int, dModel d: Int,
                              perLayer: Bool, into out: UnsafeMutablePointer<Float>) {
        for b in 0..<B {
            let v = row(b)
            if perLayer {
                for l in 0..<L { (out + (l * B + b) * d).update(from: v + l * d, count: d) }
            } else {
                (out + b * d).update(from: v, count: d)
            }
        }
    }

    func vector(_ injection: Injection) -> UnsafePointer<Float>? {
        switch injection {
        case .memory: return memory
        case .query: return query
        case .key: return key
        case .value: return value
        case .embedding: return embedding
        }
    }
}

/// Gradients of the loss with respect to a `Conditioning`'s vectors, same shapes; `backward` accumulates (+=) into
/// every one that is set.
public struct ConditioningGradients {
    public var memory: UnsafeMutablePointer<Float>?
    public var query: UnsafeMutablePointer<Float>?
    public var key: UnsafeMutablePointer<Float>?
    public var value: UnsafeMutablePointer<Float>?
    public var embedding: UnsafeMutablePointer<Float>?
    public init(memory: UnsafeMutablePointer<Float>? = nil, query: UnsafeMutablePointer<Float>? = nil, key: UnsafeMutablePointer<Float>? = nil,
                value: UnsafeMutablePointer<Float>? = nil, embedding: UnsafeMutablePointer<Float>? = nil) {
        self.memory = memory; self.query = query; self.key = key; self.value = value; self.embedding = embedding
    }

    /// The gradient slot of `injection` set to `pointer` (the others unset).
    public init(_ injection: Injection, _ pointer: UnsafeMutablePointer<Float>) {
        self.init()
        switch injection {
        case .memory: memory = pointer
        case .query: query = pointer
        case .key: key = pointer
        case .value: value = pointer
        case .embedding: embedding = pointer
        }
    }
}
