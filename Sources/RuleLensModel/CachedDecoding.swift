import RuleLensNumerics

/// The keys and values of every position decoded so far, one pair of buffers per layer: what cached decoding attends
/// to instead of recomputing the whole prefix for every new token.
///
/// Each buffer is [batch, capacity, d] (d = H·dh; GPT-2 has as many key/value heads as query heads), the attention
/// kernel's prefix layout with a per-example stride of capacity·d: the filled positions 0..<length *are* the prefix
/// key/value slots of the next attention call (`AttentionInput.prefixK/prefixV`). All rows hold the same number of
/// positions (prompts are decoded in groups of equal length); `keep(rows:)` drops finished rows.
public final class KVCache {
    /// Positions each row can hold (≤ the model's context).
    public let capacity: Int
    /// Rows currently in the cache.
    public private(set) var batch: Int
    /// Positions filled in every row.
    public internal(set) var length = 0
    let width: Int
    /// Per layer: [batch, capacity, width] keys and values.
    let keys: [FloatBuffer], values: [FloatBuffer]
    /// Scratch for `GPT.decode`, sized for the largest call so far.
    var scratch = DecodeScratch()

    /// Named working buffers of other families' `decode` (grown on demand, reused across calls).
    private var buffers: [String: FloatBuffer] = [:]

    /// A cache for `batch` rows of up to `capacity` positions of `model`.
    public convenience init(model: GPT, batch: Int, capacity: Int) {
        self.init(layers: model.config.nLayer, width: model.config.dModel, contextLength: model.config.nCtx, batch: batch, capacity: capacity)
    }

    /// A cache of `layers` key/value pairs of `width` floats per position (Hkv·dh) for `batch` rows of up to `capacity`
    /// positions (≤ `contextLength`).
    public init(layers: Int, width: Int, contextLength: Int, batch: Int, capacity: Int) {
        precondition(batch > 0 && capacity > 0 && capacity <= contextLength, "KVCache: batch and capacity must be in 1…, capacity ≤ the context")
        self.batch = batch; self.capacity = capacity; self.width = width
        keys = (0..<layers).map { _ in FloatBuffer(count: batch * capacity * width) }
        values = (0..<layers).map { _ in FloatBuffer(count: batch * capacity * width) }
    }

    /// Scratch buffer `name` of at least `count` floats (its contents are whatever the last user left).
    func scratchBuffer(_ name: String, _ count: Int) -> UnsafeMutablePointer<Float> {
        if let b = buffers[name], b.count >= count { return b.ptr }
        let b = FloatBuffer(count: count)
        buffers[name] = b
        return b.ptr
    }

    /// Appends the keys and values of rows b·T + t (row strides `kStride`, `vStride`) as positions
    /// length + t of layer `layer`; `length` itself moves on once every layer has been appended (by the caller).
    func append(layer: Int, k: UnsafePointer<Float>, kStride: Int, v: UnsafePointer<Float>, vStride: Int, batch B: Int, seqLen T: Int) {
        let kCache = keys[layer].ptr, vCache = values[layer].ptr, rowFloats = capacity * width, P = length, w = width
        Parallel.forRanges(B * T, minPerThread: 64) { r0, r1 in
            for n in r0..<r1 {
                let b = n / T, t = n % T
                (kCache + b * rowFloats + (P + t) * w).update(from: k + n * kStride, count: w)
                (vCache + b * rowFloats + (P + t) * w).update(from: v + n * vStride, count: w)
            }
        }
    }

    /// The attention input of layer `layer` for new positions whose own keys/values are `q`/`k`/`v`: the cached positions
    /// enter as prefix slots.
    func attentionInput(layer: Int, q: UnsafePointer<Float>, qStride: Int, k: UnsafePointer<Float>, kStride: Int,
                        v: UnsafePointer<Float>, vStride: Int) -> AttentionInput {
        var input = AttentionInput(q: q, qStride: qStride, k: k, kStride: kStride, v: v, vStride: vStride)
        if length > 0 {
            input.prefixK = UnsafePointer(keys[layer].ptr); input.prefixV = UnsafePointer(values[layer].ptr)
            input.prefixExampleStride = capacity * width
        }
        return input
    }

    /// Empties the cache for a new group of `batch` rows (at most the batch it was made for).
    public func reset(batch rows: Int) {
        precondition(rows > 0 && rows * capacity * width <= keys[0].count, "KVCache.reset: \(rows) rows do not fit")
        batch = rows; length = 0
    }

    /// Keeps rows `rows` (indices into the current rows, increasing), in that order, as rows 0..<rows.count.
    public func keep(rows: [Int]) {
        precondition(zip(rows, rows.dropFirst()).allSatisfy { $0 < $1 } && (rows.last ?? 0) < batch, "KVCache.keep: rows must increase and exist")
        let rowFloats = capacity * width, filled = length * width
        for buffers in [keys, values] {
            for buffer in buffers {
                for (to, from) in rows.enumerated() where to != from {
                    (buffer.ptr + to * rowFloats).update(from: buffer.ptr + from * rowFloats, count: filled)
                }
            }
        }
        batch = rows.count
    }
}

/// A model that can decode with a key/value cache (GPT-2, the Llama/Qwen2 family): `Generate.greedy` uses it.
public protocol CachedDecoder: LanguageModel {
    /// Whether `decode` can run this model (e.g. a plain causal stack without injected vectors).
    var supportsCachedDecoding: Bool { get }
    /// An empty cache for `batch` rows of up to `capacity` positions.
    func makeKVCache(batch: Int, capacity: Int) -> KVCache
    /// Floats of keys plus values per cached position of one row (over all layers): sizes the cache's memory budget.
    var cacheFloatsPerPosition: Int { get }
    /// Runs tokens [B, T] as positions `cache.length ..< cache.length + T` of each row, attending to the cached keys and
    /// values and appending this call's; returns the logits of each row's last new position [B, vocab], valid until the
    /// next call. Inference only: no hooks, nothing kept for `backward()`.
    func decode(tokens: [Int32], batch: Int, seqLen: Int, cache: KVCache) -> UnsafeMutablePointer<Float>
    /// The hook sites `decode(…hooks:)` fires for the new positions (values [batch, new positions, …]; the callbacks
    /// read the first new position's absolute index from `HookSet.firstPosition`). Empty: the cached step takes no hooks.
    var decodeHookSites: Set<String> { get }
    /// `decode` with `hooks` observing or editing `decodeHookSites` at the new positions, so an intervention applies to
    /// every generated token while decoding with the cache (`Generate.greedy`).
    func decode(tokens: [Int32], batch: Int, seqLen: Int, cache: KVCache, hooks: HookSet?) -> UnsafeMutablePointer<Float>
}

extension CachedDecoder {
    public var decodeHookSites: Set<String> { [] }
    public func decode(tokens: [Int32], batch: Int, seqLen: Int, cache: KVCache, hooks: HookSet?) -> UnsafeMutablePointer<Float> {
        precondition(hooks?.touchesOnly(decodeHookSites, sites: hookSites) ?? true, "decode: this model's cached step fires no hook sites")
        return decode(tokens: tokens, batch: batch, seqLen: seqLen, cache: cache)
    }
}

/// The sites a cached decode step of a block stack fires (GPT-2 and the Llama/Qwen2 family): each block's residual
/// stream, attention heads' z and the attention and MLP outputs — what ablation and patching edit.
public enum DecodeHookSites {
    static let suffixes = ["hook_resid_pre", "attn.hook_z", "hook_attn_out", "hook_resid_mid", "hook_mlp_out", "hook_resid_post"]

    /// Every such site of `layers` blocks.
    public static func sites(layers: Int) -> Set<String> {
        Set((0..<layers).flatMap { l in suffixes.map { "blocks.\(l).\($0)" } })
    }

    /// Names of block l's sites, in `suffixes` order (formatted only when a hook plan exists).
    static func names(_ l: Int) -> [String] { suffixes.map { "blocks.\(l).\($0)" } }
}

/// Working buffers of one `GPT.decode` call (grown on demand, reused across calls).
struct DecodeScratch {
    var resid = FloatBuffer(count: 0), ln = FloatBuffer(count: 0), qkv = FloatBuffer(count: 0), z = FloatBuffer(count: 0)
    var attnOut = FloatBuffer(count: 0), fcPre = FloatBuffer(count: 0), fcPost = FloatBuffer(count: 0)
    var pattern = FloatBuffer(count: 0), mean = FloatBuffer(count: 0), rstd = FloatBuffer(count: 0)
    var last = FloatBuffer(count: 0), lastNorm = FloatBuffer(count: 0), logits = FloatBuffer(count: 0)

    mutating func ensure(rows N: Int, batch B: Int, d: Int, dMLP: Int, heads H: Int, patternFloats: Int, vocab V: Int) {
        func grow(_ b: inout FloatBuffer, _ n: Int) { if b.count < n { b = FloatBuffer(count: n) } }
        grow(&resid, N * d); grow(&ln, N * d); grow(&qkv, N * 3 * d); grow(&z, N * d); grow(&attnOut, N * d)
        grow(&fcPre, N * dMLP); grow(&fcPost, N * dMLP); grow(&pattern, patternFloats)
        grow(&mean, N); grow(&rstd, N); grow(&last, B * d); grow(&lastNorm, B * d); grow(&logits, B * V)
    }
}

extension GPT: CachedDecoder {
    /// Whether `decode` can run this model: a causal stack with no injected vectors (plain GPT-2).
    public var supportsCachedDecoding: Bool { wiring.causal && wiring.injections.isEmpty }
    public func makeKVCache(batch: Int, capacity: Int) -> KVCache { KVCache(model: self, batch: batch, capacity: capacity) }
    public var cacheFloatsPerPosition: Int { 2 * config.nLayer * config.dModel }

    /// Runs tokens [B, T] as positions `cache.length ..< cache.length + T` of each row, attending to the cached keys and
    /// values of the earlier positions and appending these positions' own. Returns the logits of each row's last new
    /// position, [B, vocab], valid until the next call.
    ///
    /// The same kernels and arithmetic as `forward` on the whole sequence; only the products' shapes differ (the
    /// cached prefix enters attention as prefix key/value slots), so logits agree to rounding.
    /// Inference only: nothing kept for `backward()`; hooks only through `decode(…hooks:)`.
    public func decode(tokens: [Int32], batch B: Int, seqLen T: Int, cache: KVCache) -> UnsafeMutablePointer<Float> {
        decode(tokens: tokens, batch: B, seqLen: T, cache: cache, hooks: nil)
    }

    public var decodeHookSites: Set<String> { wiring.hookPrefix.isEmpty ? DecodeHookSites.sites(layers: config.nLayer) : [] }

    /// `decode` with hooks on `decodeHookSites` ([B, T, d] or z [B, T, H, dh] at the new positions; edits flow on).
    public func decode(tokens: [Int32], batch B: Int, seqLen T: Int, cache: KVCache, hooks: HookSet?) -> UnsafeMutablePointer<Float> {
        let c = config
        let P = cache.length, N = B * T, d = c.dModel, dMLP = c.dMLP, V = c.vocabSize, H = c.nHead
        let plan = hooks?.plan(sites: hookSites)
        precondition(plan == nil || hooks!.touchesOnly(decodeHookSites, sites: hookSites), "decode: hooks on sites a cached step does not fire")
        hooks?.firstPosition = P
        defer { hooks?.firstPosition = 0 }
        let residShape = [B, T, d], zShape = [B, T, H, c.dHead]
        precondition(supportsCachedDecoding, "decode: cached decoding needs a plain causal GPT (no injections)")
        precondition(B == cache.batch && T > 0 && tokens.count == N, "decode: \(tokens.count) tokens for the cache's \(cache.batch) rows × \(T)")
        precondition(P + T <= cache.capacity, "decode: \(P + T) positions exceed the cache's capacity of \(cache.capacity)")
        precondition(tokens.allSatisfy { $0 >= 0 && Int($0) < V }, "decode: token id outside 0..<\(V)")
        cache.scratch.ensure(rows: N, batch: B, d: d, dMLP: dMLP, heads: H, patternFloats: B * H * T * (P + T), vocab: V)
        let s = cache.scratch
        let dims = AttentionDims(B: B, T: T, H: H, dh: c.dHead, P: P, causal: true)
        let resid = s.resid.ptr, ln = s.ln.ptr, qkv = s.qkv.ptr, z = s.z.ptr, attnOut = s.attnOut.ptr

        // Embedding at positions P..<P+T: wpe rows from P on.
        tokens.withUnsafeBufferPointer { tok in
            Embedding.forward(out: resid, tokens: tok.baseAddress!, wte: params.wte, wpe: params.wpe + P * d, batch: B, seqLen: T, dModel: d)
        }
        for l in 0..<c.nLayer {
            let w = params.layers[l]
            let site = plan == nil ? [] : DecodeHookSites.names(l)   // resid_pre, z, attn_out, resid_mid, mlp_out, resid_post
            plan?.fire(site[0], resid, residShape)
            LayerNorm.forward(out: ln, mean: s.mean.ptr, rstd: s.rstd.ptr, inp: resid, weight: w.ln1Weight, bias: w.ln1Bias,
                              rows: N, cols: d, eps: c.layerNormEps)
            Linear.forward(out: qkv, inp: ln, weight: w.qkvWeight, bias: w.qkvBias, rows: N, inDim: d, outDim: 3 * d)
            // The new positions' own keys/values come from qkv; the earlier ones are the prefix slots.
            let input = cache.attentionInput(layer: l, q: qkv, qStride: 3 * d, k: qkv + d, kStride: 3 * d, v: qkv + 2 * d, vStride: 3 * d)
            Attention.forward(z: z, pattern: s.pattern.ptr, input: input, dims: dims)
            // Append this call's keys and values: cache[b, P + t, :] = k|v of row b·T + t.
            cache.append(layer: l, k: qkv + d, kStride: 3 * d, v: qkv + 2 * d, vStride: 3 * d, batch: B, seqLen: T)
            plan?.fire(site[1], z, zShape)
            Linear.forward(out: attnOut, inp: z, weight: w.attnProjWeight, bias: w.attnProjBias, rows: N, inDim: d, outDim: d)
            plan?.fire(site[2], attnOut, residShape)
            addElementwise(out: resid, resid, attnOut, count: N * d)
            plan?.fire(site[3], resid, residShape)
            LayerNorm.forward(out: ln, mean: s.mean.ptr, rstd: s.rstd.ptr, inp: resid, weight: w.ln2Weight, bias: w.ln2Bias,
                              rows: N, cols: d, eps: c.layerNormEps)
            Linear.forward(out: s.fcPre.ptr, inp: ln, weight: w.fcWeight, bias: w.fcBias, rows: N, inDim: d, outDim: dMLP)
            GELU.forward(out: s.fcPost.ptr, inp: s.fcPre.ptr, count: N * dMLP)
            Linear.forward(out: attnOut, inp: s.fcPost.ptr, weight: w.mlpProjWeight, bias: w.mlpProjBias, rows: N, inDim: dMLP, outDim: d)
            plan?.fire(site[4], attnOut, residShape)
            addElementwise(out: resid, resid, attnOut, count: N * d)
            plan?.fire(site[5], resid, residShape)
        }
        cache.length = P + T
        // ln_f and the LM head (wte when tied, else lm_head) on each row's last position only: logits[B, V] = lnf[B, d] · head[V, d]ᵀ
        for b in 0..<B { (s.last.ptr + b * d).update(from: resid + (b * T + T - 1) * d, count: d) }
        LayerNorm.forward(out: s.lastNorm.ptr, mean: s.mean.ptr, rstd: s.rstd.ptr, inp: s.last.ptr, weight: params.lnfWeight,
                          bias: params.lnfBias, rows: B, cols: d, eps: c.layerNormEps)
        BLAS.sgemmSplit(.none, .transposed, m: B, n: V, k: d, s.lastNorm.ptr, params.head, s.logits.ptr)
        return s.logits.ptr
    }
}
