import Foundation
import RuleLensAnalysis
import RuleLensModel
import RuleLensNumerics
import RuleLensTasks

/// Where a training-free rule prior is added: the queries, keys or values of one layer (TransformerLens's
/// `blocks.{l}.attn.hook_q` / `hook_k` / `hook_v`, [batch, pos, head, d_head] = one d_model vector per position).
public enum PriorSite: String, Sendable, CaseIterable, Codable {
    case q, k, v
    public func hook(layer: Int) -> String { "blocks.\(layer).attn.hook_\(rawValue)" }
}

/// One measured condition of the retrieval test.
public struct RetrievalCondition: Sendable, Hashable, Codable {
    /// `none` (no prior), `prior` (the example's own rule), `wrong-prior` (another rule's), `random` (a random vector
    /// of the prior's norm).
    public var kind: String
    public var site: PriorSite
    public var layer: Int
    public var alpha: Float
    /// A label of its own (the trained-prior conditions: `prior (query)`, `prior moved to key`, …); nil: from the fields.
    public var name: String? = nil
    /// The site a trained prior was moved to (the `moved` conditions of a rule-prior model); nil otherwise.
    public var movedTo: String? = nil
    public var label: String { name ?? (kind == "none" ? "none" : "\(kind) \(site.rawValue)@\(layer) α=\(alpha)") }

    public init(kind: String, site: PriorSite, layer: Int, alpha: Float, name: String? = nil, movedTo: String? = nil) {
        self.kind = kind
        self.site = site
        self.layer = layer
        self.alpha = alpha
        self.name = name
        self.movedTo = movedTo
    }
}

/// What one example shows under one condition.
public struct RetrievalExample: Sendable {
    /// Greedy decoding would reproduce the target and eos exactly (teacher-forced argmax right at every target position:
    /// the same event, computed without decoding).
    public var exact: Double
    /// Share of target tokens (and eos) whose teacher-forced argmax is right.
    public var tokenAccuracy: Double
    /// Per layer and head ([layer · H + head]): attention mass from each target position onto its source keys, mean over
    /// the target characters that have sources; the best source key's rank among the visible keys (1 = most attended);
    /// the attention entropy (nats) of those query rows. NaN when the example has no sourced target character.
    public var mass: [Double], rank: [Double], entropy: [Double]

    public init(exact: Double, tokenAccuracy: Double, mass: [Double], rank: [Double], entropy: [Double]) {
        self.exact = exact
        self.tokenAccuracy = tokenAccuracy
        self.mass = mass
        self.rank = rank
        self.entropy = entropy
    }
}

/// The key–query–value retrieval test (study 2's second finding) on a GPT: does adding a rule prior to the queries
/// raise the attention mass that lands on the right keys — the prompt positions each target character is read from
/// (`Example.sources`) — and the accuracy of what is retrieved, against no prior, a wrong rule's prior, a random
/// vector of equal norm, and the same prior in K or V?
///
/// The training-free prior of rule r at layer l and site s is Δᵣ = mean(site values over every real position of the
/// examples of rule r) − mean(over all examples' positions); a condition adds α·Δ to every position of each example.
public enum Retrieval {
    /// The sequences the test reads: `[bos] + prompt + target + [eos]` (teacher-forced), and each target character's
    /// source keys as token positions (prompt character j is token j + 1).
    public struct Item: Sendable {
        public let tokens: TokenizedExample
        /// Per target character i (query position promptLength − 1 + i): its source key token positions.
        public let keys: [[Int]]

        public init(tokens: TokenizedExample, keys: [[Int]]) {
            self.tokens = tokens
            self.keys = keys
        }
    }

    /// Δᵣ for every class of `labels` at `site` of `layer`: [classes][width], the width of one position of the site
    /// (d_model for queries; n_kv_heads × d_head for keys and values of a grouped-query model). Means run over every
    /// real input position. Any family that fires TransformerLens's `attn.hook_q/k/v` sites.
    public static func priors(model: any LanguageModel, items: [Item], labels: Labels, site: PriorSite, layer: Int, batchSize: Int = 32) -> [[Float]] {
        let d = width(model, site, layer), R = labels.classCount
        var sums = [[Double]](repeating: [Double](repeating: 0, count: d), count: R), counts = [Int](repeating: 0, count: R)
        var rows: [Int] = []
        let hooks = HookSet()
        hooks.observe([site.hook(layer: layer)]) { _, values, shape in
            let T = shape[1]
            for (row, i) in rows.enumerated() {
                let r = labels.ids[i]
                for t in 0..<items[i].tokens.inputLength {
                    let v = values + (row * T + t) * d
                    for c in 0..<d { sums[r][c] += Double(v[c]) }
                }
                counts[r] += items[i].tokens.inputLength
            }
        }
        let retained = model.retainsActivationsForBackward
        model.retainsActivationsForBackward = false
        defer { model.retainsActivationsForBackward = retained }
        forEachBatch(items: items, batchSize: batchSize, hooks: hooks, forward: { tokens, B, T, hooks, _ in
            model.forward(tokens: tokens, batch: B, seqLen: T, hooks: hooks)
        }, willRun: { rows = $0 }) { _, _ in }
        let total = sums.indices.reduce(into: [Double](repeating: 0, count: d)) { acc, r in for c in 0..<d { acc[c] += sums[r][c] } }
        let n = Double(counts.reduce(0, +))
        return (0..<R).map { r in (0..<d).map { c in Float(sums[r][c] / Double(max(1, counts[r])) - total[c] / n) } }
    }

    /// A random direction per class with exactly the norm of that class's prior (Gaussian, seeded by (seed, class)).
    public static func randomLike(_ priors: [[Float]], seed: UInt64) -> [[Float]] {
        priors.enumerated().map { r, prior in
            var rng = SeededRNG(seed: seed, stream: "retrieval.random.\(r)")
            let g = prior.map { _ in Double(rng.normal()) }
            let gNorm = g.reduce(0) { $0 + $1 * $1 }.squareRoot(), pNorm = prior.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
            return g.map { Float($0 * pNorm / max(gNorm, 1e-30)) }
        }
    }

    /// Runs the examples with `vectors[i]` (one position's width of `site`, or nil for none) scaled by `alpha` added to
    /// every position of `site` at `layer`, and measures every example. `vectors` nil = no edit at all (the `none`
    /// condition). Any family whose forward pass fires `attn.hook_q/k/v` and `attn.hook_pattern`.
    public static func measure(model: any LanguageModel, items: [Item], vectors: [[Float]]?, alpha: Float, site: PriorSite, layer: Int,
                               batchSize: Int = 32) -> [RetrievalExample] {
        let (hooks, willRun) = addition(model: model, vectors: vectors, alpha: alpha, site: site, layer: layer)
        return measure(model, items: items, batchSize: batchSize, hooks: hooks, willRun: willRun) { tokens, B, T, hooks, _ in
            model.forward(tokens: tokens, batch: B, seqLen: T, hooks: hooks)
        }
    }

    /// The measurement on a GPT wired with an injection (`GPTWiring`): its vectors come from `conditioning(example
    /// indices)`, flattened in the `Conditioning` layout of its injection ([layer, batch, d_model], or [batch, d_model]
    /// for the embedding). With a memory slot, attention rows have one more key (the slot, first): it counts in the
    /// rank and entropy.
    public static func measure(model: GPT, items: [Item], batchSize: Int = 32, conditioning: @escaping ([Int]) -> [Float]) -> [RetrievalExample] {
        measure(model, items: items, batchSize: batchSize, hooks: HookSet(), willRun: { _ in }) { tokens, B, T, hooks, indices in
            guard let injection = model.wiring.injections.first else { return model.forward(tokens: tokens, batch: B, seqLen: T, hooks: hooks) }
            precondition(model.wiring.injections.count == 1, "retrieval: one injection")
            let vectors = conditioning(indices)
            return vectors.withUnsafeBufferPointer { v in
                model.forward(tokens: tokens, batch: B, seqLen: T, hooks: hooks, conditioning: Conditioning(injection, v.baseAddress!))
            }
        }
    }

    /// Width of one position of `site` at `layer` (the product of the site's dimensions after batch and position).
    static func width(_ model: any LanguageModel, _ site: PriorSite, _ layer: Int) -> Int {
        model.hookShape(site.hook(layer: layer), batch: 1, seqLen: 1).dropFirst(2).reduce(1, *)
    }

    /// An editor adding `alpha · vectors[example]` at every position of the site; `willRun` tells it the batch's rows.
    static func addition(model: any LanguageModel, vectors: [[Float]]?, alpha: Float, site: PriorSite, layer: Int) -> (HookSet, ([Int]) -> Void) {
        let hooks = HookSet()
        var rows: [Int] = []
        if let vectors {
            let d = width(model, site, layer)
            hooks.edit([site.hook(layer: layer)]) { _, values, shape in
                let T = shape[1]
                for (row, i) in rows.enumerated() {
                    let v = vectors[i]
                    for t in 0..<T {
                        let x = values + (row * T + t) * d
                        for c in 0..<d { x[c] += alpha * v[c] }
                    }
                }
            }
        }
        return (hooks, { rows = $0 })
    }

    /// `measure(layers:heads:vocab:…)` with the layers, heads and vocabulary read from the model's hook sites, run
    /// without keeping activations for backward.
    static func measure(_ model: any LanguageModel, items: [Item], batchSize: Int, hooks: HookSet, willRun: @escaping ([Int]) -> Void,
                        forward: ([Int32], Int, Int, HookSet, [Int]) -> UnsafeMutablePointer<Float>) -> [RetrievalExample] {
        let sites = Set(model.hookSites)
        let layers = (0...).prefix { sites.contains("blocks.\($0).attn.hook_pattern") }.count
        let heads = layers > 0 ? model.hookShape("blocks.0.attn.hook_pattern", batch: 1, seqLen: 1)[1] : 0
        let retained = model.retainsActivationsForBackward
        model.retainsActivationsForBackward = false
        defer { model.retainsActivationsForBackward = retained }
        return measure(layers: layers, heads: heads, vocab: model.vocabSize, items: items, batchSize: batchSize, hooks: hooks,
                       willRun: willRun, forward: forward)
    }

    /// The measurement on any model: `forward(tokens [B·T], B, T, hooks, example indices)` runs one right-padded
    /// teacher-forced batch with `hooks` and returns its logits [B, T, vocab] (valid until the next call); the
    /// decoder's attention patterns (`blocks.{l}.attn.hook_pattern`, [B, H, T, P + T]) are read as they pass.
    /// `hooks` may carry the caller's own edits; `willRun(indices)` is called before each batch.
    public static func measure(layers L: Int, heads H: Int, vocab V: Int, items: [Item], batchSize: Int = 32, hooks: HookSet = HookSet(),
                               willRun callerWillRun: @escaping ([Int]) -> Void = { _ in },
                               forward: ([Int32], Int, Int, HookSet, [Int]) -> UnsafeMutablePointer<Float>) -> [RetrievalExample] {
        var out = [RetrievalExample?](repeating: nil, count: items.count)
        var rows: [Int] = []
        // Attention metrics, computed while each layer's pattern is live (nothing is cached).
        var mass = [[Double]](), rank = [[Double]](), entropy = [[Double]]()
        let patternSites = (0..<L).map { "blocks.\($0).attn.hook_pattern" }
        let layerOf = Dictionary(uniqueKeysWithValues: patternSites.enumerated().map { ($1, $0) })
        hooks.observe(patternSites) { name, pattern, shape in
            let l = layerOf[name]!, T = shape[2], K = shape[3], P = K - T   // P: memory slots before the positions
            for (row, i) in rows.enumerated() {
                let item = items[i]
                for h in 0..<H {
                    var m = 0.0, rk = 0.0, en = 0.0, n = 0
                    for (c, keys) in item.keys.enumerated() where !keys.isEmpty {
                        let q = item.tokens.promptLength - 1 + c
                        let p = pattern + ((row * H + h) * T + q) * K
                        var best = -1.0, sum = 0.0, ent = 0.0
                        for j in keys { sum += Double(p[P + j]); best = max(best, Double(p[P + j])) }
                        var above = 0
                        for k in 0..<(P + q + 1) {
                            let pk = Double(p[k])
                            if pk > best { above += 1 }
                            if pk > 0 { ent -= pk * log(pk) }
                        }
                        m += sum; rk += Double(1 + above); en += ent; n += 1
                    }
                    let idx = l * H + h
                    mass[row][idx] = n > 0 ? m / Double(n) : .nan
                    rank[row][idx] = n > 0 ? rk / Double(n) : .nan
                    entropy[row][idx] = n > 0 ? en / Double(n) : .nan
                }
            }
        }
        forEachBatch(items: items, batchSize: batchSize, hooks: hooks, forward: forward, willRun: { batchRows in
            rows = batchRows
            callerWillRun(batchRows)
            mass = Array(repeating: Array(repeating: .nan, count: L * H), count: batchRows.count)
            rank = mass; entropy = mass
        }) { logits, seqLen in
            for (row, i) in rows.enumerated() {
                let t = items[i].tokens
                var right = 0
                let targets = t.tokens.count - t.promptLength          // target characters + eos
                for c in 0..<targets {
                    let z = logits + (row * seqLen + t.promptLength - 1 + c) * V
                    var best = 0
                    for v in 1..<V where z[v] > z[best] { best = v }
                    if Int32(best) == t.tokens[t.promptLength + c] { right += 1 }
                }
                out[i] = RetrievalExample(exact: right == targets ? 1 : 0, tokenAccuracy: Double(right) / Double(targets),
                                          mass: mass[row], rank: rank[row], entropy: entropy[row])
            }
        }
        return out.map { $0! }
    }

    /// Runs every example once in right-padded batches; `willRun` is told the batch's example indices before the
    /// forward (so hooks know which rows hold which examples), `body` gets the logits and the padded length.
    static func forEachBatch(items: [Item], batchSize: Int, hooks: HookSet, forward: ([Int32], Int, Int, HookSet, [Int]) -> UnsafeMutablePointer<Float>,
                             willRun: ([Int]) -> Void, _ body: (UnsafeMutablePointer<Float>, Int) -> Void) {
        for start in stride(from: 0, to: items.count, by: max(1, batchSize)) {
            let indices = Array(start..<min(items.count, start + max(1, batchSize)))
            let seqLen = indices.map { items[$0].tokens.inputLength }.max()!
            var tokens = [Int32](repeating: CharTokenizer.pad, count: indices.count * seqLen)
            for (row, i) in indices.enumerated() {
                for (p, token) in items[i].tokens.tokens.dropLast().enumerated() { tokens[row * seqLen + p] = token }
            }
            willRun(indices)
            body(forward(tokens, indices.count, seqLen, hooks, indices), seqLen)
        }
    }
}
