import RuleLensNumerics

/// The shape of one attention call. Every architecture uses this one core: GPT-2 (causal, H = Hkv, no prefix),
/// the Llama/Qwen2 family (grouped-query heads, Hkv < H), the VAE encoder (bidirectional, padding masked by
/// `keyLengths`) and decoder (one prefix slot per layer: Optimus's latent memory), and cached decoding (the cache is
/// the prefix).
struct AttentionDims {
    /// Examples in the batch.
    let B: Int
    /// Query positions per example (= the sequence's own key positions).
    let T: Int
    /// Query heads.
    let H: Int
    /// Key/value heads; query head h reads key/value head h / (H / Hkv) (grouped-query attention; Hkv = H is plain MHA).
    let Hkv: Int
    /// Width of one head.
    let dh: Int
    /// Extra key/value slots before the sequence's own keys (0 for a plain pass).
    let P: Int
    /// Causal: query t sees every prefix slot and tokens ≤ t. Otherwise every prefix slot and tokens < keyLengths[b].
    let causal: Bool

    init(B: Int, T: Int, H: Int, Hkv: Int? = nil, dh: Int, P: Int = 0, causal: Bool = true) {
        precondition(B > 0 && T > 0 && H > 0 && dh > 0 && P >= 0, "AttentionDims: sizes must be positive")
        let kvHeads = Hkv ?? H
        precondition(kvHeads > 0 && H % kvHeads == 0, "AttentionDims: \(H) query heads are not a multiple of \(kvHeads) key/value heads")
        self.B = B; self.T = T; self.H = H; self.Hkv = kvHeads; self.dh = dh; self.P = P; self.causal = causal
    }

    /// Key positions per query row: P prefix slots, then T tokens. `pattern` is [B, H, T, keys].
    var keys: Int { P + T }
    /// Query heads per key/value head.
    var groupSize: Int { H / Hkv }
    var scale: Float { 1 / Float(dh).squareRoot() }
    /// Whether the (example, key/value head) groups run in parallel on RuleLens's workers, each product a
    /// single-threaded OpenBLAS call: whenever there are at least as many groups as threads (every training batch),
    /// or the products are small enough that OpenBLAS would not thread them anyway (m·n·k ≤ 4·65536). Otherwise a few
    /// large groups run one at a time with BLAS's own threads. (Handing each T×T×dh product of a GPT-2-small batch
    /// to OpenBLAS's threads instead costs more in hand-offs than the product takes.)
    var parallelOverHeads: Bool { B * Hkv >= Parallel.threads || T * keys * dh <= 262_144 }
}

/// Where the attention core reads its inputs. Rows are token positions; head h's slice of a row starts at h·dh.
/// Example b's token t is row b·T + t, at `q + (b·T + t)·qStride` (a fused [N, 3d] qkv buffer passes q, q+d, q+2d
/// with stride 3d).
struct AttentionInput {
    /// Queries [B·T rows, H·dh], row stride `qStride`.
    let q: UnsafePointer<Float>, qStride: Int
    /// Keys and values [B·T rows, Hkv·dh], row strides `kStride`, `vStride`.
    let k: UnsafePointer<Float>, kStride: Int
    let v: UnsafePointer<Float>, vStride: Int
    /// Extra key/value slots [B, P, Hkv·dh] (slot rows contiguous); nil when P = 0.
    var prefixK: UnsafePointer<Float>? = nil
    var prefixV: UnsafePointer<Float>? = nil
    /// Distance between consecutive examples' prefix slots, in floats; nil = P·Hkv·dh (tightly packed). A key/value
    /// cache allocated for more positions than are filled passes its capacity·Hkv·dh here.
    var prefixExampleStride: Int? = nil
    /// Real length of each example [B] for bidirectional attention (keys at t ≥ length are padding); nil = T.
    var keyLengths: UnsafePointer<Int32>? = nil
}

/// Where the attention backward writes. Same layouts and strides as `AttentionInput`; every buffer is overwritten.
struct AttentionGradients {
    let dq: UnsafeMutablePointer<Float>
    let dk: UnsafeMutablePointer<Float>
    let dv: UnsafeMutablePointer<Float>
    var dPrefixK: UnsafeMutablePointer<Float>? = nil
    var dPrefixV: UnsafeMutablePointer<Float>? = nil
}

/// Scaled dot-product multi-head attention core (between the Q/K/V projections and the output projection).
///
/// For example b, query head h and its key/value head g:
///   keys = [prefixK[b, :, g] ; k[b, :, g]],  values = [prefixV[b, :, g] ; v[b, :, g]]    ([P + T, dh])
///   scores[t, j] = q[b, t, h] · keys[j] / √dh, masked to j < end(t) (see `visibleKeys`)
///   pattern[b, h, t, :] = softmax(scores[t, :]),  z[b, t, h, :] = Σⱼ pattern[b, h, t, j] · values[j]
/// z is [B, T, H·dh] (contiguous). Each product is one sgemm per (example, head); (example, key/value head) groups are
/// spread over the threads, so the heads sharing one key/value head accumulate their gradients in a fixed order.
enum Attention {
    /// Value written into masked entries of `hook_attn_scores`: −∞, as TransformerLens.
    static let maskedScore = -Float.infinity

    /// Number of visible keys in query row t of example b: the visible keys are exactly 0..<end (prefix first).
    @inline(__always)
    static func visibleKeys(t: Int, b: Int, dims: AttentionDims, keyLengths: UnsafePointer<Int32>?) -> Int {
        let length = keyLengths.map { Int($0[b]) } ?? dims.T
        return dims.P + (dims.causal ? min(t + 1, length) : length)
    }

    /// Runs `body(b, g)` for every (example, key/value head) group, in parallel when the products are small.
    static func forEachGroup(_ dims: AttentionDims, _ body: (Int, Int) -> Void) {
        let groups = dims.B * dims.Hkv
        if dims.parallelOverHeads {
            // Our workers each run single-threaded OpenBLAS calls: BLAS threads here would only oversubscribe.
            BLAS.withThreads(1) {
                Parallel.forRanges(groups) { i0, i1 in for i in i0..<i1 { body(i / dims.Hkv, i % dims.Hkv) } }
            }
        } else {
            for i in 0..<groups { body(i / dims.Hkv, i % dims.Hkv) }
        }
    }

    /// Fused forward (no score/pattern hooks): scores, masked softmax and z for each head in one pass.
    static func forward(z: UnsafeMutablePointer<Float>, pattern: UnsafeMutablePointer<Float>, input: AttentionInput, dims: AttentionDims) {
        forEachGroup(dims) { b, g in
            for h in g * dims.groupSize..<(g + 1) * dims.groupSize {
                scores(pattern: pattern, input: input, b: b, h: h, dims: dims, writeMask: false)
                softmax(pattern: pattern, input: input, b: b, h: h, dims: dims, maskedOnly: true)
                weightedValues(z: z, pattern: pattern, input: input, b: b, h: h, dims: dims)
            }
        }
    }

    /// Phase 1 of the hooked forward: pattern ← scaled scores with −∞ on masked keys (`hook_attn_scores`).
    static func scoresPhase(pattern: UnsafeMutablePointer<Float>, input: AttentionInput, dims: AttentionDims) {
        forEachGroup(dims) { b, g in
            for h in g * dims.groupSize..<(g + 1) * dims.groupSize {
                scores(pattern: pattern, input: input, b: b, h: h, dims: dims, writeMask: true)
            }
        }
    }

    /// Phase 2: softmax over each full row in place (masked entries are −∞ unless a hook edited them).
    static func softmaxPhase(pattern: UnsafeMutablePointer<Float>, input: AttentionInput, dims: AttentionDims) {
        forEachGroup(dims) { b, g in
            for h in g * dims.groupSize..<(g + 1) * dims.groupSize {
                softmax(pattern: pattern, input: input, b: b, h: h, dims: dims, maskedOnly: false)
            }
        }
    }

    /// Phase 3: z = pattern · values.
    static func valuesPhase(z: UnsafeMutablePointer<Float>, pattern: UnsafePointer<Float>, input: AttentionInput, dims: AttentionDims) {
        forEachGroup(dims) { b, g in
            for h in g * dims.groupSize..<(g + 1) * dims.groupSize {
                weightedValues(z: z, pattern: pattern, input: input, b: b, h: h, dims: dims)
            }
        }
    }

    /// Pointers to example b's rows of head `head` in a strided [B·T, heads·dh] buffer.
    @inline(__always)
    private static func rows(_ base: UnsafePointer<Float>, stride: Int, b: Int, head: Int, dims: AttentionDims) -> UnsafePointer<Float> {
        base + b * dims.T * stride + head * dims.dh
    }

    @inline(__always)
    private static func scores(pattern: UnsafeMutablePointer<Float>, input x: AttentionInput, b: Int, h: Int, dims: AttentionDims,
                               writeMask: Bool) {
        let (T, P, K, dh) = (dims.T, dims.P, dims.keys, dims.dh)
        let g = h / dims.groupSize, kvWidth = dims.Hkv * dh
        let q = rows(x.q, stride: x.qStride, b: b, head: h, dims: dims)
        let s = pattern + (b * dims.H + h) * T * K                     // [T, K]
        if P > 0, let prefixK = x.prefixK {
            // s[:, 0..<P] = scale · q[T, dh] · prefixK[P, dh]ᵀ
            BLAS.sgemm(.none, .transposed, m: T, n: P, k: dh, alpha: dims.scale, q, lda: x.qStride,
                       prefixK + b * (x.prefixExampleStride ?? P * kvWidth) + g * dh, ldb: kvWidth, s, ldc: K)
        }
        // s[:, P..<K] = scale · q[T, dh] · k[T, dh]ᵀ
        BLAS.sgemm(.none, .transposed, m: T, n: T, k: dh, alpha: dims.scale, q, lda: x.qStride,
                   rows(x.k, stride: x.kStride, b: b, head: g, dims: dims), ldb: x.kStride, s + P, ldc: K)
        if writeMask {
            for t in 0..<T {
                let end = visibleKeys(t: t, b: b, dims: dims, keyLengths: x.keyLengths)
                for j in end..<K { s[t * K + j] = maskedScore }
            }
        }
    }

    @inline(__always)
    private static func softmax(pattern: UnsafeMutablePointer<Float>, input x: AttentionInput, b: Int, h: Int, dims: AttentionDims,
                                maskedOnly: Bool) {
        let (T, K) = (dims.T, dims.keys)
        let p = pattern + (b * dims.H + h) * T * K
        for t in 0..<T {
            let row = p + t * K
            let end = maskedOnly ? visibleKeys(t: t, b: b, dims: dims, keyLengths: x.keyLengths) : K
            var maxScore = -Float.infinity
            for j in 0..<end { maxScore = max(maxScore, row[j]) }
            var sum: Float = 0
            for j in 0..<end { let e = FastMath.expNonPositive(row[j] - maxScore); row[j] = e; sum += e }
            let inv = 1 / sum
            for j in 0..<end { row[j] *= inv }
            for j in end..<K { row[j] = 0 }
        }
    }

    @inline(__always)
    private static func weightedValues(z: UnsafeMutablePointer<Float>, pattern: UnsafePointer<Float>, input x: AttentionInput,
                                       b: Int, h: Int, dims: AttentionDims) {
        let (T, P, K, dh) = (dims.T, dims.P, dims.keys, dims.dh)
        let g = h / dims.groupSize, kvWidth = dims.Hkv * dh, zWidth = dims.H * dh
        let p = pattern + (b * dims.H + h) * T * K
        let zh = z + b * T * zWidth + h * dh                           // z_h [T, dh], row stride H·dh
        var beta: Float = 0
        if P > 0, let prefixV = x.prefixV {
            // z_h = p[:, 0..<P] · prefixV[P, dh]
            BLAS.sgemm(.none, .none, m: T, n: dh, k: P, p, lda: K, prefixV + b * (x.prefixExampleStride ?? P * kvWidth) + g * dh,
                       ldb: kvWidth, zh, ldc: zWidth)
            beta = 1
        }
        // z_h (+)= p[:, P..<K] · v[T, dh]
        BLAS.sgemm(.none, .none, m: T, n: dh, k: T, p + P, lda: K, rows(x.v, stride: x.vStride, b: b, head: g, dims: dims),
                   ldb: x.vStride, beta: beta, zh, ldc: zWidth)
    }

    /// Backward from dz [B, T, H·dh]: writes every buffer of `grads` (dk/dv/dPrefix are zeroed, then accumulated over
    /// the query heads that share them); dpattern [B, H, T, P+T] is scratch. `pattern` is the forward's.
    static func backward(_ grads: AttentionGradients, dpattern: UnsafeMutablePointer<Float>, dz: UnsafePointer<Float>,
                         input x: AttentionInput, pattern: UnsafePointer<Float>, dims: AttentionDims) {
        let (T, P, K, dh) = (dims.T, dims.P, dims.keys, dims.dh)
        let kvWidth = dims.Hkv * dh, zWidth = dims.H * dh
        let hasPrefix = P > 0 && x.prefixK != nil && x.prefixV != nil
        forEachGroup(dims) { b, g in
            let k = rows(x.k, stride: x.kStride, b: b, head: g, dims: dims)
            let v = rows(x.v, stride: x.vStride, b: b, head: g, dims: dims)
            let dk = grads.dk + b * T * x.kStride + g * dh, dv = grads.dv + b * T * x.vStride + g * dh
            for t in 0..<T { (dk + t * x.kStride).update(repeating: 0, count: dh); (dv + t * x.vStride).update(repeating: 0, count: dh) }
            let prefixStride = x.prefixExampleStride ?? P * kvWidth
            let prefixK = hasPrefix ? x.prefixK! + b * prefixStride + g * dh : nil
            let prefixV = hasPrefix ? x.prefixV! + b * prefixStride + g * dh : nil
            let dPrefixK = hasPrefix ? grads.dPrefixK.map { $0 + b * P * kvWidth + g * dh } : nil
            let dPrefixV = hasPrefix ? grads.dPrefixV.map { $0 + b * P * kvWidth + g * dh } : nil
            for j in 0..<(hasPrefix ? P : 0) {
                dPrefixK?.advanced(by: j * kvWidth).update(repeating: 0, count: dh)
                dPrefixV?.advanced(by: j * kvWidth).update(repeating: 0, count: dh)
            }
            for h in g * dims.groupSize..<(g + 1) * dims.groupSize {
                let q = rows(x.q, stride: x.qStride, b: b, head: h, dims: dims)
                let dq = grads.dq + b * T * x.qStride + h * dh
                let p = pattern + (b * dims.H + h) * T * K, dp = dpattern + (b * dims.H + h) * T * K
                let dzh = dz + b * T * zWidth + h * dh
                // dp[:, P..<K] = dz_h[T, dh] · v[T, dh]ᵀ ; dv += p[:, P..<K]ᵀ · dz_h
                BLAS.sgemm(.none, .transposed, m: T, n: T, k: dh, dzh, lda: zWidth, v, ldb: x.vStride, dp + P, ldc: K)
                BLAS.sgemm(.transposed, .none, m: T, n: dh, k: T, p + P, lda: K, dzh, ldb: zWidth, beta: 1, dv, ldc: x.vStride)
                if let prefixV {
                    // dp[:, 0..<P] = dz_h · prefixVᵀ ; dPrefixV += p[:, 0..<P]ᵀ · dz_h
                    BLAS.sgemm(.none, .transposed, m: T, n: P, k: dh, dzh, lda: zWidth, prefixV, ldb: kvWidth, dp, ldc: K)
                    if let dPrefixV {
                        BLAS.sgemm(.transposed, .none, m: P, n: dh, k: T, p, lda: K, dzh, ldb: zWidth, beta: 1, dPrefixV, ldc: kvWidth)
                    }
                }
                // softmax backward in place: ds = p ⊙ (dp − Σⱼ pⱼ·dpⱼ) over the visible keys, 0 on masked ones
                for t in 0..<T {
                    let pr = p + t * K, dr = dp + t * K
                    let end = visibleKeys(t: t, b: b, dims: dims, keyLengths: x.keyLengths)
                    var dot: Float = 0
                    for j in 0..<end { dot += pr[j] * dr[j] }
                    for j in 0..<end { dr[j] = pr[j] * (dr[j] - dot) }
                    for j in end..<K { dr[j] = 0 }
                }
                // dq = scale · ds[:, P..<K] · k (+ scale · ds[:, 0..<P] · prefixK); dk += scale · ds[:, P..<K]ᵀ · q
                BLAS.sgemm(.none, .none, m: T, n: dh, k: T, alpha: dims.scale, dp + P, lda: K, k, ldb: x.kStride, dq, ldc: x.qStride)
                BLAS.sgemm(.transposed, .none, m: T, n: dh, k: T, alpha: dims.scale, dp + P, lda: K, q, ldb: x.qStride, beta: 1,
                           dk, ldc: x.kStride)
                if let prefixK {
                    BLAS.sgemm(.none, .none, m: T, n: dh, k: P, alpha: dims.scale, dp, lda: K, prefixK, ldb: kvWidth, beta: 1,
                               dq, ldc: x.qStride)
                    if let dPrefixK {
                        BLAS.sgemm(.transposed, .none, m: P, n: dh, k: T, alpha: dims.scale, dp, lda: K, q, ldb: x.qStride, beta: 1,
                                   dPrefixK, ldc: kvWidth)
                    }
                }
            }
        }
    }
}
