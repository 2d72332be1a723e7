import RuleLensNumerics

/// The hook sites of a GPT-2 forward pass, named exactly as TransformerLens names them.
///
/// | site | shape |
/// |---|---|
/// | `hook_embed`, `hook_pos_embed` | [batch, pos, d_model] |
/// | `blocks.{l}.hook_resid_pre/_mid/_post`, `hook_attn_out`, `hook_mlp_out` | [batch, pos, d_model] |
/// | `blocks.{l}.ln1.hook_normalized`, `ln2.hook_normalized` (before weight/bias) | [batch, pos, d_model] |
/// | `blocks.{l}.attn.hook_q/_k/_v/_z` | [batch, pos, head, d_head] |
/// | `blocks.{l}.attn.hook_attn_scores/_pattern` | [batch, head, q_pos, k_pos] |
/// | `blocks.{l}.mlp.hook_pre/_post` | [batch, pos, d_mlp] |
/// | `ln_final.hook_normalized` | [batch, pos, d_model] |
/// | `unembed.hook_out` (logits) | [batch, pos, d_vocab] |
///
/// `hook_attn_scores` are scaled by 1/√d_head with masked (future) entries set to −∞, as in TransformerLens.
public enum HookSites {
    /// Per-block site suffixes in forward order.
    static let blockSuffixes = [
        "hook_resid_pre", "ln1.hook_normalized",
        "attn.hook_q", "attn.hook_k", "attn.hook_v", "attn.hook_attn_scores", "attn.hook_pattern", "attn.hook_z",
        "hook_attn_out", "hook_resid_mid", "ln2.hook_normalized",
        "mlp.hook_pre", "mlp.hook_post", "hook_mlp_out", "hook_resid_post",
    ]

    /// Every site for `config`, in the order the forward pass reaches them. A wiring adds its prefix (a VAE encoder's
    /// `encoder.`) and its injection sites (`hook_latent_embed`, `blocks.{l}.attn.hook_q_inject`/`hook_k_inject`/
    /// `hook_v_inject`/`hook_mem_kv`, each [batch, d_model]); an encoder has no `unembed.hook_out`.
    public static func names(for config: GPTConfig, wiring: GPTWiring = .standard) -> [String] {
        let p = wiring.hookPrefix, inj = wiring.injections
        var out = [p + "hook_embed", p + "hook_pos_embed"]
        if inj.contains(.embedding) { out.append(p + "hook_latent_embed") }
        for l in 0..<config.nLayer {
            for suffix in blockSuffixes {
                out.append("\(p)blocks.\(l).\(suffix)")
                if suffix == "ln1.hook_normalized" {
                    for (injection, name) in [(Injection.query, "attn.hook_q_inject"), (.key, "attn.hook_k_inject"),
                                              (.value, "attn.hook_v_inject")] where inj.contains(injection) {
                        out.append("\(p)blocks.\(l).\(name)")
                    }
                }
                if suffix == "attn.hook_v" && inj.contains(.memory) { out.append("\(p)blocks.\(l).attn.hook_mem_kv") }
            }
        }
        out.append(p + "ln_final.hook_normalized")
        if wiring.hookPrefix.isEmpty { out.append("unembed.hook_out") }
        return out
    }

    /// The site's name with its stack and block prefixes removed (`blocks.3.attn.hook_q` → `attn.hook_q`,
    /// `encoder.blocks.0.hook_resid_post` → `hook_resid_post`, `encoder.hook_embed` → `hook_embed`).
    static func suffix(of name: String) -> String {
        var name = Substring(name)
        if name.hasPrefix("encoder.") { name = name.dropFirst("encoder.".count) }
        guard name.hasPrefix("blocks.") else { return String(name) }
        let rest = name.dropFirst("blocks.".count)
        guard let dot = rest.firstIndex(of: ".") else { return String(name) }
        return String(rest[rest.index(after: dot)...])
    }

    /// Dimension names of a site, batch first, e.g. ["batch", "pos", "d_model"] (empty for an unknown name).
    public static func dims(of name: String) -> [String] {
        switch suffix(of: name) {
        case "attn.hook_q", "attn.hook_k", "attn.hook_v", "attn.hook_z": return ["batch", "pos", "head", "d_head"]
        case "attn.hook_attn_scores", "attn.hook_pattern": return ["batch", "head", "q_pos", "k_pos"]
        case "mlp.hook_pre", "mlp.hook_post": return ["batch", "pos", "d_mlp"]
        // Llama/Qwen2-family sites (`LlamaHookSites`; there k/v/rot_k's head axis counts key/value heads).
        case "attn.hook_rot_q", "attn.hook_rot_k": return ["batch", "pos", "head", "d_head"]
        case "mlp.hook_pre_linear": return ["batch", "pos", "d_mlp"]
        case "ln1.hook_scale", "ln2.hook_scale", "ln_final.hook_scale": return ["batch", "pos", "one"]
        case "unembed.hook_out": return ["batch", "pos", "d_vocab"]
        case "attn.hook_q_inject", "attn.hook_k_inject", "attn.hook_v_inject", "attn.hook_mem_kv", "hook_latent_embed":
            return ["batch", "d_model"]
        case "hook_embed", "hook_pos_embed", "hook_resid_pre", "hook_resid_mid", "hook_resid_post", "hook_attn_out",
             "hook_mlp_out", "ln1.hook_normalized", "ln2.hook_normalized", "ln_final.hook_normalized":
            return ["batch", "pos", "d_model"]
        default: return []
        }
    }

    /// Full shape of a site's values for one forward pass (batch first); empty for an unknown name.
    /// With memory injection (`wiring`) attention rows have one more key: the memory slot, first.
    public static func shape(of name: String, config c: GPTConfig, batch: Int, seqLen: Int, wiring: GPTWiring = .standard) -> [Int] {
        dims(of: name).map { dim in
            switch dim {
            case "batch": return batch
            case "pos", "q_pos": return seqLen
            case "k_pos": return seqLen + wiring.prefixSlots
            case "head": return c.nHead
            case "d_head": return c.dHead
            case "d_mlp": return c.dMLP
            case "d_vocab": return c.vocabSize
            default: return c.dModel
            }
        }
    }

    /// Expands names and glob patterns (`*` matches any run of characters; `*` alone is every site) into
    /// site names in forward order, without duplicates. A name or pattern that matches nothing throws a
    /// `RuleLensError` naming the closest valid site and listing every valid one.
    public static func resolve(_ patterns: [String], config: GPTConfig) throws -> [String] {
        try resolve(patterns, sites: names(for: config), modelDescription: "this \(config.nLayer)-layer model")
    }

    /// `resolve` against any model's site list (`LanguageModel.hookSites`).
    public static func resolve(_ patterns: [String], sites all: [String], modelDescription: String = "this model") throws -> [String] {
        var chosen = Set<String>()
        for pattern in patterns {
            let matches = all.filter { glob(pattern, matches: $0) }
            guard !matches.isEmpty else {
                let closest = all.min { editDistance(pattern, $0) < editDistance(pattern, $1) } ?? ""
                throw RuleLensError(
                    "unknown hook site '\(pattern)' (closest match: '\(closest)'); \(modelDescription)'s sites are: "
                        + all.joined(separator: ", "),
                    fix: "use one of the names above or a glob pattern such as 'blocks.*.hook_mlp_out', 'blocks.0.attn.*' or '*'")
            }
            chosen.formUnion(matches)
        }
        return all.filter { chosen.contains($0) }
    }

    /// Whether `name` matches `pattern`, where `*` matches any (possibly empty) run of characters.
    public static func glob(_ pattern: String, matches name: String) -> Bool {
        if !pattern.contains("*") { return pattern == name }
        let p = Array(pattern.utf8), s = Array(name.utf8)
        var pi = 0, si = 0, star = -1, mark = 0
        while si < s.count {
            if pi < p.count && p[pi] != UInt8(ascii: "*") && p[pi] == s[si] { pi += 1; si += 1 }
            else if pi < p.count && p[pi] == UInt8(ascii: "*") { star = pi; mark = si; pi += 1 }
            else if star >= 0 { pi = star + 1; mark += 1; si = mark }
            else { return false }
        }
        while pi < p.count && p[pi] == UInt8(ascii: "*") { pi += 1 }
        return pi == p.count
    }

    /// Levenshtein distance (for "closest match" suggestions).
    static func editDistance(_ a: String, _ b: String) -> Int {
        let x = Array(a.utf8), y = Array(b.utf8)
        if x.isEmpty { return y.count }
        if y.isEmpty { return x.count }
        var previous = Array(0...y.count), current = [Int](repeating: 0, count: y.count + 1)
        for i in 1...x.count {
            current[0] = i
            for j in 1...y.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
            }
            swap(&previous, &current)
        }
        return previous[y.count]
    }
}

/// The model-level site names of one stack (prefixed for a VAE's encoder).
struct RootSiteNames {
    let embed, posEmbed, latentEmbed, lnFinal, unembed: String
    init(prefix: String = "") {
        embed = prefix + "hook_embed"; posEmbed = prefix + "hook_pos_embed"; latentEmbed = prefix + "hook_latent_embed"
        lnFinal = prefix + "ln_final.hook_normalized"; unembed = prefix + "unembed.hook_out"
    }
}

/// One block's site names, built once per model so the forward pass never formats strings.
struct BlockSiteNames {
    let residPre, ln1Normalized, q, k, v, attnScores, pattern, z, attnOut, residMid, ln2Normalized, mlpPre, mlpPost, mlpOut, residPost: String
    let qInject, kInject, vInject, memKV: String
    init(layer l: Int, prefix: String = "") {
        let p = "\(prefix)blocks.\(l)."
        qInject = p + "attn.hook_q_inject"; kInject = p + "attn.hook_k_inject"; vInject = p + "attn.hook_v_inject"
        memKV = p + "attn.hook_mem_kv"
        residPre = p + "hook_resid_pre"; ln1Normalized = p + "ln1.hook_normalized"
        q = p + "attn.hook_q"; k = p + "attn.hook_k"; v = p + "attn.hook_v"
        attnScores = p + "attn.hook_attn_scores"; pattern = p + "attn.hook_pattern"; z = p + "attn.hook_z"
        attnOut = p + "hook_attn_out"; residMid = p + "hook_resid_mid"; ln2Normalized = p + "ln2.hook_normalized"
        mlpPre = p + "mlp.hook_pre"; mlpPost = p + "mlp.hook_post"; mlpOut = p + "hook_mlp_out"; residPost = p + "hook_resid_post"
    }
}
